"""The interface every emotion model implements, and the masking helpers they share.

A model consumes a ``batch`` dict and returns an :class:`Output` (ARCHITECTURE.md, "Conventions").

Batch keys (all tensors on the model's device):

* ``face``: ``(B, T, D_f)`` float, one face-CNN feature per frame.
* ``context``: ``(B, T, D_c)`` float, one context-CNN feature per frame.
* ``face_map``: ``(B, T, C, H, W)`` float, the face CNN's last feature map per frame (2D-3D-CNN).
* ``audio``: ``(B, T, D_a)`` float (models of other files).
* ``mask``: ``(B, T)`` bool, True = valid frame, False = padding. Optional: all True when absent.
* ``face_mask``: ``(B, T)`` bool, True = a face was found in that frame; always intersected with
  ``mask``. Optional: equal to ``mask`` when absent. Face features of face-less frames are
  meaningless (often zeros) and must not influence any output.
* ``label``: ``(B,)`` long, class ids (read by the training loop, never by a model).

Missing faces are handled through ``face_mask``, never through NaNs; the helpers below still
use :func:`torch.where` rather than multiplication, so that a NaN at an invalid position
cannot leak into the output or the gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ConfigError

__all__ = [
    "Output",
    "EmotionModel",
    "StreamEncoder",
    "batch_masks",
    "require",
    "require_dim",
    "zero_invalid",
    "compact_order",
    "run_lstm",
    "masked_softmax",
    "masked_mean",
]


@dataclass
class Output:
    """What a model returns for a batch of ``B`` clips, ``T`` frames, ``K`` classes.

    Attributes:
        logits: ``(B, K)`` unnormalised class scores of each clip.
        temporal_attention: ``(B, T, T)`` for CACA-RNN (query step x key step, rows sum to 1 over
            valid keys, all-zero rows for steps the querying stream skipped), or ``(B, T)`` for
            pooling models (weights over frames, sum to 1 over valid frames).
        spatial_attention: ``(B, T, h, w)`` attention over feature-map cells of each frame.
        fusion_weights: ``(B, T, 2)`` per-frame ``(lambda_face, lambda_context)``.
        frame_logits: ``(B, T, K)`` running per-frame prediction (zeros at padded frames).
        extras: anything else a model wants to expose (documented by the model).
    """

    logits: Tensor
    temporal_attention: Tensor | None = None
    spatial_attention: Tensor | None = None
    fusion_weights: Tensor | None = None
    frame_logits: Tensor | None = None
    extras: dict = field(default_factory=dict)


class EmotionModel(nn.Module):
    """Base class of every emotion model: ``forward(batch: dict[str, Tensor]) -> Output``.

    Subclasses set the class attribute :attr:`streams` to the batch keys they read (besides the
    masks), e.g. ``("face", "context")``; data loaders use it to load only what is needed.
    ``num_classes`` is the size ``K`` of ``Output.logits``.
    """

    streams: tuple[str, ...] = ()

    def __init__(self, num_classes: int | None = None):
        super().__init__()
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = num_classes

    def forward(self, batch: dict[str, Tensor]) -> Output:  # pragma: no cover - abstract
        raise NotImplementedError


class StreamEncoder(nn.Sequential):
    """Per-frame FC encoder of a feature stream, ``(B, T, D) -> (B, T, E)``: Linear, ReLU, Dropout.

    Sun et al., MEC 2017, section V-C/V-D: "The feature sizes of face feature and context feature
    are encoded to 128 by fully-connected layers."
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__(nn.Linear(in_dim, out_dim), nn.ReLU(inplace=True), nn.Dropout(dropout))


def require_dim(dim: int | None, what: str, model: str) -> int:
    """``dim`` if given; a :class:`ConfigError` naming the model and the missing size otherwise."""
    if dim is None:
        raise ConfigError(f"{model} needs {what}")
    return dim


def require(batch: dict[str, Tensor], key: str, model: str, shape: str = "(B, T, D)") -> Tensor:
    """``batch[key]``, or a :class:`ConfigError` naming the model and the expected shape.

    Where per-frame vectors ``(B, T, D)`` are expected (the default ``shape``) and the batch holds
    feature maps ``(B, T, C, h, w)`` (a store extracted with spatial context maps), the maps are
    average-pooled over space, which is exactly the pooled feature of the same CNN.
    """
    try:
        x = batch[key]
    except KeyError:
        raise ConfigError(f"{model} needs batch[{key!r}] of shape {shape}; got keys {sorted(batch)}") from None
    if not torch.is_tensor(x) or x.dim() < 2:
        raise ConfigError(f"{model}: batch[{key!r}] must be a tensor of shape {shape}")
    if shape == "(B, T, D)" and x.dim() == 5:
        x = x.mean((-2, -1))
    return x


def batch_masks(batch: dict[str, Tensor], like: Tensor) -> tuple[Tensor, Tensor]:
    """``(mask, face_mask)`` of a batch, both ``(B, T)`` bool on ``like.device``.

    ``mask`` defaults to all True; ``face_mask`` defaults to ``mask`` and is always ``& mask``.
    ``like`` is any ``(B, T, ...)`` stream of the batch.
    """
    B, T = like.shape[:2]
    mask = batch.get("mask")
    mask = torch.ones(B, T, dtype=torch.bool, device=like.device) if mask is None else mask.to(like.device).bool()
    if mask.shape != (B, T):
        raise ConfigError(f"batch['mask'] has shape {tuple(mask.shape)}, expected {(B, T)}")
    face_mask = batch.get("face_mask")
    if face_mask is None:
        return mask, mask
    face_mask = face_mask.to(like.device).bool()
    if face_mask.shape != (B, T):
        raise ConfigError(f"batch['face_mask'] has shape {tuple(face_mask.shape)}, expected {(B, T)}")
    return mask, face_mask & mask


def zero_invalid(x: Tensor, valid: Tensor) -> Tensor:
    """``x`` ``(B, T, ...)`` with every position where ``valid`` ``(B, T)`` is False set to exactly 0."""
    v = valid.view(*valid.shape, *([1] * (x.dim() - 2)))
    return torch.where(v, x, torch.zeros((), dtype=x.dtype, device=x.device))


def compact_order(valid: Tensor) -> tuple[Tensor, Tensor]:
    """Gather order that moves the valid steps of each row to the front, keeping their time order.

    Args:
        valid: ``(B, T)`` bool.

    Returns:
        ``(order, lengths)``: ``order`` ``(B, T)`` long such that ``x.gather(1, order)`` puts
        the ``lengths[b]`` valid steps of row ``b`` first; ``lengths`` ``(B,)`` long.
    """
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    return order, valid.sum(1)


def run_lstm(
    lstm: nn.LSTM, x: Tensor, valid: Tensor, hx: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Run a batch-first unidirectional :class:`torch.nn.LSTM` over the valid steps only.

    Invalid steps (padding, or face-less frames for a face stream) are *skipped*: the valid steps
    of each row are moved to the front (order kept), packed with
    :func:`~torch.nn.utils.rnn.pack_padded_sequence`, and the outputs are put back at their own
    time positions. The valid steps need not be a prefix.

    Args:
        lstm: ``nn.LSTM(..., batch_first=True)``, not bidirectional, no projections.
        x: ``(B, T, D)`` inputs; values at invalid steps are never read.
        valid: ``(B, T)`` bool.
        hx: optional initial ``(h_0, c_0)``, each ``(num_layers, B, H)``.

    Returns:
        ``(out, (h_n, c_n))``. ``out`` ``(B, T, H)`` is the top layer's output, forward-filled:
        at an invalid step it repeats the last valid step's output (the state the LSTM is in), and
        before the first valid step it is ``h_0[-1]`` (zeros without ``hx``). Hence ``out[:, -1]``
        is the output at the last valid step. ``h_n, c_n`` ``(num_layers, B, H)`` are the states
        after the last valid step (``hx``, or zeros, for rows without any valid step).
    """
    if lstm.bidirectional or lstm.proj_size or not lstm.batch_first:
        raise ConfigError("run_lstm needs a batch-first, unidirectional LSTM without projections")
    B, T, _ = x.shape
    H, L = lstm.hidden_size, lstm.num_layers
    order, lengths = compact_order(valid)
    xc = x.gather(1, order.unsqueeze(-1).expand_as(x))
    steps = torch.arange(T, device=x.device)
    xc = zero_invalid(xc, steps < lengths.unsqueeze(1))
    packed = pack_padded_sequence(xc, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, (h_n, c_n) = lstm(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    if hx is None:
        zeros = x.new_zeros(L, B, H)
        hx = (zeros, zeros)
    empty = (lengths == 0).view(1, B, 1)
    h_n = torch.where(empty, hx[0], h_n)
    c_n = torch.where(empty, hx[1], c_n)
    # Forward fill: step t shows the output of the latest valid step at or before t.
    pos = valid.long().cumsum(1) - 1
    filled = out.gather(1, pos.clamp(min=0).unsqueeze(-1).expand(B, T, H))
    filled = torch.where((pos < 0).unsqueeze(-1), hx[0][-1].unsqueeze(1), filled)
    return filled, (h_n, c_n)


def masked_softmax(scores: Tensor, valid: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``scores`` over ``dim`` where invalid entries get weight exactly 0.

    Invalid entries are filled with the most negative finite value (an effective -inf) before the
    softmax, and zeroed after it, so a slice without any valid entry gives all zeros instead of
    NaN (and no NaN gradients). ``valid`` must broadcast to ``scores``.
    """
    valid = valid.expand_as(scores)
    filled = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=dim) * valid.to(scores.dtype)


def masked_mean(x: Tensor, valid: Tensor, dim: int = 1) -> Tensor:
    """Mean of ``x`` over ``dim`` counting only ``valid`` positions (0 where none is valid).

    ``valid`` has the leading shape of ``x`` up to and including ``dim`` (e.g. ``(B, T)`` for
    ``x`` ``(B, T, D)`` and ``dim=1``).
    """
    v = valid.view(*valid.shape, *([1] * (x.dim() - valid.dim()))).to(x.dtype)
    return zero_invalid(x, valid).sum(dim) / v.sum(dim).clamp(min=1.0)
