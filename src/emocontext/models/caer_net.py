"""CAER-Net and CAER-Net-S (Lee et al., ICCV 2019), and a variant on frozen feature maps.

J. Lee, S. Kim, S. Kim, J. Park, K. Sohn, "Context-Aware Emotion Recognition Networks", ICCV 2019.
Paper text: ``../shared/papers/caer-net_lee2019_iccv.md`` (section 3.2 architecture, 5.1
implementation details, Table 3 ablations).

Registry names and what they implement:

=================  =====================================================================  ==============
name               model                                                                  paper
=================  =====================================================================  ==============
caer_net           dynamic model: two 3D-CNN streams on pixel clips, attention, fusion    3.2.1-3.2.2
caer_net_s         static model: the same with 2D layers, one frame at a time             3.2.1 "Static"
caer_net_features  the attention module and adaptive fusion on frozen per-frame features  3.2.1-3.2.2
=================  =====================================================================  ==============

Building blocks, reusable on their own (in :mod:`emocontext.models.caer_blocks`, re-exported here):

* :class:`SpatialAttention` -- the attention inference module, eq. (3)-(4): two 3x3 convolutions
  (128 then 1 channel), a spatial softmax per time step, the attention-weighted sum over space.
* :class:`AdaptiveFusion` -- the adaptive fusion attention, eq. (5): per-stream 1x1 convolutions
  to one scalar each, a softmax over the two (``lambda_F + lambda_C = 1``), the weighted
  concatenation.
* :class:`CAEREncoder` -- the face / context encoding trunk: 5 conv layers (32, 64, 128, 256, 256)
  with BN and ReLU, 4 max-pools (the first without temporal pooling).

Ablations (Table 3) are constructor options of every model here: ``use_face`` ("w/F"),
``use_context`` ("w/C"), ``context_attention`` ("w/cA"), ``fusion_attention`` ("w/fA");
:data:`TABLE3_ABLATIONS` maps the rows of Table 3 to these options, e.g.
``create_model("caer_net", num_classes=7, **TABLE3_ABLATIONS["F+C+cA"])``.

* Without ``context_attention`` the context map is spatially averaged (the plain average-pooling
  layer) and ``Output.spatial_attention`` is None.
* Without ``fusion_attention`` the two features are concatenated with ``lambda = 0.5`` each,
  which is plain concatenation (the next layer is linear, so the factor 0.5 is absorbed by its
  weights); the reported fusion weights are then constant.
* With one stream only there is no fusion: the classifier reads that stream's feature and
  ``Output.fusion_weights`` is None.

The options the three models share (the ablations, the attention and fusion sizes, the dropouts)
are written once, in their base class ``_CAERModel``; the registry lists them for each model. Among
them ``fusion_dropout`` (0.5, section 5.1: "dropout ... 0.5 between 1x1 convolution layers", here
between the two 1x1 layers of each fusion branch, and the classifier's ``dropout`` between its two).
The pixel models add ``channels`` and ``context_channels`` (default: the face stream's five values;
the four printed for the context stream are :data:`PAPER_CONTEXT_CHANNELS_AS_PRINTED`), the
per-frame models ``face_dropout``. Every element of the paper, faithful or not, is in FIDELITY.md
("CAER-Net"); the training recipes (CAER-Net's 16-frame clips at 10 fps, CAER-Net-S's single
images) are :data:`~emocontext.models.recipes.CAER_NET` and :data:`~emocontext.models.recipes.CAER_NET_S`.

Deviations shared by the models of this file (each class lists its own):

* **1x1 convolutions as linear layers.** The fusion network's and the classifier's 1x1
  convolutions act on spatially averaged features (a 1x1 map); they are written as
  :class:`~torch.nn.Linear` layers, which compute the same function with the same parameters.
* **Nonlinearities the paper leaves open.** The fusion attention's 128-channel layers are
  followed by ReLU (without it the two 1x1 layers would collapse to one linear map). The last
  attention convolution (1 channel) has neither BN nor ReLU, although the paper writes "followed
  by BN and ReLU layers" for both: a ReLU before the softmax would give every negative location
  the same weight, and BN of a single channel only rescales the logits.
* **Weighted sum, not average, over space.** Eq. (4) multiplies the features by the attention
  and the paper then averages over space; here the attended feature is the sum
  ``sum_i A_i X_i``, i.e. the paper's average times ``h * w``. The constant is absorbed by the
  following linear layers; the sum keeps the feature on the scale of ``X`` whatever the map size.
* **Missing faces.** The paper's benchmark drops shots without a detected face (section 4,
  Fig. 5). Here a frame without a face (``face_mask`` False) never reaches the face stream, and its
  ``lambda_face`` is forced to 0 (the fusion softmax runs over the context alone, so
  ``lambda_context = 1``): such a frame, or a clip without any face for the dynamic model, is
  classified from its context only. The face feature of a face-less frame is exactly 0 in the
  concatenation, so its values can change nothing.
* **Padding.** Padded frames (``mask`` False) are excluded everywhere: the per-frame models run
  their CNNs on the valid frames only (gathered, so batch-norm statistics never see padding),
  and the dynamic model moves the valid frames to the front, zeroes the rest after every layer
  and computes batch-norm statistics over valid positions only (:func:`masked_batch_norm`).
  Neither the values nor the number of padded frames changes a logit or a running statistic, in
  evaluation and in training alike (up to dropout's randomness).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import EmotionModel, Output, batch_masks, compact_order, masked_mean, require, zero_invalid
from .caer_blocks import (
    PAPER_CHANNELS,
    PAPER_CONTEXT_CHANNELS_AS_PRINTED,
    AdaptiveFusion,
    CAEREncoder,
    CAERHead,
    SpatialAttention,
    masked_batch_norm,
)
from .recipes import CAER_NET, CAER_NET_FEATURES, CAER_NET_S
from .registry import register_model

__all__ = [
    "SpatialAttention",
    "AdaptiveFusion",
    "CAEREncoder",
    "CAERNet",
    "CAERNetS",
    "CAERNetFeatures",
    "TABLE3_ABLATIONS",
    "PAPER_CHANNELS",
    "PAPER_CONTEXT_CHANNELS_AS_PRINTED",
    "masked_batch_norm",
]

_PAPER = "Lee et al., ICCV 2019"

#: Table 3's ablations as constructor options (F = face stream, C = context stream, cA = context
#: attention, fA = fusion attention). The text of Table 3 we have loses the columns of some check
#: marks, so every meaningful combination is listed; "F+C+cA+fA" is the full model (the defaults).
TABLE3_ABLATIONS: dict[str, dict[str, bool]] = {
    "F": {"use_face": True, "use_context": False, "context_attention": False, "fusion_attention": False},
    "C": {"use_face": False, "use_context": True, "context_attention": False, "fusion_attention": False},
    "C+cA": {"use_face": False, "use_context": True, "context_attention": True, "fusion_attention": False},
    "F+C": {"use_face": True, "use_context": True, "context_attention": False, "fusion_attention": False},
    "F+C+cA": {"use_face": True, "use_context": True, "context_attention": True, "fusion_attention": False},
    "F+C+fA": {"use_face": True, "use_context": True, "context_attention": False, "fusion_attention": True},
    "F+C+cA+fA": {"use_face": True, "use_context": True, "context_attention": True, "fusion_attention": True},
}


# ---------------------------------------------------------------------------------------------
# Per-frame models: CAER-Net-S and the feature-map variant
# ---------------------------------------------------------------------------------------------


class _CAERModel(EmotionModel):
    """What every CAER-Net model shares, written once: the options of its head (:class:`CAERHead`).

    ``use_face``, ``use_context``, ``context_attention``, ``fusion_attention``: Table 3's ablations
    ("w/F", "w/C", "w/cA", "w/fA"); ``attention_channels`` (128) and ``attention_kernel`` (3): the
    attention inference module's convolutions; ``fusion_hidden`` (128): the fusion branches' first
    1x1 layer; ``classifier_hidden`` (128): the classifier's first 1x1 layer; ``dropout`` (0.5, the
    classifier's) and ``fusion_dropout`` (0.5, between the fusion branches' two 1x1 layers), section
    5.1. A model adds its own options (encoder channels, feature sizes) and builds the head with
    :meth:`_head` once it knows its feature sizes. The registry reads these options through the
    subclasses' ``**options``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        use_face: bool = True,
        use_context: bool = True,
        context_attention: bool = True,
        fusion_attention: bool = True,
        attention_channels: int = 128,
        attention_kernel: int = 3,
        fusion_hidden: int = 128,
        classifier_hidden: int = 128,
        dropout: float = 0.5,
        fusion_dropout: float = 0.5,
    ):
        super().__init__(num_classes)
        self.use_face, self.use_context = use_face, use_context
        self._head_options = dict(
            use_face=use_face,
            use_context=use_context,
            context_attention=context_attention,
            fusion_attention=fusion_attention,
            attention_channels=attention_channels,
            attention_kernel=attention_kernel,
            fusion_hidden=fusion_hidden,
            classifier_hidden=classifier_hidden,
            dropout=dropout,
            fusion_dropout=fusion_dropout,
        )

    def _streams_in_use(self, face: str, context: str) -> tuple[str, ...]:
        """The batch keys of the streams the ablation options keep, e.g. ``("face", "context")``."""
        return tuple(k for k, on in ((face, self.use_face), (context, self.use_context)) if on)

    def _head(self, *, face_dim: int, context_channels: int, dims: int) -> CAERHead:
        """The attention, fusion and classifier for ``face_dim``-d face features and ``context_channels`` maps."""
        return CAERHead(
            num_classes=self.num_classes,
            face_dim=face_dim,
            context_channels=context_channels,
            dims=dims,
            **self._head_options,
        )


class _FrameCAER(_CAERModel):
    """A static CAER model applied to every valid frame; clip logits = mean of the frame logits.

    Subclasses implement :meth:`_inputs`, giving the face vectors of the face frames and the
    context maps of the valid frames, and set ``self.head``; everything else (gathering valid
    frames only, fusion with face-less frames, scattering back, clip pooling) is here.

    ``face_dropout`` (training only, fused models only; not in the paper, whose static model
    always has a face crop): each frame's face is treated as missing with this probability, so
    the context-only path that face-less frames take at inference (``lambda_face = 0``) is
    trained too. Without it a fused model has never seen that path and its answer for a frame
    without a face is the classifier's output on an input it was never trained on.
    """

    def __init__(self, *, face_dropout: float = 0.0, **options):
        super().__init__(**options)
        if not 0.0 <= face_dropout < 1.0:
            raise ConfigError(f"face_dropout must be in [0, 1), got {face_dropout}")
        self.face_dropout = face_dropout if self.use_face and self.use_context else 0.0

    def _inputs(
        self, batch: dict[str, Tensor], mask: Tensor, face_mask: Tensor
    ) -> tuple[Tensor | None, Tensor | None]:  # pragma: no cover - abstract
        """``(face (N_f, D_f) for the frames face_mask[mask], context maps (N, C, h, w) for mask)``."""
        raise NotImplementedError

    def _run(self, batch: dict[str, Tensor], like: Tensor) -> Output:
        mask, face_mask = batch_masks(batch, like)
        if self.training and self.face_dropout > 0:  # train the context-only path of face-less frames
            face_mask = face_mask & (torch.rand(face_mask.shape, device=face_mask.device) >= self.face_dropout)
        B, T = mask.shape
        counted = face_mask if not self.use_context else mask  # frames the model has an input for
        empty = self.head.empty_logits(like)  # (1, K)
        K = empty.shape[-1]
        if not bool(counted.any()):  # nothing to look at in the whole batch
            return Output(logits=empty.expand(B, K), frame_logits=like.new_zeros(B, T, K))
        face_valid = face_mask[counted]  # (N,) which counted frames have a face
        face_in, context_in = self._inputs(batch, counted, face_mask & counted)
        face = None
        if self.use_face:
            face = like.new_zeros(face_valid.shape[0], self.head.face_dim)
            if face_in is not None and face_in.shape[0] > 0:
                face = face.index_put((face_valid,), face_in.to(face.dtype))
        logits_n, attention_n, lambdas_n = self.head(face, face_valid, context_in)

        frame_logits = logits_n.new_zeros(B, T, K).index_put((counted,), logits_n)
        logits = torch.where(counted.any(1, keepdim=True), masked_mean(frame_logits, counted), empty)
        spatial = None
        if attention_n is not None:
            spatial = attention_n.new_zeros(B, T, *attention_n.shape[1:]).index_put((counted,), attention_n)
        fusion = None
        if lambdas_n is not None:
            fusion = lambdas_n.new_zeros(B, T, 2).index_put((counted,), lambdas_n)
        return Output(logits=logits, frame_logits=frame_logits, spatial_attention=spatial, fusion_weights=fusion)


class CAERNetS(_FrameCAER):
    """CAER-Net-S: 2D-CNN face and context streams per image, context attention, adaptive fusion.

    The static model: 2D face and context encoders, context attention, adaptive fusion.

    Lee et al., ICCV 2019, section 3.2.1 "Static model": "takes both a single frame face-cropped
    image I_F and face-hidden image I_C as input. In networks, all 3D convolution layers and 3D
    max-pooling layers are replaced with 2D convolution layers and 2D max-pooling layers";
    section 3.2.2 (fusion), eq. (1)-(6); input 224x224 on CAER-S (5.1); Table 3 (ablations).

    1. Face stream: :class:`CAEREncoder` (2D) on the face crop, spatial average -> ``X_F`` (256).
    2. Context stream: :class:`CAEREncoder` (2D) on the face-hidden frame -> ``X_C``
       ``(256, h, w)``; :class:`SpatialAttention` -> ``X^_C`` (256) and the map (eq. 3-4).
    3. :class:`AdaptiveFusion` (eq. 5) and the classifier, 1x1 conv 128, ReLU, dropout 0.5,
       1x1 conv ``K`` (eq. 6).

    Batch keys: ``face_pixels`` ``(B, T, 3, H_f, W_f)`` float, face crops normalised as the
    caller likes (the network is trained from scratch); ``context_pixels`` ``(B, T, 3, H, W)``
    float, whole frames with the face hidden (ARCHITECTURE.md, "Streams"); ``mask`` ``(B, T)``,
    ``face_mask`` ``(B, T)`` (optional, see :mod:`emocontext.models.base`). For a single image
    per clip, ``T = 1`` or ``(B, 3, H, W)`` tensors (then ``mask``/``face_mask`` are ``(B, 1)`` or
    absent). Face crops of face-less frames are never read.

    Outputs: ``logits`` ``(B, K)``; ``frame_logits`` ``(B, T, K)`` (0 at padded frames);
    ``spatial_attention`` ``(B, T, h, w)``, each valid frame's softmaxed map (sums to 1), ``h, w``
    = input size / 16 (14x14 at 224 px), 0 at padded frames; ``fusion_weights`` ``(B, T, 2)`` =
    ``(lambda_face, lambda_context)`` per frame (sum to 1 at valid frames; ``(0, 1)`` without a
    face; 0 at padded frames).

    Training: on single images, as the paper trains it on CAER-S (its recipe,
    :data:`~emocontext.models.recipes.CAER_NET_S`: one random frame of a clip per sample, ``T = 1``);
    ``train --max-frames 16`` trains on 16-frame windows with the loss on their averaged logits
    instead. A video is predicted as the mean of its frames' probabilities
    (:func:`emocontext.training.fit.clip_probs`). Given several frames at once, each valid frame is
    classified independently and the clip logits are the mean of the frame logits (not in the
    paper, whose static model sees one image).
    """

    streams = ("face_pixels", "context_pixels")

    def __init__(
        self,
        *,
        num_classes: int,
        channels: Sequence[int] = PAPER_CHANNELS,
        context_channels: Sequence[int] | None = None,
        **options,
    ):
        super().__init__(num_classes=num_classes, **options)
        context_channels = tuple(context_channels or channels)
        self.head = self._head(face_dim=tuple(channels)[-1], context_channels=context_channels[-1], dims=2)
        self.face_encoder = CAEREncoder(dims=2, channels=channels) if self.use_face else None
        self.context_encoder = CAEREncoder(dims=2, channels=context_channels) if self.use_context else None
        self.streams = tuple(
            s for s, on in (("face_pixels", self.use_face), ("context_pixels", self.use_context)) if on
        )

    def _inputs(self, batch, counted, face_frames):
        face = context = None
        if self.use_face and bool(face_frames.any()):
            crops = _as_clip(batch["face_pixels"])[face_frames]  # (N_f, 3, H, W)
            face = self.face_encoder(crops)[0].mean((2, 3))  # spatial average -> X_F
        if self.use_context:
            context = self.context_encoder(_as_clip(batch["context_pixels"])[counted])[0]
        return face, context

    def forward(self, batch: dict[str, Tensor]) -> Output:
        key = self.streams[0]
        x = _as_clip(require(batch, key, "CAERNetS", "(B, T, 3, H, W) or (B, 3, H, W)"))
        for k in self.streams:
            _check_pixels(_as_clip(require(batch, k, "CAERNetS", "(B, T, 3, H, W)")), k, "CAERNetS", x.shape[:2])
        return self._run(batch, x)


def _as_clip(x: Tensor) -> Tensor:
    """``(B, 3, H, W)`` -> ``(B, 1, 3, H, W)``; ``(B, T, 3, H, W)`` unchanged."""
    return x.unsqueeze(1) if x.dim() == 4 else x


def _check_pixels(x: Tensor, key: str, model: str, bt: torch.Size) -> None:
    if x.dim() != 5 or x.shape[2] != 3 or x.shape[:2] != bt:
        raise ConfigError(
            f"{model}: batch[{key!r}] must be (B, T, 3, H, W) with (B, T) = {tuple(bt)}, got {tuple(x.shape)}"
        )


class CAERNetFeatures(_FrameCAER):
    """CAER-Net attention + adaptive fusion per frame on a frozen face vector and context feature map.

    Lee et al., ICCV 2019, section 3.2.1 (attention inference module, eq. 3-4) and 3.2.2
    (adaptive fusion, eq. 5-6), on top of frozen CNN features instead of the two trainable
    encoding streams -- the project's context-aware default model: a 1280-d face feature (the
    project's FER2013 EfficientNet-Lite0) and the 1280 x 7 x 7 map of the ImageNet
    EfficientNet-Lite0 on the 224-px (face-hidden) frame.

    Per valid frame ``t``: ``X^_C,t, A^_t = SpatialAttention(context_t)``;
    ``X_A,t, lambda_t = AdaptiveFusion(face_t, X^_C,t)``; ``logits_t = classifier(X_A,t)``.
    Clip logits = mean of the frame logits over the valid frames.

    Batch keys: ``face`` ``(B, T, D_f)``; ``context`` ``(B, T, C, h, w)`` (``C = context_dim``),
    or ``(B, T, C)`` pooled features, treated as ``1 x 1`` maps (the attention is then trivially
    1, and the model is CAER-Net's fusion on vectors); ``mask``, ``face_mask`` ``(B, T)``.

    Outputs: ``logits`` ``(B, K)``; ``frame_logits`` ``(B, T, K)``; ``spatial_attention``
    ``(B, T, h, w)`` (sums to 1 at valid frames, 0 at padded ones; None without context
    attention); ``fusion_weights`` ``(B, T, 2)`` = ``(lambda_face, lambda_context)``.

    Frames without a face (``face_mask`` False) fall back to context only: ``lambda_face`` is
    forced to 0 (``lambda_context = 1``) and their face features are never read. For the
    face-only ablation (``use_context=False``) face-less frames have no input at all: the clip
    logits are the mean over face frames, and a clip without a face gets the classifier's output
    for a zero feature.

    Deviations: no trainable encoders (the features are frozen, ARCHITECTURE.md "Pretrained parts that
    work offline"); the attention convolutions read the frozen map, so with ``kernel 3`` and
    a 7x7 map they see 3x3 neighbourhoods of a 32-px stride; the per-frame classification with
    averaged logits replaces the 3D temporal aggregation.
    """

    streams = ("face", "context")

    def __init__(self, *, num_classes: int, face_dim: int, context_dim: int, **options):
        super().__init__(num_classes=num_classes, **options)
        self.head = self._head(face_dim=face_dim, context_channels=context_dim, dims=2)
        self.face_dim, self.context_dim = face_dim, context_dim
        self.streams = self._streams_in_use("face", "context")

    def _inputs(self, batch, counted, face_frames):
        face = context = None
        if self.use_face:
            face = batch["face"][face_frames]  # (N_f, D_f)
        if self.use_context:
            context = batch["context"]
            if context.dim() == 3:
                context = context[..., None, None]
            context = context[counted]  # (N, C, h, w)
        return face, context

    def forward(self, batch: dict[str, Tensor]) -> Output:
        like = None
        if self.use_context:
            like = require(batch, "context", "CAERNetFeatures", "(B, T, C, h, w) or (B, T, C)")
            if like.dim() not in (3, 5) or like.shape[2] != self.context_dim:
                raise ConfigError(
                    f"CAERNetFeatures: batch['context'] must be (B, T, {self.context_dim}, h, w) or "
                    f"(B, T, {self.context_dim}), got {tuple(like.shape)}"
                )
        if self.use_face:
            face = require(batch, "face", "CAERNetFeatures")
            if (
                face.dim() != 3
                or face.shape[-1] != self.face_dim
                or (like is not None and face.shape[:2] != like.shape[:2])
            ):
                raise ConfigError(
                    f"CAERNetFeatures: batch['face'] must be (B, T, {self.face_dim}), got {tuple(face.shape)}"
                )
            like = like if like is not None else face
        return self._run(batch, like)


# ---------------------------------------------------------------------------------------------
# Dynamic model: CAER-Net
# ---------------------------------------------------------------------------------------------


class CAERNet(_CAERModel):
    """CAER-Net: 3D-CNN face and context streams on pixel clips, context attention, adaptive fusion.

    The dynamic model: two 3D-CNN streams, context attention, adaptive fusion.

    Lee et al., ICCV 2019, section 3.2 (Fig. 2), eq. (1)-(6); implementation details in 5.1
    (16-frame clips at 10 fps, faces 96x96, context 112x112, dropout 0.5); Table 3 (ablations).

    1. Face encoding stream, eq. (1): :class:`CAEREncoder` (3D) on the clip of face crops ->
       ``X_F`` ``(256, T', h, w)``; averaged over space per time step, then over the valid time
       steps -> ``(256,)``.
    2. Context encoding stream, eq. (2): :class:`CAEREncoder` (3D) on the clip of face-hidden
       frames -> ``X_C``; the attention inference module (:class:`SpatialAttention`, 3D
       convolutions) gives ``A`` ``(T', h, w)``, softmaxed over space per time step (eq. 3);
       ``X^_C`` = attention-weighted sum over space per time step (eq. 4), then the mean over the
       valid time steps.
    3. Adaptive fusion, eq. (5), and classifier, eq. (6), once per clip.

    Batch keys: ``face_pixels`` ``(B, T, 3, H_f, W_f)`` and ``context_pixels`` ``(B, T, 3, H, W)``
    float (the paper: 16 frames, 96x96 faces, 112x112 context); ``mask``, ``face_mask`` ``(B, T)``.

    Outputs: ``logits`` ``(B, K)``; ``fusion_weights`` ``(B, 1, 2)`` = ``(lambda_face,
    lambda_context)`` of the clip (the fusion acts on clip features; ``(0, 1)`` for a clip without
    a face); ``spatial_attention`` ``(B, T, h, w)``: the map of the pooled time step that covers
    each valid frame (one step covers ``temporal_stride`` = 8 consecutive valid frames), 0 at
    padded frames; ``extras["spatial_attention_steps"]`` ``(B, T', h, w)`` the maps per pooled
    step, ``extras["temporal_stride"]``.

    Frames without a face: the face and context volumes stay aligned frame by frame
    (:meth:`volumes`): a face-less frame keeps its slot in the face volume, zeroed and masked (no
    layer output and no batch-norm statistic depends on it), while the context stream reads it. A
    clip without a face is classified from its context (``lambda_face = 0``). (Before issue 25 the
    face frames were moved together, so the two volumes' time steps were different frames.)

    Deviations: the spatial-then-temporal average (the paper pools "spatially"; with 16-frame
    clips ``T' = 2`` steps remain and are averaged here, so any clip length works); pools in ceil
    mode (odd lengths keep their last frame); batch-norm statistics over valid steps only.
    """

    streams = ("face_pixels", "context_pixels")

    def __init__(
        self,
        *,
        num_classes: int,
        channels: Sequence[int] = PAPER_CHANNELS,
        context_channels: Sequence[int] | None = None,
        **options,
    ):
        super().__init__(num_classes=num_classes, **options)
        context_channels = tuple(context_channels or channels)
        self.head = self._head(face_dim=tuple(channels)[-1], context_channels=context_channels[-1], dims=3)
        self.face_encoder = CAEREncoder(dims=3, channels=channels) if self.use_face else None
        self.context_encoder = CAEREncoder(dims=3, channels=context_channels) if self.use_context else None
        self.streams = tuple(
            s for s, on in (("face_pixels", self.use_face), ("context_pixels", self.use_context)) if on
        )

    @staticmethod
    def _clip_volume(x: Tensor, order: Tensor, valid: Tensor) -> Tensor:
        """``x`` ``(B, T, 3, H, W)`` gathered in ``order`` ``(B, T)``, exactly 0 where ``valid`` (in that order)
        is False -> ``(B, 3, T, H, W)``."""
        B, T = order.shape
        x = x.gather(1, order.view(B, T, 1, 1, 1).expand_as(x))
        return zero_invalid(x, valid).transpose(1, 2)

    def volumes(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """The clip volumes the encoders read: ``{"face_pixels" | "context_pixels": (volume (B, 3, T, H, W),
        valid steps (B, T))}`` for the streams in use.

        Both hold the valid frames first, in their order (padding last), so time step ``t`` of the face
        volume and of the context volume is the same frame (eq. (1)-(2) encode ``V_F`` and ``V_C`` of
        one clip). A frame without a face keeps its slot in the face volume, zeroed and marked invalid
        (the encoder zeroes it after every layer and leaves it out of the batch-norm statistics).
        """
        like = batch[self.streams[0]]
        mask, face_mask = batch_masks(batch, like)
        B, T = mask.shape
        order, lengths = compact_order(mask)
        prefix = torch.arange(T, device=mask.device) < lengths.unsqueeze(1)
        valid = {"face_pixels": face_mask.gather(1, order) & prefix, "context_pixels": prefix}
        return {k: (self._clip_volume(batch[k], order, valid[k]), valid[k]) for k in self.streams}

    def forward(self, batch: dict[str, Tensor]) -> Output:
        like = None
        for k in self.streams:
            x = require(batch, k, "CAERNet", "(B, T, 3, H, W)")
            _check_pixels(x, k, "CAERNet", x.shape[:2] if like is None else like.shape[:2])
            like = x if like is None else like
        mask, face_mask = batch_masks(batch, like)
        B, T = mask.shape
        face_valid = face_mask.any(1)  # (B,)
        volumes = self.volumes(batch)

        face = None
        if self.use_face:
            face = like.new_zeros(B, self.face_encoder.out_channels)
            if bool(face_valid.any()):
                fmap, steps = self.face_encoder(*volumes["face_pixels"])  # (B, C, T', h, w), (B, T')
                face = masked_mean(fmap.mean((3, 4)).transpose(1, 2), steps)  # space, then valid time

        context, spatial, extras = None, None, {}
        if self.use_context:
            cmap, steps = self.context_encoder(*volumes["context_pixels"])
            attended, att = self.head.attention(cmap, steps)  # (B, T', C), (B, T', h, w)
            context = masked_mean(attended, steps)
            if self.head.context_attention:
                stride = self.context_encoder.temporal_stride
                rank = (mask.long().cumsum(1) - 1).clamp(min=0) // stride  # pooled step of each frame
                idx = rank.view(B, T, 1, 1).expand(B, T, *att.shape[2:])
                spatial = zero_invalid(att.gather(1, idx), mask)
                extras = {"spatial_attention_steps": att, "temporal_stride": stride}

        fused, lambdas = self.head.fuse(face, face_valid, context)
        logits = self.head.classifier(fused)
        return Output(
            logits=logits,
            spatial_attention=spatial,
            fusion_weights=None if lambdas is None else lambdas.unsqueeze(1),
            extras=extras,
        )


# ---------------------------------------------------------------------------------------------
# Registry names (options: each class's keyword arguments)
# ---------------------------------------------------------------------------------------------

register_model(CAERNet, name="caer_net", paper=f"{_PAPER}, 3.2, Fig. 2, eq. (1)-(6), Table 3", recipe=CAER_NET)
register_model(
    CAERNetS, name="caer_net_s", paper=f"{_PAPER}, 3.2 'Static model', eq. (1)-(6), Table 3", recipe=CAER_NET_S
)
register_model(
    CAERNetFeatures,
    name="caer_net_features",
    paper=f"{_PAPER}, 3.2, eq. (3)-(6), on frozen features",
    recipe=CAER_NET_FEATURES,
)
