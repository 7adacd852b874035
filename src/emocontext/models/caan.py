"""CAAN, the context-aware attention network, and its average-aggregation baselines (HEIV paper).

"Context-Aware Attention Network for Human Emotion Recognition in Video", Advances in
Multimedia (the HEIV dataset paper). Paper text: ``../shared/papers/caan_heiv_advances-in-multimedia.txt``
(section 4: architecture, eq. (1)-(4); section 5.1: 1CF/2CF/3CF; section 5.2: FAA, CAA, FFAA).

Registry names and what they implement:

======  =============================================================================  ===========
name    model                                                                          paper
======  =============================================================================  ===========
caan    face + context per frame, fused; emotion scores weight the frames, eq. (1)-(4)  4.2, Fig. 4
ffaa    the same fused per-frame features, averaged (no score branch)                   5.2 "FFAA"
faa     face features averaged over the face frames, two FC layers                      5.2 "FAA"
caa     context features averaged over the frames, two FC layers                        5.2 "CAA"
======  =============================================================================  ===========

==============  ===================================================================  ==============
caan_face       attention network on the face stream alone, 1CF (Tables 2-3 "face")   5.1-5.2
caan_context    attention network on the context stream alone, 3CF (Tables 2-3)       5.1-5.2
==============  ===================================================================  ==============

Losses (section 4.2): the frame branch "is supervised by softmax-loss" and the video feature
``R_V`` "is supervised by triplet loss [FaceNet]": :func:`caan_loss` combines a frame-level
cross-entropy, a clip-level cross-entropy on the logits and a triplet loss on ``R_V`` --
FaceNet's (squared distances, semi-hard negatives, :func:`facenet_triplet_loss`) by default, or
batch-hard (:func:`batch_hard_triplet_loss`) -- with weights set from ``TrainConfig.loss_kwargs``
or ``emocontext train --loss-option``. Every deviation is in FIDELITY.md ("CAAN").

Deviations shared by the models of this file (each class lists its own):

* **Feature sizes.** The paper's inputs are fc6 features (4096-d) of a fine-tuned VGG-Face and
  VGG16. Here any ``face_dim`` / ``context_dim`` (the project's 1280-d EfficientNet-Lite0
  features by default, ARCHITECTURE.md "Pretrained parts that work offline").
* **Nonlinearities and dropout.** "1024 neurons" and "a fusion layer with 2048 neurons" are
  implemented as Linear, ReLU, Dropout; eq. (2) (``g_i = W r_i + b``) stays linear, as printed.
  Dropout (0.5 by default) is not in the paper.
* **Frames without a face.** The paper keeps only frames with a detected face (4.1, "only image
  sequences containing faces are selected"). Here every valid frame is used by default: the
  context of a face-less frame still carries information, and the score branch can learn to
  down-weight it. The face embedding (after the 1024-d FC and ReLU) of a face-less frame is
  exactly 0 -- "no face unit active" -- and its face features are never read. ``drop_faceless=True``
  reproduces the paper (frames without a face are ignored; a clip without any face keeps all its
  frames with zero face embeddings, rather than having no frame at all). FAA averages over face
  frames only.
* **Padding.** Padded frames (``mask`` False) get exactly zero weight (masked softmax) and zero
  features: neither their values nor their number changes a logit.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ConfigError
from .base import (
    EmotionModel,
    Output,
    StreamEncoder,
    batch_masks,
    masked_mean,
    masked_softmax,
    require,
    zero_invalid,
)
from .recipes import CAAN as CAAN_RECIPE
from .registry import register_model

__all__ = [
    "CAAN",
    "StreamAttention",
    "FFAA",
    "AverageAggregate",
    "FAA",
    "CAA",
    "caan_loss",
    "batch_hard_triplet_loss",
    "facenet_triplet_loss",
]

_PAPER = "CAAN, Advances in Multimedia (HEIV)"


def _score_branch(in_dim: int, layers: int, hidden: int) -> nn.Sequential:
    """Emotion score generation, eq. (3): 1CF = Linear(F, 1); 2CF / 3CF add one / two hidden FC + ReLU layers."""
    if layers not in (1, 2, 3):
        raise ConfigError(f"score_layers must be 1, 2 or 3 (1CF, 2CF, 3CF), got {layers!r}")
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, 1))
    return nn.Sequential(*mods)


class CAAN(EmotionModel):
    """CAAN: face and context FC 1024, fusion 2048, emotion-score-weighted video feature (3CF).

    The context-aware attention network: per-frame face/context fusion, emotion scores, weighted
    video feature.

    Section 4.2, Fig. 4, eq. (1)-(4), with the weighting functions of section 5.1:

    1. Face and context features of each frame are transformed "to a high-level space (1024
       neurons for face and context features)": ``a_i = FC(x_i)``, ``b_i = FC(c_i)``.
    2. eq. (1): "a fusion layer with 2048 neurons": ``r_i = Phi(x_i, c_i) = FC([a_i; b_i])``.
    3. eq. (2): higher-level fusion feature ``g_i = W_1 r_i + b_1`` (``feature_dim``, 1024 here;
       the paper does not give the size). A linear classifier on ``g_i`` gives the frame logits,
       "supervised by softmax-loss".
    4. eq. (3): emotion score ``s_i`` from ``g_i`` by 1, 2 or 3 FC layers (``score_layers``,
       1CF/2CF/3CF; 3CF is the paper's default for fused features). The width of the hidden
       score layers (``score_hidden``, 512) is not in the paper.
    5. eq. (4): ``R_V = sum_i g_i s_i / sum_i s_i``, here with ``s_i`` replaced by ``exp(s_i)``:
       ``w = masked_softmax(s)`` over the valid frames, ``R_V = sum_i w_i g_i``.
    6. Clip logits: the same linear classifier on ``R_V`` (equal to ``sum_i w_i`` frame logits,
       since the classifier is affine and the weights sum to 1).

    **Why a softmax of the scores.** Eq. (4) divides by ``sum_i s_i`` of unconstrained linear
    scores, which can be negative or sum to zero (then ``R_V`` is unbounded or undefined, and a
    negative weight flips a frame's feature). Replacing ``s_i`` by ``exp(s_i)`` makes every weight
    positive and the denominator never 0, ``R_V`` a convex combination of the ``g_i`` (on the
    frame features' scale, so one classifier serves frames and videos), and the weights invariant
    to a constant added to all scores; it is computed stably by :func:`masked_softmax`, which also
    gives padded frames weight exactly 0. A softplus (``s_i -> log(1 + e^{s_i})``) keeps the
    ratio form but can drive every score towards 0 at once, needing an epsilon in the
    denominator, and its weights saturate linearly, so one frame can dominate less sharply.

    Batch keys: ``face`` ``(B, T, D_f)``, ``context`` ``(B, T, D_c)``, ``mask``, ``face_mask``
    ``(B, T)``.

    Outputs: ``logits`` ``(B, K)``; ``frame_logits`` ``(B, T, K)`` (0 at frames not used);
    ``temporal_attention`` ``(B, T)`` the normalised frame weights ``w_i`` (sum to 1 over the
    used frames, 0 elsewhere; Fig. 5's "emotional scores"); ``extras``: ``video_feature`` ``R_V``
    ``(B, F)``, ``scores`` the raw ``s_i`` ``(B, T)`` (0 at unused frames), ``frame_mask``
    ``(B, T)`` the frames used (valid frames; with ``drop_faceless`` the face frames).

    ``attention=False`` is :class:`FFAA`: the score branch is dropped and ``w_i`` is uniform.
    """

    streams = ("face", "context")

    def __init__(
        self,
        *,
        num_classes: int,
        face_dim: int,
        context_dim: int,
        embed_dim: int = 1024,
        fusion_dim: int = 2048,
        feature_dim: int = 1024,
        score_layers: int = 3,
        score_hidden: int = 512,
        dropout: float = 0.5,
        attention: bool = True,
        drop_faceless: bool = False,
    ):
        super().__init__(num_classes)
        self.face_encoder = StreamEncoder(face_dim, embed_dim, dropout)
        self.context_encoder = StreamEncoder(context_dim, embed_dim, dropout)
        self.fusion = StreamEncoder(2 * embed_dim, fusion_dim, dropout)  # eq. (1)
        self.feature = nn.Linear(fusion_dim, feature_dim)  # eq. (2)
        self.head = nn.Linear(feature_dim, num_classes)
        self.attention = attention
        self.score = _score_branch(feature_dim, score_layers, score_hidden) if attention else None  # eq. (3)
        self.drop_faceless = drop_faceless
        self.dropout_p = dropout

    def _classify(self, x: Tensor) -> Tensor:
        """Logits of ``g_i`` ``(..., F)`` or ``R_V``: the linear classifier on eq. (2)'s features."""
        return self.head(x)

    def frames_used(self, mask: Tensor, face_mask: Tensor) -> Tensor:
        """``(B, T)`` frames that enter ``R_V``: valid frames, or face frames with ``drop_faceless``."""
        if not self.drop_faceless:
            return mask
        return torch.where(face_mask.any(1, keepdim=True), face_mask, mask)

    def loss(self, output: Output, labels: Tensor, *, weight: Tensor | None = None, **options) -> Tensor:
        """Training loss used by :func:`emocontext.training.fit`: :func:`caan_loss` (``weight``: class weights
        ``(K,)`` of both cross-entropy terms; ``options``: :func:`caan_loss`'s keyword arguments)."""
        return caan_loss(output, labels, class_weight=weight, **options)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        name = type(self).__name__
        face = require(batch, "face", name)
        context = require(batch, "context", name)
        mask, face_mask = batch_masks(batch, context)
        used = self.frames_used(mask, face_mask)
        a = zero_invalid(self.face_encoder(zero_invalid(face, face_mask)), face_mask)  # 0 without a face
        b = self.context_encoder(zero_invalid(context, mask))
        r = self.fusion(torch.cat([a, b], dim=-1))  # (B, T, fusion_dim), eq. (1)
        g = zero_invalid(self.feature(r), used)  # (B, T, F), eq. (2)
        if self.score is not None:
            scores = zero_invalid(self.score(g).squeeze(-1), used)  # (B, T), eq. (3)
            weights = masked_softmax(scores, used)
        else:
            scores = None
            weights = used.to(g.dtype) / used.sum(1, keepdim=True).clamp(min=1).to(g.dtype)
        video = (weights.unsqueeze(-1) * g).sum(1)  # (B, F), eq. (4)
        extras = {"video_feature": video, "frame_mask": used}
        if scores is not None:
            extras["scores"] = scores
        return Output(
            logits=self._classify(video),
            frame_logits=zero_invalid(self._classify(g), used),
            temporal_attention=weights,
            extras=extras,
        )


class StreamAttention(EmotionModel):
    """CAAN's attention network on one stream: per-frame features, emotion scores, weighted video feature.

    Section 5.1 and Tables 2-3 ("Facial features" / "Context features" with attention): "the
    attention network which takes as input face and context information separately ... divided
    into two branches ... the facial or context emotion features and their emotion scores will be
    aggregated", with the weighting functions 1CF/2CF/3CF; the paper's defaults are 1CF for the
    face and 3CF for the context ("We rely on the 3CF weighting function for fusion features and
    context features ... and 1CF ... for facial").

    Per frame: ``a_i = FC(x_i)`` (``embed_dim`` 1024, Linear, ReLU, Dropout, as CAAN's stream
    encoders), ``g_i = W a_i + b`` (``feature_dim``), score ``s_i`` from ``g_i``
    (``score_layers``), ``w = masked_softmax(s)``, ``R_V = sum_i w_i g_i``; the same linear
    classifier on ``g_i`` (frame logits) and on ``R_V`` (clip logits); trained with
    :func:`caan_loss`, as :class:`CAAN`. Outputs as :class:`CAAN`.

    Frames: the face stream uses the face frames only; the context stream every valid frame (or
    the face frames with ``drop_faceless``, a clip without any face keeping all its frames).

    Deviation: the paper's branches start from VGG pool5 maps and run the pretrained fc6/fc7 in the
    feature branch and "one or two or three convolution layers and a fully connected layer" in the
    score branch; here both start from the frozen per-frame vectors (ARCHITECTURE.md, "Pretrained
    parts that work offline") and the score layers are fully connected.
    """

    stream: str = ""

    def __init__(
        self,
        *,
        num_classes: int,
        in_dim: int,
        embed_dim: int = 1024,
        feature_dim: int = 1024,
        score_layers: int = 1,
        score_hidden: int = 512,
        dropout: float = 0.5,
        drop_faceless: bool = False,
    ):
        super().__init__(num_classes)
        self.encoder = StreamEncoder(in_dim, embed_dim, dropout)
        self.feature = nn.Linear(embed_dim, feature_dim)
        self.score = _score_branch(feature_dim, score_layers, score_hidden)
        self.head = nn.Linear(feature_dim, num_classes)
        self.drop_faceless = drop_faceless

    def loss(self, output: Output, labels: Tensor, *, weight: Tensor | None = None, **options) -> Tensor:
        """:func:`caan_loss`, as :meth:`CAAN.loss`."""
        return caan_loss(output, labels, class_weight=weight, **options)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        x, used = _frames_used(batch, self.stream, self.drop_faceless, type(self).__name__)
        g = zero_invalid(self.feature(self.encoder(zero_invalid(x, used))), used)
        scores = zero_invalid(self.score(g).squeeze(-1), used)
        weights = masked_softmax(scores, used)
        video = (weights.unsqueeze(-1) * g).sum(1)
        return Output(
            logits=self.head(video),
            frame_logits=zero_invalid(self.head(g), used),
            temporal_attention=weights,
            extras={"video_feature": video, "frame_mask": used, "scores": scores},
        )


class FaceAttention(StreamAttention):
    """Face stream attention network (1CF): Tables 2-3, "Facial features", see :class:`StreamAttention`."""

    streams = ("face",)
    stream = "face"


class ContextAttention(StreamAttention):
    """Context stream attention network (3CF): Tables 2-3, "Context features", see :class:`StreamAttention`."""

    streams = ("context",)
    stream = "context"


class FFAA(CAAN):
    """FFAA: CAAN's fused per-frame features averaged over frames (no score branch).

    Fusion Feature Average Aggregate (section 5.2).

    "These two features are first passed through a fully connected layer with 1024 neurons and
    then fused. The fusion feature is passed through two successive fully connected layers and is
    supervised by softmax-loss." Here: :class:`CAAN` with ``attention=False`` -- the mean of
    ``g_i`` over the used frames, then ReLU, Dropout and the classifier. As eq. (2) is linear, the
    mean of ``g_i`` is eq. (2)'s layer ``W_1`` on the average of the fusion features ``r_i``; the two
    FC layers are ``W_1`` and the classifier with a ReLU (and dropout) between them, the reading of
    "two successive fully connected layers" that FAA and CAA share (:class:`AverageAggregate`):
    without a nonlinearity two FC layers are one linear map. (Before issue 25 FFAA had none.)
    ``temporal_attention`` is the uniform weight ``1 / n``; ``frame_logits`` classify each
    ``g_i`` the same way.
    """

    def __init__(self, **kwargs):
        kwargs.pop("attention", None)
        kwargs.pop("score_layers", None)
        kwargs.pop("score_hidden", None)
        super().__init__(attention=False, **kwargs)

    def _classify(self, x: Tensor) -> Tensor:
        """The second of the "two successive fully connected layers" after ReLU and dropout."""
        return self.head(F.dropout(F.relu(x), self.dropout_p, self.training))

    def loss(self, output: Output, labels: Tensor, *, weight: Tensor | None = None, **options) -> Tensor:
        """Softmax losses only: the baselines have no triplet loss (section 5.2). The paper supervises FFAA
        at the video level only ("supervised by softmax-loss" after the average); ``frame_weight``
        defaults to 0 here for that reason (set it to 1 to add CAAN's frame-level term)."""
        options.setdefault("frame_weight", 0.0)
        options.setdefault("triplet_weight", 0.0)
        return caan_loss(output, labels, class_weight=weight, **options)


class AverageAggregate(EmotionModel):
    """Average of one feature stream over frames, then two FC layers (FAA / CAA, section 5.2).

    "The fc6 layer features of all faces [context images] are extracted ... These features are
    aggregated by average pool and then passed through two successive fully connected layers and
    are supervised by softmax-loss." Here: masked mean of the raw features, Linear(D, hidden =
    1024, our choice), ReLU, Dropout, Linear(hidden, K): "two successive fully connected layers"
    read as two layers with a nonlinearity between them, the reading FFAA shares (:class:`FFAA`).

    Shapes: ``batch[stream]`` ``(B, T, D)`` -> ``logits`` ``(B, K)``; ``temporal_attention``
    ``(B, T)`` the uniform weights over the frames averaged; ``extras["video_feature"]`` the
    hidden vector ``(B, hidden)`` (usable with the triplet loss); ``extras["frame_mask"]``.

    The face stream (:class:`FAA`) averages over the face frames only; a clip without a face
    gets the classifier's output for a zero average. The context stream (:class:`CAA`) averages
    over every valid frame by default, as :class:`CAAN`; ``drop_faceless=True`` averages over
    the frames with a face only, as the paper's section 4.1 selects them (a clip without any face
    keeps all its frames). Use :class:`FAA` / :class:`CAA`.
    """

    stream: str = ""

    def __init__(
        self, *, num_classes: int, in_dim: int, hidden: int = 1024, dropout: float = 0.5, drop_faceless: bool = False
    ):
        super().__init__(num_classes)
        self.fc = StreamEncoder(in_dim, hidden, dropout)
        self.head = nn.Linear(hidden, num_classes)
        self.drop_faceless = drop_faceless

    def forward(self, batch: dict[str, Tensor]) -> Output:
        x, used = _frames_used(batch, self.stream, self.drop_faceless, type(self).__name__)
        weights = used.to(x.dtype) / used.sum(1, keepdim=True).clamp(min=1).to(x.dtype)
        video = self.fc(masked_mean(x, used))
        return Output(
            logits=self.head(video), temporal_attention=weights, extras={"video_feature": video, "frame_mask": used}
        )


class FAA(AverageAggregate):
    """FAA: face features averaged over the face frames, then two FC layers.

    Face Average Aggregate (5.2): ``batch["face"]`` ``(B, T, D_f)``, see :class:`AverageAggregate`.
    """

    streams = ("face",)
    stream = "face"


class CAA(AverageAggregate):
    """CAA: context features averaged over the valid frames, then two FC layers.

    Context Average Aggregate (5.2): ``batch["context"]`` ``(B, T, D_c)``, see :class:`AverageAggregate`.
    """

    streams = ("context",)
    stream = "context"


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def batch_hard_triplet_loss(
    embeddings: Tensor, labels: Tensor, *, margin: float = 0.2, normalize: bool = True
) -> Tensor:
    """Batch-hard triplet loss (Hermans, Beyer, Leibe, "In Defense of the Triplet Loss", 2017).

    For every anchor ``a`` of the batch: its hardest positive (the farthest sample with the same
    label, not itself) and hardest negative (the nearest sample with another label),
    ``max(0, d(a, p) - d(a, n) + margin)``; the mean over the anchors that have both. Euclidean
    distances; with ``normalize`` (default, as FaceNet's embeddings on the unit sphere, whose
    margin 0.2 is the default here) the embeddings are L2-normalised first, so the margin has a
    fixed scale. 0 (with a graph) when no anchor has a positive and a negative. Not FaceNet's form,
    which has squared distances and semi-hard negatives (:func:`facenet_triplet_loss`, CAAN's
    default); this one is ``caan_loss(triplet="batch_hard")``.

    Args:
        embeddings: ``(N, F)``.
        labels: ``(N,)`` int.
    """
    if normalize:
        embeddings = F.normalize(embeddings, dim=-1)
    sq = (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(-1)
    dist = torch.sqrt(sq.clamp(min=1e-12))  # no infinite gradient at 0
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    hardest_pos = torch.where(pos, dist, torch.zeros((), dtype=dist.dtype, device=dist.device)).amax(1)
    hardest_neg = torch.where(neg, dist, torch.full((), float("inf"), dtype=dist.dtype, device=dist.device)).amin(1)
    ok = pos.any(1) & neg.any(1)
    if not bool(ok.any()):
        return embeddings.sum() * 0.0
    return F.relu(hardest_pos[ok] - hardest_neg[ok] + margin).mean()


def facenet_triplet_loss(embeddings: Tensor, labels: Tensor, *, margin: float = 0.2, normalize: bool = True) -> Tensor:
    """FaceNet's triplet loss (Schroff et al., CVPR 2015, eq. 1-3 and section 3.2): squared distances,
    every anchor-positive pair, semi-hard negatives.

    Embeddings are L2-normalised (FaceNet's ``||f(x)||_2 = 1``) unless ``normalize`` is False. For
    every pair ``(a, p)`` with the same label (``a != p``): the negative ``n`` is the nearest one
    farther than the positive, ``d(a, p) < d(a, n)`` (semi-hard; the hardest negative with
    ``d(a, n) < d(a, p) + margin`` when one exists), or, when every negative is nearer than the
    positive, the farthest negative (the mildest violation, as TensorFlow Addons' semi-hard loss).
    Loss: ``mean max(0, ||a - p||^2 - ||a - n||^2 + margin)`` over the pairs that have a negative;
    0 (with a graph) when none does. ``embeddings`` ``(N, F)``, ``labels`` ``(N,)``.
    """
    if normalize:
        embeddings = F.normalize(embeddings, dim=-1)
    d = (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(-1)  # (N, N) squared distances
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    if not bool(pos.any()) or not bool(neg.any()):
        return embeddings.sum() * 0.0
    a_idx, p_idx = pos.nonzero(as_tuple=True)
    d_ap = d[a_idx, p_idx]  # (P,)
    d_an = d[a_idx]  # (P, N)
    neg_a = neg[a_idx]
    inf = torch.full((), float("inf"), dtype=d.dtype, device=d.device)
    farther = neg_a & (d_an > d_ap.unsqueeze(1))
    semi_hard = torch.where(farther, d_an, inf).amin(1)
    fallback = torch.where(neg_a, d_an, -inf).amax(1)
    chosen = torch.where(farther.any(1), semi_hard, fallback)
    ok = neg_a.any(1)
    if not bool(ok.any()):
        return embeddings.sum() * 0.0
    return F.relu(d_ap[ok] - chosen[ok] + margin).mean()


def caan_loss(
    output: Output,
    labels: Tensor,
    *,
    triplet_weight: float = 1.0,
    margin: float = 0.2,
    frame_weight: float = 1.0,
    clip_weight: float = 1.0,
    normalize: bool = True,
    triplet: str = "facenet",
    class_weight: Tensor | None = None,
    return_terms: bool = False,
) -> Tensor | dict[str, Tensor]:
    """CAAN's training loss: frame-level softmax loss, clip softmax loss and a triplet loss on ``R_V``.

    Section 4.2: the frame branch "is supervised by softmax-loss, which optimizes the probability
    of each image feature" and ``R_V`` "is supervised by triplet loss". ::

        loss = frame_weight   * mean_b mean_{i used} CE(frame_logits[b, i], y_b)
             + clip_weight    * mean_b CE(logits[b], y_b)
             + triplet_weight * triplet_loss(R_V, y, margin)

    Each frame is labelled with its clip's label; the frame term averages over the used frames of
    a clip, then over clips (long clips do not dominate). Deviation: the clip term is not in the
    paper, which does not say how the video is classified; it trains the score branch from the
    labels directly (the frame term does not depend on the scores). Terms a model does not
    provide (no ``frame_logits``, no ``video_feature``) are skipped, so the loss also serves FAA,
    CAA and FFAA. ``triplet="facenet"`` (default, the paper cites FaceNet): squared distances and
    semi-hard negatives (:func:`facenet_triplet_loss`); ``"batch_hard"``: unsquared distances, the
    hardest positive and negative of each anchor (:func:`batch_hard_triplet_loss`, this library's
    earlier default). ``class_weight`` ``(K,)`` weights both cross-entropy terms (as
    :func:`torch.nn.functional.cross_entropy`'s ``weight``; ``emocontext train --class-weights``).

    Args:
        output: a model's :class:`Output` (``logits``, optional ``frame_logits``,
            ``extras["video_feature"]``, ``extras["frame_mask"]``).
        labels: ``(B,)`` class ids.
        return_terms: return ``{"loss", "frame", "clip", "triplet"}`` instead of the total.
    """
    triplets = {"facenet": facenet_triplet_loss, "batch_hard": batch_hard_triplet_loss}
    if triplet not in triplets:
        raise ConfigError(f"triplet must be one of {', '.join(triplets)}, got {triplet!r}")
    zero = output.logits.sum() * 0.0
    terms = {"frame": zero, "clip": zero, "triplet": zero}
    if clip_weight:
        terms["clip"] = F.cross_entropy(output.logits, labels, weight=class_weight)
    if frame_weight and output.frame_logits is not None:
        fl = output.frame_logits
        B, T, K = fl.shape
        used = output.extras.get("frame_mask")
        used = torch.ones(B, T, dtype=torch.bool, device=fl.device) if used is None else used.to(fl.device)
        ce = F.cross_entropy(
            fl.reshape(B * T, K), labels.repeat_interleave(T), weight=class_weight, reduction="none"
        ).view(B, T)
        has = used.any(1)
        if bool(has.any()):
            terms["frame"] = masked_mean(ce, used)[has].mean()
    video = output.extras.get("video_feature")
    if triplet_weight and video is not None:
        terms["triplet"] = triplets[triplet](video, labels, margin=margin, normalize=normalize)
    total = frame_weight * terms["frame"] + clip_weight * terms["clip"] + triplet_weight * terms["triplet"]
    if return_terms:
        return {"loss": total, **terms}
    return total


# ---------------------------------------------------------------------------------------------
# Registry names (options: each class's keyword arguments)
# ---------------------------------------------------------------------------------------------


register_model(
    CAAN, name="caan", paper=f"{_PAPER}, 4.2, Fig. 4, eq. (1)-(4)", fixed={"attention": True}, recipe=CAAN_RECIPE
)
register_model(
    FFAA,
    name="ffaa",
    paper=f"{_PAPER}, 5.2 'FFAA'",
    unused=("attention", "score_layers", "score_hidden"),
    recipe=CAAN_RECIPE,
)
register_model(
    FAA,
    name="faa",
    paper=f"{_PAPER}, 5.2 'FAA'",
    dims={"face_dim": "in_dim"},
    unused=("drop_faceless",),
    recipe=CAAN_RECIPE,
)
register_model(CAA, name="caa", paper=f"{_PAPER}, 5.2 'CAA'", dims={"context_dim": "in_dim"}, recipe=CAAN_RECIPE)
register_model(
    FaceAttention,
    name="caan_face",
    paper=f"{_PAPER}, 5.1-5.2, Tables 2-3 (face, 1CF)",
    dims={"face_dim": "in_dim"},
    unused=("drop_faceless",),
    recipe=CAAN_RECIPE,
)
register_model(
    ContextAttention,
    name="caan_context",
    paper=f"{_PAPER}, 5.1-5.2, Tables 2-3 (context, 3CF)",
    dims={"context_dim": "in_dim"},
    defaults={"score_layers": 3},
    recipe=CAAN_RECIPE,
)


def _frames_used(batch: dict[str, Tensor], stream: str, drop_faceless: bool, model: str) -> tuple[Tensor, Tensor]:
    """The stream ``(B, T, D)`` and the frames a single-stream model reads ``(B, T)`` bool: frames with a
    face for the face stream; for the context stream every valid frame, or only the frames with a face
    in clips that have one when ``drop_faceless`` (CAA as the paper describes it, FIDELITY.md)."""
    x = require(batch, stream, model)
    mask, face_mask = batch_masks(batch, x)
    if stream == "face":
        return x, face_mask
    if drop_faceless:
        return x, torch.where(face_mask.any(1, keepdim=True), face_mask, mask)
    return x, mask
