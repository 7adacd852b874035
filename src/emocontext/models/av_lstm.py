"""Audio-visual LSTM with soft temporal alignment and perception attention (Chao et al. 2016).

L. Chao, J. Tao, M. Yang, Y. Li, Z. Wen, "Audio Visual Emotion Recognition with Temporal
Alignment and Perception Attention", 2016. Paper text:
``../shared/papers/av-lstm_chao2016_temporal-alignment-perception-attention.md``.

Registry names and what they implement:

============  ==============================================================  ===================
name          model                                                           paper
============  ==============================================================  ===================
av_lstm       aligned AV-LSTM + perception attention (two encoders)           2.1, 2.3, Fig. 1b
av_lstm_last  aligned AV-LSTM, last-time encoding                             2.1, eq. (7)
av_lstm_mean  aligned AV-LSTM, average encoding                               2.1, eq. (8)
av_face_mean  appearance feature only: one LSTM, average encoding (no audio)  4.1, Table 1 row 1
============  ==============================================================  ===================

The paper, element by element: FIDELITY.md, "Audio-visual LSTM"; the training recipe (Adadelta,
weight decay 5e-4, 50 epochs, validation accuracy): :data:`emocontext.models.recipes.AV_LSTM`.

The pieces (section 2.1, Fig. 1a; section 2.3 -- numbered 2.2 in the paper's text -- Fig. 1b):

1. **Audio LSTM.** Audio features ``a_1..a_{T_a}`` go through a hidden layer and an LSTM (eq. 1-3,
   PyTorch's LSTM is the same cell) giving ``h_a``.
2. **Visual features.** The face features ``v_1..v_T`` go through a hidden layer.
3. **Soft alignment** (eq. 4-6). For visual step ``t`` the coarse alignment ``p_t`` is computed
   from the lengths (``p_t = floor(t * T_a / T)``, ``t = 0..T-1``, with each clip's own valid
   lengths ``T_a`` and ``T``), and a window of ``2w`` audio states around it is scored:
   ``s_{t,i} = W_i^T tanh(W^a h_{att,i} + W^v v_t)`` (eq. 5, one score vector ``W_i`` per window
   slot, so the model can learn a preferred offset as well as content), softmax over the window
   (eq. 4), and the aligned audio ``x_t = sum_i l_{t,i} h_{att,i}`` (eq. 6).
4. **Audio-visual LSTM** over ``[x_t; v_t]`` gives ``h_av``.
5. **Encoding.** ``av_lstm_last``: classify ``h_{av,T}`` (eq. 7). ``av_lstm_mean``: classify the
   mean of ``h_av`` over the valid steps (eq. 8). ``av_lstm``: perception attention (eq. 9-11):
   ``N = K`` learned emotion embeddings ``e_n``; ``f^n = softmax_t((W^h h^{sel}_{av,t})^T e_n)``;
   ``s^n = W^n sum_t f^n_t h_{av,t} + b^n``; ``p(y = n) = softmax_n(s^n)`` (``logits`` are
   ``s^n``). With ``two_encoders=True`` (the paper's implementation) ``h^{sel}_av`` comes from a
   second, smaller encoder (steps 1-4 again, own weights) and ``h_av`` from the main one; with
   ``False`` both are the main encoder's ``h_av``.

**Window and positions.** The paper writes the window as ``{h_{a,p_t-w}, ..., h_{a,p_t+w}}`` but
sums eq. (4) over ``2w`` slots, and Fig. 2 shows four slots; here there are exactly ``2w`` slots,
slot ``i`` (``i = 0..2w-1``) holding audio frame ``p_t - w + 1 + i``: slot ``w - 1`` is ``p_t``
itself, the window reaches ``w - 1`` frames back and ``w`` frames forward. Default: ``w`` matched to
the audio rate, ``w = ceil(T_a / T)`` (:func:`matched_window`) with ``audio_frames_per_step``, the
audio frames per video frame of the training clips (``emocontext train`` passes it): the window then
reaches one video frame each way. At the paper's rates (the recipe's 25 fps and 31.25 audio frames
per second, 1.25 per video frame) that is ``w = 2``, Fig. 2's four slots; without the rate, 2.
Slots that fall before the first or after the last valid audio frame get weight exactly 0; the
weights sum to 1 over the others.

**Which frame is "the same time".** ``p_t = t * T_a / T`` aligns the *starts* of the two
streams and assumes they span the same time: frame ``t`` of a stream sampled from time 0 at
``fps`` (``video.decode``) and audio frame ``a`` centred at ``a * hop / sample_rate``
(``features.audio``) coincide when ``a = t * T_a / T``. Crop the audio to the span the visual
frames cover (e.g. when ``max_frames`` truncates the clip); otherwise the coarse alignment
stretches. Window width vs. rate: with the paper's rates (25 fps video, 31.25 audio frames/s) a
window of 4 covers the audio between two video frames. The recipe samples the video at 25 fps
(:data:`~emocontext.models.recipes.AV_LSTM`); at another rate (``train --fps 5``: ~6 audio frames
per video frame) the matched window widens with it (``w = 7``), so no audio frame falls between
windows; an explicit ``window`` keeps its width.

Batch keys:

* ``face`` ``(B, T, D_f)``, ``mask`` ``(B, T)`` and ``face_mask`` ``(B, T)`` as everywhere
  (:mod:`emocontext.models.base`).
* ``audio`` ``(B, T_a, D_a)``: one audio feature vector per audio frame
  (:func:`emocontext.features.audio.audio_features`, optionally PCA-whitened), ``T_a`` >= 1.
* ``audio_mask`` ``(B, T_a)`` bool, True = valid audio frame; all True when absent. Valid audio
  frames need not be a prefix: the alignment indexes the valid frames in their order.

Output:

* ``logits`` ``(B, K)``.
* ``temporal_attention``: for ``av_lstm`` the **perception attentions** ``(B, N, T)`` with
  ``N = K`` (one distribution over visual steps per emotion, eq. 9; each row sums to 1 over the
  valid steps, 0 at padded steps) -- note the extra ``N`` axis compared with the ``(B, T)`` of
  other pooling models. For ``av_lstm_last`` ``(B, T)`` one-hot at the last valid step; for
  ``av_lstm_mean`` ``(B, T)`` uniform over the valid steps.
* ``frame_logits`` ``(B, T, K)``: the clip classifier applied to each ``h_{av,t}`` (0 at padding).
* ``extras["alignment"]`` ``(B, T, 2w)``: the alignment weights ``l_{t,i}`` of the main encoder
  (rows of valid steps sum to 1, unless the clip has no valid audio; rows of padded steps are 0).
* ``extras["alignment_positions"]`` ``(B, T, 2w)`` long: the audio frame index (into ``audio``'s
  time axis) of each slot, ``-1`` where the slot is outside the valid audio or the step is padding.
* ``extras["alignment_centre"]`` ``(B, T)`` long: ``p_t`` as an index into ``audio`` (``-1`` at
  padded steps or without audio).
* ``extras["perception_attention"]`` ``(B, N, T)`` (``av_lstm`` only) and, with two encoders,
  ``extras["selection_alignment"]`` / ``extras["selection_alignment_positions"]`` of the selection
  encoder.

Masking: padded visual steps (``mask`` False) are skipped by the AV-LSTM and get no attention;
padded audio frames (``audio_mask`` False) are skipped by the Audio LSTM and never enter a window;
face features of face-less frames (``face_mask`` False) are never read: their visual encoding is
exactly 0, and the AV-LSTM still steps there on the aligned audio. Neither the values nor the number
of padded steps or frames changes a logit. A clip without valid audio gets ``x_t = 0``; a clip
without valid visual steps gets the classifier's bias.

Deviations (the paper's sizes are in section 4.1):

* **Features.** The paper's visual stream is two face features (49 landmarks PCA-whitened to 20,
  1024 selected pool5 features of a face-recognition CNN), each through a 64-unit hidden layer,
  concatenated and through another hidden layer; its audio is 939 YAAFE features PCA-whitened to
  50. Here the visual stream is one face feature (any ``face_dim``; the project's FER2013 CNN gives
  1280) through one hidden layer, and the audio is :mod:`emocontext.features.audio`'s 47 librosa
  descriptors per frame (PCA-whitened to at most 50 if wanted): YAAFE is not on a registry.
* **Hidden layers** are Linear, ReLU, Dropout (:class:`~emocontext.models.base.StreamEncoder`);
  the paper gives their width (= the LSTM size) but not the nonlinearity.
* **Sizes.** Baselines: 64 cells for both LSTMs (4.1). ``av_lstm``: the paper says the selection
  and representation encoders have "dimensions 32 and 8" but also that the selection network is
  "smaller" and that the model "works best when the memory cell number of LSTMs for h_av equals to
  32"; we read it as ``h_av`` 32 and ``h^sel_av`` 8, emotion embeddings of size 8.
* **Alignment score size.** The size of ``W^a h`` and ``W^v v`` in eq. (5) is not given; it is
  ``attention_dim`` (default: the encoder's hidden size). Eq. (5) has no bias; neither has this.
* **Average encoding.** Eq. (8) sums per-step probabilities; here the per-step hidden states are
  averaged and classified (the "average of the whole h_av" of the text; with a linear classifier
  this is the average of per-step logits).
* **Dropout** 0.5 after the hidden layers and on the clip representation before the classifier
  ("in all layers except the LSTM layer", 4.1). Adadelta, weight decay 0.0005, 50 epochs and
  selection on validation accuracy are the registered training recipe
  (:data:`emocontext.models.recipes.AV_LSTM`, ``emocontext models --recipes``); the optimiser's
  weight decay reaches every layer ("in all the layers").
* ``align="none"`` (not in the paper, a sanity baseline): no learned alignment, ``x_t`` is the audio
  state at ``p_t`` (nearest-frame resampling of ``h_a`` to the visual rate); ``extras["alignment"]``
  is then one-hot at slot ``w - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .base import (
    EmotionModel,
    Output,
    StreamEncoder,
    batch_masks,
    compact_order,
    masked_mean,
    masked_softmax,
    require,
    run_lstm,
    zero_invalid,
)
from .recipes import AV_LSTM
from .registry import register_model

__all__ = ["AVEncoder", "AVEncoding", "AVLSTM", "AppearanceLSTM", "coarse_alignment", "matched_window"]

_PAPER = "Chao et al. 2016"
_ALIGN = ("soft", "none")
_ENCODING = ("perception", "last", "mean")


def coarse_alignment(mask: Tensor, audio_lengths: Tensor) -> Tensor:
    """``p_t = floor(t * T_a / T)`` per clip: ``mask`` ``(B, T)`` bool, ``audio_lengths`` ``(B,)`` -> ``(B, T)`` long.

    ``t`` is the rank of the step among the clip's valid steps and ``T`` their number, ``T_a`` the
    clip's number of valid audio frames; ``p_t`` indexes the valid audio frames (``0 <= p_t < T_a``
    at valid steps when ``T_a > 0``). Padded steps get the value of the last valid step before them.
    """
    rank = (mask.long().cumsum(1) - 1).clamp(min=0)
    n_visual = mask.long().sum(1, keepdim=True).clamp(min=1)
    return torch.div(rank * audio_lengths.long().unsqueeze(1), n_visual, rounding_mode="floor")


def matched_window(audio_frames_per_step: float | None) -> int:
    """Half width ``w`` of the alignment window that reaches one video frame each way: ``ceil(T_a / T)``.

    ``audio_frames_per_step``: audio frames per video frame (``T_a / T``); the paper's 31.25 / 25 = 1.25
    gives ``w = 2`` (Fig. 2's four slots), as does None (rate unknown).

    Raises:
        ConfigError: ``audio_frames_per_step`` not > 0.
    """
    if audio_frames_per_step is None:
        return 2
    if not audio_frames_per_step > 0:
        raise ConfigError(f"audio_frames_per_step must be > 0, got {audio_frames_per_step!r}")
    return max(1, math.ceil(audio_frames_per_step - 1e-9))


@dataclass
class AVEncoding:
    """What :class:`AVEncoder` returns for ``B`` clips, ``T`` visual steps, window ``2w``.

    Attributes:
        states: ``(B, T, H)`` AV-LSTM outputs ``h_av``, forward-filled at padded steps.
        alignment: ``(B, T, 2w)`` weights ``l_{t,i}`` (eq. 4), 0 outside the valid audio and at padding.
        positions: ``(B, T, 2w)`` long, audio frame index of each slot, -1 where invalid.
        centre: ``(B, T)`` long, ``p_t`` as an audio frame index, -1 at padding or without audio.
    """

    states: Tensor
    alignment: Tensor
    positions: Tensor
    centre: Tensor


class AVEncoder(nn.Module):
    """Audio LSTM + face hidden layer + windowed soft alignment + AV-LSTM (Chao et al. 2016, 2.1, Fig. 1a).

    Eq. (4)-(6) with a window of ``2 * window`` slots; see the module docstring for the window's
    exact positions. ``forward(face, face_valid, mask, audio, audio_valid) -> AVEncoding``, shapes
    ``(B, T, D_f)``, ``(B, T)``, ``(B, T)``, ``(B, T_a, D_a)``, ``(B, T_a)``.
    """

    def __init__(
        self,
        *,
        face_dim: int,
        audio_dim: int,
        hidden_size: int,
        window: int = 2,
        align: Literal["soft", "none"] = "soft",
        attention_dim: int | None = None,
        dropout: float = 0.5,
    ):
        super().__init__()
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ConfigError(f"window (half width w, 2w slots) must be an int >= 1, got {window!r}")
        if align not in _ALIGN:
            raise ConfigError(f"align must be one of {_ALIGN}, got {align!r}")
        self.window, self.align = window, align
        self.audio_fc = StreamEncoder(audio_dim, hidden_size, dropout)
        self.audio_lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.face_fc = StreamEncoder(face_dim, hidden_size, dropout)
        if align == "soft":
            att = attention_dim or hidden_size
            self.w_audio = nn.Linear(hidden_size, att, bias=False)  # W^a
            self.w_visual = nn.Linear(hidden_size, att, bias=False)  # W^v
            self.w_slot = nn.Parameter(torch.empty(2 * window, att).uniform_(-1 / math.sqrt(att), 1 / math.sqrt(att)))
        self.av_lstm = nn.LSTM(2 * hidden_size, hidden_size, batch_first=True)

    def forward(self, face: Tensor, face_valid: Tensor, mask: Tensor, audio: Tensor, audio_valid: Tensor) -> AVEncoding:
        B, T = mask.shape
        T_a = audio.shape[1]
        w2 = 2 * self.window

        # Audio LSTM over the valid audio frames, then the valid frames moved to the front, in order.
        h_a, _ = run_lstm(self.audio_lstm, self.audio_fc(zero_invalid(audio, audio_valid)), audio_valid)
        order, audio_len = compact_order(audio_valid)
        H = h_a.shape[-1]
        h_a = h_a.gather(1, order.unsqueeze(-1).expand(B, T_a, H))

        # Coarse alignment p_t and the window's slots, as indices into the compacted audio.
        centre = coarse_alignment(mask, audio_len)  # (B, T)
        slots = torch.arange(w2, device=mask.device) - (self.window - 1)
        pos = centre.unsqueeze(-1) + slots  # (B, T, 2w)
        ok = (pos >= 0) & (pos < audio_len.view(B, 1, 1)) & mask.unsqueeze(-1)
        idx = pos.clamp(0, T_a - 1).view(B, T * w2)

        def window_of(x: Tensor) -> Tensor:  # (B, T_a, E) -> (B, T, 2w, E), exactly 0 at invalid slots
            g = x.gather(1, idx.unsqueeze(-1).expand(B, T * w2, x.shape[-1])).view(B, T, w2, -1)
            return torch.where(ok.unsqueeze(-1), g, torch.zeros((), dtype=g.dtype, device=g.device))

        v = zero_invalid(self.face_fc(zero_invalid(face, face_valid)), face_valid)  # (B, T, H)
        h_att = window_of(h_a)
        if self.align == "soft":
            keys = window_of(self.w_audio(h_a))  # W^a h_att,i
            scores = (torch.tanh(keys + self.w_visual(v).unsqueeze(2)) * self.w_slot).sum(-1)  # eq. (5)
            weights = masked_softmax(scores, ok)  # eq. (4)
        else:
            onehot = slots == 0
            weights = (ok & onehot).to(h_a.dtype)
        x = (weights.unsqueeze(-1) * h_att).sum(2)  # eq. (6)

        states, _ = run_lstm(self.av_lstm, torch.cat([x, v], dim=-1), mask)
        original = order.gather(1, idx).view(B, T, w2)  # compacted index -> index into audio's time axis
        positions = torch.where(ok, original, torch.full_like(original, -1))
        has_audio = mask & (audio_len > 0).unsqueeze(1)
        centre_idx = order.gather(1, centre.clamp(0, T_a - 1))
        centre_idx = torch.where(has_audio, centre_idx, torch.full_like(centre_idx, -1))
        return AVEncoding(states=states, alignment=weights, positions=positions, centre=centre_idx)


class AVLSTM(EmotionModel):
    """Aligned audio-visual LSTM with perception attention, last-time or average encoding.

    Chao et al. 2016, sections 2.1 and 2.3, eq. (4)-(11), Fig. 1; the full description, shapes,
    masking and deviations are in this module's docstring. ``encoding``: ``"perception"``
    (eq. 9-11, ``av_lstm``), ``"last"`` (eq. 7, ``av_lstm_last``) or ``"mean"`` (eq. 8,
    ``av_lstm_mean``).

    Shapes: ``face`` ``(B, T, D_f)``, ``audio`` ``(B, T_a, D_a)`` -> ``logits`` ``(B, K)``;
    ``temporal_attention`` ``(B, K, T)`` for ``"perception"`` (one distribution per emotion),
    ``(B, T)`` otherwise; ``extras["alignment"]`` and ``extras["alignment_positions"]``
    ``(B, T, 2w)``.

    ``window``: the half width ``w``; None = :func:`matched_window` of ``audio_frames_per_step`` (the
    training clips' audio frames per video frame; 2 at the paper's rates and without it).
    """

    streams = ("face", "audio")

    def __init__(
        self,
        *,
        num_classes: int,
        face_dim: int,
        audio_dim: int | None = None,
        encoding: Literal["perception", "last", "mean"] = "perception",
        hidden_size: int = 32,
        selection_size: int = 8,
        embed_dim: int = 8,
        two_encoders: bool = True,
        window: int | None = None,
        audio_frames_per_step: float | None = None,
        align: Literal["soft", "none"] = "soft",
        attention_dim: int | None = None,
        dropout: float = 0.5,
    ):
        super().__init__(num_classes)
        if window is None:
            window = matched_window(audio_frames_per_step)
        if audio_dim is None:
            raise ConfigError(
                "AVLSTM needs audio_dim (size D_a of batch['audio'], e.g. AudioFeatureSpec().feature_dim)"
            )
        if encoding not in _ENCODING:
            raise ConfigError(f"encoding must be one of {_ENCODING}, got {encoding!r}")
        for key, val in (
            ("face_dim", face_dim),
            ("audio_dim", audio_dim),
            ("hidden_size", hidden_size),
            ("selection_size", selection_size),
            ("embed_dim", embed_dim),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ConfigError(f"{key} must be a positive int, got {val!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.face_dim, self.audio_dim = face_dim, audio_dim
        self.encoding = encoding
        self.two_encoders = bool(two_encoders) and encoding == "perception"
        enc = dict(
            face_dim=face_dim,
            audio_dim=audio_dim,
            window=window,
            align=align,
            attention_dim=attention_dim,
            dropout=dropout,
        )
        self.encoder = AVEncoder(hidden_size=hidden_size, **enc)
        self.dropout = nn.Dropout(dropout)
        if encoding == "perception":
            sel_dim = selection_size if self.two_encoders else hidden_size
            self.selector = AVEncoder(hidden_size=selection_size, **enc) if self.two_encoders else None
            self.w_h = nn.Linear(sel_dim, embed_dim, bias=False)  # W^h, eq. (9)
            self.emotions = nn.Parameter(torch.randn(num_classes, embed_dim))  # e_1..e_N
            bound = 1 / math.sqrt(hidden_size)
            self.w_n = nn.Parameter(torch.empty(num_classes, hidden_size).uniform_(-bound, bound))  # W^n, eq. (10)
            self.b_n = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))  # b^n
        else:
            self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        name = f"AVLSTM(encoding={self.encoding})"
        face = require(batch, "face", name)
        audio = require(batch, "audio", name, "(B, T_a, D_a)")
        mask, face_mask = batch_masks(batch, face)
        B, T = mask.shape
        if face.dim() != 3 or face.shape[-1] != self.face_dim:
            raise ConfigError(f"{name}: batch['face'] must be (B, T, {self.face_dim}), got {tuple(face.shape)}")
        if audio.dim() != 3 or audio.shape[0] != B or audio.shape[-1] != self.audio_dim or audio.shape[1] < 1:
            raise ConfigError(
                f"{name}: batch['audio'] must be (B={B}, T_a >= 1, {self.audio_dim}), got {tuple(audio.shape)}"
            )
        audio_mask = batch.get("audio_mask")
        if audio_mask is None:
            audio_mask = torch.ones(audio.shape[:2], dtype=torch.bool, device=audio.device)
        else:
            audio_mask = audio_mask.to(audio.device).bool()
            if audio_mask.shape != audio.shape[:2]:
                raise ConfigError(
                    f"batch['audio_mask'] has shape {tuple(audio_mask.shape)}, expected {tuple(audio.shape[:2])}"
                )

        main = self.encoder(face, face_mask, mask, audio, audio_mask)
        h_av = zero_invalid(main.states, mask)
        extras = {"alignment": main.alignment, "alignment_positions": main.positions, "alignment_centre": main.centre}

        if self.encoding == "perception":
            if self.selector is not None:
                sel = self.selector(face, face_mask, mask, audio, audio_mask)
                h_sel = sel.states
                extras["selection_alignment"] = sel.alignment
                extras["selection_alignment_positions"] = sel.positions
            else:
                h_sel = main.states
            scores = torch.einsum("bte,ne->bnt", self.w_h(h_sel), self.emotions)
            attention = masked_softmax(scores, mask.unsqueeze(1))  # eq. (9), (B, N, T)
            rep = self.dropout(torch.einsum("bnt,bth->bnh", attention, h_av))  # per-emotion representation
            logits = (rep * self.w_n).sum(-1) + self.b_n  # eq. (10); eq. (11) is the softmax of the loss
            frames = h_av @ self.w_n.t() + self.b_n
            extras["perception_attention"] = attention
        else:
            if self.encoding == "last":
                # forward-filled states: the last column is the state after the last valid step
                clip = main.states[:, -1]
                last = mask.long().cumsum(1).argmax(1)  # first index reaching the final count = last valid step
                attention = torch.zeros(B, T, dtype=h_av.dtype, device=h_av.device)
                attention[torch.arange(B, device=mask.device), last] = 1.0
                attention = attention * mask.to(h_av.dtype)
            else:
                clip = masked_mean(h_av, mask)
                attention = mask.to(h_av.dtype) / mask.sum(1, keepdim=True).clamp(min=1).to(h_av.dtype)
            logits = self.head(self.dropout(clip))
            frames = self.head(h_av)
        return Output(
            logits=logits,
            temporal_attention=attention,
            frame_logits=zero_invalid(frames, mask),
            extras=extras,
        )


class AppearanceLSTM(EmotionModel):
    """Face appearance alone: hidden layer, one 64-cell LSTM, average encoding (Chao et al. 2016, Table 1 row 1).

    Section 4.1: "the performance of the average encoding with single face appearance feature ...
    The model for appearance feature has one hidden layer and one LSTM layer with 64 memory
    cells"; Table 1's "average encoding (pool5 only)". Per face frame: Linear(D_f, 64), ReLU,
    Dropout 0.5 (the hidden layer, as :class:`AVEncoder`'s); the LSTM runs over the face frames
    only; the clip feature is the mean of its states over them (eq. 8 read as in this module's
    docstring), Dropout, Linear(64, K).

    Shapes: ``face`` ``(B, T, D_f)`` -> ``logits`` ``(B, K)``; ``frame_logits`` ``(B, T, K)`` (0 at
    padding); ``temporal_attention`` ``(B, T)`` uniform over the face frames. A clip without a face
    gets the classifier's bias. Deviation: the paper's appearance feature is 1024 selected pool5
    values of a face-recognition CNN; here any face feature (the project's 1280-d one).
    """

    streams = ("face",)

    def __init__(self, *, num_classes: int, face_dim: int, hidden_size: int = 64, dropout: float = 0.5):
        super().__init__(num_classes)
        self.encoder = StreamEncoder(face_dim, hidden_size, dropout)
        self.lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        face = require(batch, "face", "AppearanceLSTM")
        mask, face_mask = batch_masks(batch, face)
        states, _ = run_lstm(self.lstm, self.encoder(zero_invalid(face, face_mask)), face_mask)
        states = zero_invalid(states, face_mask)
        clip = masked_mean(states, face_mask)
        weights = face_mask.to(face.dtype) / face_mask.sum(1, keepdim=True).clamp(min=1).to(face.dtype)
        return Output(
            logits=self.head(self.dropout(clip)),
            frame_logits=zero_invalid(self.head(states), face_mask),
            temporal_attention=weights,
        )


# ---------------------------------------------------------------------------------------------
# Registry names (options: AVLSTM's keyword arguments)
# ---------------------------------------------------------------------------------------------

#: AVLSTM options that only the perception encoding reads.
_PERCEPTION_ONLY = ("selection_size", "embed_dim", "two_encoders")


register_model(
    AVLSTM,
    name="av_lstm",
    paper=f"{_PAPER}, 2.1 + 2.3, eq. (4)-(6), (9)-(11), Fig. 1",
    description="AV-LSTM with soft audio-visual alignment and per-emotion perception attention (h_av 32, selection 8).",
    fixed={"encoding": "perception"},
    recipe=AV_LSTM,
)
register_model(
    AVLSTM,
    name="av_lstm_last",
    paper=f"{_PAPER}, 2.1, eq. (4)-(7), 4.1",
    description="Aligned AV-LSTM (64 cells), last-time encoding: classify the state after the last valid step.",
    fixed={"encoding": "last"},
    defaults={"hidden_size": 64},
    unused=_PERCEPTION_ONLY,
    recipe=AV_LSTM,
)
register_model(
    AVLSTM,
    name="av_lstm_mean",
    paper=f"{_PAPER}, 2.1, eq. (4)-(6), (8), 4.1",
    description="Aligned AV-LSTM (64 cells), average encoding: classify the mean state over the valid steps.",
    fixed={"encoding": "mean"},
    defaults={"hidden_size": 64},
    unused=_PERCEPTION_ONLY,
    recipe=AV_LSTM,
)
register_model(
    AppearanceLSTM,
    name="av_face_mean",
    paper=f"{_PAPER}, 4.1, Table 1 'average encoding (pool5 only)'",
    description="Face appearance only: hidden layer, LSTM (64 cells), average encoding (Table 1 baseline).",
    recipe=AV_LSTM,
)
