"""CAER-Net's building blocks (Lee et al., ICCV 2019, section 3.2): encoders, attention, fusion, head.

The models that assemble them (CAER-Net, CAER-Net-S, the feature-map variant) are in
:mod:`emocontext.models.caer_net`, which re-exports the public names of this module; the
deviations from the paper that these blocks carry are listed in that module's docstring.

* :class:`CAEREncoder` -- the face / context encoding trunk: 5 conv layers (32, 64, 128, 256, 256)
  with BN and ReLU, 4 max-pools (the first without temporal pooling).
* :class:`SpatialAttention` -- the attention inference module, eq. (3)-(4).
* :class:`AdaptiveFusion` -- the adaptive fusion attention, eq. (5).
* :class:`CAERHead` -- attention (optional), fusion (optional) and the classifier, eq. (6).
* :func:`masked_batch_norm` -- batch normalisation whose statistics count only valid time steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ConfigError
from .base import masked_softmax

__all__ = [
    "PAPER_CHANNELS",
    "PAPER_CONTEXT_CHANNELS_AS_PRINTED",
    "CAEREncoder",
    "SpatialAttention",
    "AdaptiveFusion",
    "CAERHead",
    "masked_batch_norm",
]

#: The paper's channels of the five convolution layers of each encoding stream (section 3.2.1).
PAPER_CHANNELS = (32, 64, 128, 256, 256)
#: The context stream's list as printed in 3.2.1: "five convolution layers ... 32, 64, 128, and 256" -- four
#: values for five layers. The models default to :data:`PAPER_CHANNELS` for both streams (the text says
#: the context stream is "similar to" the face stream, whose list has five values); pass
#: ``context_channels=PAPER_CONTEXT_CHANNELS_AS_PRINTED`` for the four-layer reading (FIDELITY.md).
PAPER_CONTEXT_CHANNELS_AS_PRINTED = (32, 64, 128, 256)


# ---------------------------------------------------------------------------------------------
# Masking helpers for 3D feature volumes
# ---------------------------------------------------------------------------------------------


def _time_mask(x: Tensor, valid: Tensor) -> Tensor:
    """``valid`` ``(N, T)`` viewed to broadcast over ``x`` ``(N, C, T, h, w)``."""
    return valid.view(valid.shape[0], 1, valid.shape[1], *([1] * (x.dim() - 3)))


def _remask(x: Tensor, valid: Tensor | None) -> Tensor:
    """``x`` ``(N, C, T, h, w)`` with exactly 0 at the time steps where ``valid`` ``(N, T)`` is False."""
    if valid is None:
        return x
    return torch.where(_time_mask(x, valid), x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, valid: Tensor | None) -> Tensor:
    """Batch normalisation of ``x`` ``(N, C, T, h, w)`` whose statistics count only valid time steps.

    In training, the mean and variance of each channel are taken over the positions whose time
    step is valid (``valid`` ``(N, T)``), and ``bn``'s running statistics are updated with them
    exactly as :class:`torch.nn.BatchNorm3d` would (momentum, unbiased running variance), so the
    module and its ``state_dict`` stay a plain ``BatchNorm3d``. In evaluation, or with ``valid``
    None, this is ``bn(x)``. Outputs at invalid steps are meaningless (the caller zeroes them).
    """
    if valid is None or not bn.training or not bn.track_running_stats:
        return bn(x)
    w = _time_mask(x, valid).to(x.dtype)
    n = w.sum() * x[0, 0, 0].numel()
    if n == 0:  # no valid position at all: the output is zeroed by the caller, statistics untouched
        return x
    if n == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got {int(n)} valid value")
    dims = [d for d in range(x.dim()) if d != 1]
    mean = (x * w).sum(dims) / n
    shape = [1, -1] + [1] * (x.dim() - 2)
    var = (((x - mean.view(shape)) ** 2) * w).sum(dims) / n
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        bn.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
        bn.running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / (n - 1))
    y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y


def _pool_valid(valid: Tensor, stride: int) -> Tensor:
    """Validity of the steps after a temporal max-pool (kernel = stride, ceil mode): any valid input step."""
    if stride == 1:
        return valid
    return F.max_pool1d(valid.float().unsqueeze(1), stride, stride, ceil_mode=True).squeeze(1) > 0


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def _conv(dims: int, cin: int, cout: int, kernel_size: int) -> nn.Module:
    return (nn.Conv3d if dims == 3 else nn.Conv2d)(cin, cout, kernel_size, padding=kernel_size // 2)


def _bn(dims: int, channels: int) -> nn.Module:
    return (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(channels)


def _check_dims(dims: int) -> None:
    if dims not in (2, 3):
        raise ConfigError(f"dims must be 2 or 3, got {dims!r}")


class CAEREncoder(nn.Module):
    """One encoding stream of CAER-Net: conv 3x3(x3) -> BN -> ReLU, with a max-pool after each but the last.

    Lee et al., ICCV 2019, section 3.2.1 ("Face encoding stream", "Context encoding stream",
    "Static model"): "5 convolutional layers with 3x3x3 kernels followed by batch normalization
    (BN), rectified linear unit (ReLU) layers and 4 max-pooling layers with stride 2x2x2 except
    for the first layer. The first pooling layer has a kernel size 1x2x2"; "The number of kernels
    for five convolution layers are 32, 64, 128, 256 and 256". The static model replaces the 3D
    layers by 2D ones. The pools follow conv 1-4 (as in C3D), so the output stride is 16 in
    space and 8 in time (dynamic model).

    Shapes: ``dims=3``: ``(N, 3, T, H, W)`` -> ``(N, C, T', H/16, W/16)`` with ``T' = ceil(T / 8)``;
    ``dims=2``: ``(N, 3, H, W)`` -> ``(N, C, H/16, W/16)``; ``C = channels[-1]``. The spatial
    averaging is left to the caller (the context stream applies attention first).

    Args:
        dims: 3 (dynamic model) or 2 (static model).
        in_channels: input channels (3 for RGB).
        channels: output channels of the convolution layers (the paper: five, 32-256); any
            number of layers >= 1, a pool after each but the last (tests use tiny widths).

    Masking (``dims=3``): ``forward(x, valid)`` with ``valid`` ``(N, T)`` zeroes invalid time
    steps after every layer and computes batch-norm statistics over valid steps only
    (:func:`masked_batch_norm`); pools use ceil mode, so that, with the valid steps first, a
    clip gives the same output alone as padded (zeros are neutral for a max over ReLU outputs,
    and look like the convolution's own zero padding).
    """

    def __init__(self, *, dims: int = 3, in_channels: int = 3, channels: Sequence[int] = PAPER_CHANNELS):
        super().__init__()
        _check_dims(dims)
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ConfigError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
        self.dims = dims
        self.out_channels = channels[-1]
        sizes = (in_channels, *channels)
        self.convs = nn.ModuleList(_conv(dims, sizes[i], sizes[i + 1], 3) for i in range(len(channels)))
        self.bns = nn.ModuleList(_bn(dims, c) for c in channels)
        self.pools = nn.ModuleList()
        self.temporal_strides: list[int] = []
        for i in range(len(channels) - 1):
            if dims == 3:
                k = (1, 2, 2) if i == 0 else (2, 2, 2)
                self.pools.append(nn.MaxPool3d(k, k, ceil_mode=True))
                self.temporal_strides.append(k[0])
            else:
                self.pools.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        #: frames of the input per time step of the output (8 for the paper's dynamic model)
        self.temporal_stride = int(torch.tensor(self.temporal_strides or [1]).prod())

    def forward(self, x: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``(features, valid')``: the last layer's map and the validity ``(N, T')`` of its time steps."""
        if valid is not None and self.dims != 3:
            raise ConfigError("CAEREncoder: a time mask needs dims=3")
        x = _remask(x, valid)
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            x = _remask(F.relu(masked_batch_norm(bn, conv(x), valid)), valid)
            if i < len(self.pools):
                x = self.pools[i](x)
                if valid is not None:
                    valid = _pool_valid(valid, self.temporal_strides[i])
        return x, valid


class SpatialAttention(nn.Module):
    """Attention inference module of the context stream, with the spatial softmax and the weighted sum.

    Lee et al., ICCV 2019, section 3.2.1, eq. (3)-(4): "two convolution layers with 3x3x3 kernels
    producing 128 and 1 feature channels"; the map ``A`` is normalised by a spatial softmax
    ``A^_i = exp(A_i) / sum_j exp(A_j)`` over the ``h x w`` cells, "only across spatial axes not
    temporal axis", and applied to the features, ``X^_C = A^ (.) X_C``, which are then pooled
    over space. The attention "is implicitly learned in an unsupervised manner".

    Layers: conv ``kernel_size`` ``C -> hidden_channels``, BN, ReLU, conv ``kernel_size``
    ``hidden_channels -> 1`` (deviation: no BN/ReLU on the last one, see the module docstring).

    Shapes:

    * ``dims=2``: ``x`` ``(N, C, h, w)`` -> ``(attended (N, C), attention (N, h, w))`` with
      ``attended = sum_ij attention_ij x_:ij`` and each map summing to 1.
    * ``dims=3``: ``x`` ``(N, C, T, h, w)``, optional ``valid`` ``(N, T)`` -> ``(attended (N, T, C),
      attention (N, T, h, w))``: the convolutions run over time too, the softmax per time step;
      both outputs are exactly 0 at invalid steps, and invalid steps never influence valid ones
      (zeroed before each convolution; batch-norm statistics over valid steps only).

    With ``enabled=False`` (Table 3 without "cA") the module has no parameters and the map is
    uniform, ``1 / (h w)``: the attended feature is the spatial average.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int = 128, *, kernel_size: int = 3, dims: int = 2, enabled: bool = True
    ):
        super().__init__()
        _check_dims(dims)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        self.dims = dims
        self.enabled = enabled
        if enabled:
            self.conv1 = _conv(dims, in_channels, hidden_channels, kernel_size)
            self.bn1 = _bn(dims, hidden_channels)
            self.conv2 = _conv(dims, hidden_channels, 1, kernel_size)

    def logits(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """Unnormalised map ``A``: ``(N, h, w)`` (``dims=2``) or ``(N, T, h, w)`` (``dims=3``)."""
        if not self.enabled:
            shape = x.shape[:1] + x.shape[2:]
            return x.new_zeros(shape)
        h = _remask(F.relu(masked_batch_norm(self.bn1, self.conv1(_remask(x, valid)), valid)), valid)
        return self.conv2(h).squeeze(1)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.dim() != self.dims + 2:
            raise ConfigError(
                f"SpatialAttention(dims={self.dims}) needs a {self.dims + 2}-d input, got {tuple(x.shape)}"
            )
        if valid is not None and self.dims != 3:
            raise ConfigError("SpatialAttention: a time mask needs dims=3")
        a = self.logits(x, valid)  # (N, h, w) or (N, T, h, w)
        flat = torch.softmax(a.flatten(-2), dim=-1)  # eq. (3), per time step
        attention = flat.view_as(a)
        if self.dims == 2:
            attended = torch.einsum("nchw,nhw->nc", x, attention)  # eq. (4), summed over space
            return attended, attention
        x = _remask(x, valid)
        if valid is not None:
            attention = torch.where(valid[..., None, None], attention, torch.zeros((), dtype=a.dtype, device=a.device))
        attended = torch.einsum("ncthw,nthw->ntc", x, attention)
        return attended, attention


class _ReLUDropout(nn.Module):
    """ReLU then dropout ``p``, one parameterless module."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(F.relu(x), self.p, self.training)


class AdaptiveFusion(nn.Module):
    """Adaptive fusion attention: ``lambda_F``, ``lambda_C`` from each feature, softmax, weighted concatenation.

    Lee et al., ICCV 2019, section 3.2.2, eq. (5): ``lambda_F = F(X_F; W_D)``,
    ``lambda_C = F(X^_C; W_E)``, a softmax makes ``lambda_F + lambda_C = 1``, and
    ``X_A = [X_F lambda_F ; X^_C lambda_C]``. "The intermediate two layers that receive each
    stream feature as input produce 128 channel feature, the remaining two layers produce 1
    channel attention": per stream, 1x1 conv to ``hidden`` (128), ReLU (our choice, see the
    module docstring), 1x1 conv to 1 -- written as linear layers on the pooled feature.

    Shapes: ``face`` ``(N, D_f)``, ``context`` ``(N, D_c)``, optional ``face_valid`` ``(N,)``
    bool -> ``(fused (N, D_f + D_c), lambdas (N, 2))`` with ``lambdas[:, 0] = lambda_face`` and
    ``lambdas[:, 1] = lambda_context``, summing to 1.

    Where ``face_valid`` is False (no face in that frame or clip) the face feature is never
    read: ``lambda_face`` is exactly 0, ``lambda_context`` 1 and the face half of ``fused`` is 0.
    With ``attention=False`` (Table 3 without "fA") there are no parameters and the weights are
    0.5 / 0.5 (0 / 1 without a face): plain concatenation.

    ``dropout``: between the two 1x1 layers of each branch (section 5.1: "dropout scheme with the
    ratio of 0.5 between 1x1 convolution layers"); the models pass their ``fusion_dropout`` (0.5).
    """

    def __init__(
        self, face_dim: int, context_dim: int, hidden: int = 128, *, attention: bool = True, dropout: float = 0.0
    ):
        super().__init__()
        self.face_dim, self.context_dim = face_dim, context_dim
        self.attention = attention
        if attention:
            # index 1 holds ReLU + dropout (no parameters), so state dicts keep the keys 0 and 2
            self.face_score = nn.Sequential(nn.Linear(face_dim, hidden), _ReLUDropout(dropout), nn.Linear(hidden, 1))
            self.context_score = nn.Sequential(
                nn.Linear(context_dim, hidden), _ReLUDropout(dropout), nn.Linear(hidden, 1)
            )

    @property
    def out_dim(self) -> int:
        return self.face_dim + self.context_dim

    def forward(self, face: Tensor, context: Tensor, face_valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if face_valid is None:
            face_valid = torch.ones(face.shape[0], dtype=torch.bool, device=face.device)
        face = torch.where(face_valid[:, None], face, torch.zeros((), dtype=face.dtype, device=face.device))
        valid = torch.stack([face_valid, torch.ones_like(face_valid)], dim=-1)  # (N, 2)
        if self.attention:
            scores = torch.cat([self.face_score(face), self.context_score(context)], dim=-1)  # (N, 2)
        else:
            scores = torch.zeros(face.shape[0], 2, dtype=context.dtype, device=context.device)
        lambdas = masked_softmax(scores, valid)  # eq. (5): lambda_F + lambda_C = 1
        fused = torch.cat([face * lambdas[:, :1], context * lambdas[:, 1:]], dim=-1)
        return fused, lambdas


def _classifier(in_dim: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Section 3.2.2, eq. (6): "the first convolution layer produces 128 channel feature followed by ReLU
    and dropout layers ... the second convolution layer produces K channel feature" (1x1 convs as linear)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
    )


# ---------------------------------------------------------------------------------------------
# Shared head: context attention, fusion, classifier
# ---------------------------------------------------------------------------------------------


class CAERHead(nn.Module):
    """Attention (optional), fusion (optional) and classifier of one frame or clip.

    ``forward(face (N, D_f) | None, face_valid (N,), context_map (N, C, h, w) | None)`` ->
    ``(logits (N, K), attention (N, h, w) | None, lambdas (N, 2) | None)``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        face_dim: int,
        context_channels: int,
        use_face: bool,
        use_context: bool,
        context_attention: bool,
        fusion_attention: bool,
        attention_channels: int,
        attention_kernel: int,
        fusion_hidden: int,
        classifier_hidden: int,
        dropout: float,
        dims: int = 2,
        fusion_dropout: float = 0.0,
    ):
        super().__init__()
        if not (use_face or use_context):
            raise ConfigError("at least one of use_face and use_context must be True")
        self.use_face, self.use_context = use_face, use_context
        self.context_attention = context_attention and use_context
        self.face_dim = face_dim if use_face else 0
        self.context_dim = context_channels if use_context else 0
        in_dim = 0
        if use_context:
            self.attention = SpatialAttention(
                context_channels,
                attention_channels,
                kernel_size=attention_kernel,
                dims=dims,
                enabled=self.context_attention,
            )
            in_dim += context_channels
        if use_face:
            in_dim += face_dim
        self.fusion = (
            AdaptiveFusion(
                face_dim, context_channels, fusion_hidden, attention=fusion_attention, dropout=fusion_dropout
            )
            if use_face and use_context
            else None
        )
        self.in_dim = in_dim
        self.classifier = _classifier(in_dim, classifier_hidden, num_classes, dropout)

    def empty_logits(self, like: Tensor) -> Tensor:
        """``(1, K)``: the classifier's output for a zero feature (a clip with no usable frame)."""
        return self.classifier(like.new_zeros(1, self.in_dim))

    def fuse(self, face: Tensor | None, face_valid: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``(fused feature (N, D), lambdas (N, 2) | None)`` from pooled features."""
        if self.fusion is not None:
            return self.fusion(face, context, face_valid)
        if self.use_face:
            return torch.where(face_valid[:, None], face, torch.zeros((), dtype=face.dtype, device=face.device)), None
        return context, None

    def forward(
        self, face: Tensor | None, face_valid: Tensor, context_map: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        context, attention = None, None
        if self.use_context:
            context, attention = self.attention(context_map)
            if not self.context_attention:
                attention = None
        fused, lambdas = self.fuse(face, face_valid, context)
        return self.classifier(fused), attention, lambdas
