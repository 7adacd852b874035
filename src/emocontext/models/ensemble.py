"""Linear weighted ensembles of trained models, with weights fitted on validation data.

Sun et al., MEC 2017, section VI, Table II: "CACA-RNN+2D-3D-CNN is an ensemble network of
CACA-RNN and a 2D-3D-CNN network using linear weighted output from each model as the output
prediction." The paper does not say which outputs are weighted nor how the weights were chosen.
Here the *probabilities* are averaged,

    p(y | clip) = sum_m w_m softmax(z_m),   w_m >= 0,  sum_m w_m = 1,

so the result is a probability distribution whatever the members' logit scales, and the weights
are fitted on held-out (validation) predictions by :func:`fit_ensemble_weights`:

* an exhaustive search over the simplex grid ``{w : w_m in {0, s, 2s, ..., 1}, sum w = 1}``
  (``s`` = ``step``, 0.05 by default: 21 points for 2 members, 231 for 3, 1771 for 4), when it
  has at most ``max_grid`` points; otherwise
* greedy ensemble selection with replacement (Caruana et al., "Ensemble selection from libraries
  of models", ICML 2004): ``round(1/step)`` rounds, each adding ``step`` of weight to the member
  that improves the objective most, starting from the best single member.

The objective is the validation log-likelihood by default (smooth, uses the whole probability,
and overfits a small validation set less than accuracy); ``"map"`` (the mean over classes of the
average precision, :func:`emocontext.metrics.macro_map`, the project's one AP) and ``"accuracy"``
are available. Ties go to the weights closest to uniform. No SciPy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..metrics import macro_map
from .base import EmotionModel, Output
from .recipes import CACA_RNN
from .registry import create_model, register_model

__all__ = ["LinearEnsemble", "fit_ensemble_weights", "simplex_grid"]

_OBJECTIVES = ("nll", "map", "accuracy")
_EXPLANATIONS = ("temporal_attention", "spatial_attention", "fusion_weights")


def simplex_grid(num_members: int, step: float = 0.05) -> np.ndarray:
    """All weight vectors ``(G, M)`` with entries in ``{0, step, ..., 1}`` summing to 1 (``1/step`` an integer)."""
    n = round(1 / step)
    if not math.isclose(n * step, 1.0, rel_tol=1e-6):
        raise ConfigError(f"1/step must be an integer, got step={step}")
    rows = []
    for bars in itertools.combinations(range(n + num_members - 1), num_members - 1):
        edges = np.r_[-1, bars, n + num_members - 1]
        rows.append(np.diff(edges) - 1)
    return np.asarray(rows, dtype=np.float64) / n


def _score(probs: np.ndarray, labels: np.ndarray, objective: str) -> float:
    """Objective to maximise for ensemble probabilities ``(N, K)``."""
    if objective == "nll":
        return float(np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))
    if objective == "accuracy":
        return float(np.mean(probs.argmax(1) == labels))
    return macro_map(labels, probs)


def _best(candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The best-scoring weight vector; ties (within 1e-12) go to the one closest to uniform."""
    top = np.flatnonzero(scores >= scores.max() - 1e-12)
    uniform = np.full(candidates.shape[1], 1.0 / candidates.shape[1])
    return candidates[top[np.argmin(((candidates[top] - uniform) ** 2).sum(1))]]


def fit_ensemble_weights(
    prob_list: Sequence[np.ndarray | Tensor],
    labels: np.ndarray | Tensor,
    *,
    objective: str = "nll",
    step: float = 0.05,
    max_grid: int = 50_000,
) -> np.ndarray:
    """Fit the weights of a linear probability ensemble on validation predictions.

    Args:
        prob_list: one ``(N, K)`` array of class probabilities per member (rows sum to 1), for
            the same ``N`` validation clips in the same order.
        labels: ``(N,)`` true class ids.
        objective: ``"nll"`` (maximise the mean log-likelihood; default), ``"map"`` (mean over classes
            of the average precision) or ``"accuracy"``.
        step: weight resolution; ``1/step`` must be an integer.
        max_grid: largest simplex grid searched exhaustively; beyond it, greedy ensemble selection.

    Returns:
        ``(M,)`` float64 weights, non-negative, summing to 1.
    """
    if objective not in _OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(_OBJECTIVES)}, got {objective!r}")
    if len(prob_list) == 0:
        raise ConfigError("fit_ensemble_weights needs at least one member's probabilities")
    P = np.stack([np.asarray(torch.as_tensor(p).detach().cpu(), dtype=np.float64) for p in prob_list])  # (M, N, K)
    y = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)
    if P.ndim != 3 or P.shape[1] != len(y):
        raise ConfigError(f"prob_list must hold (N, K) arrays with N = len(labels) = {len(y)}, got {P.shape[1:]}")
    M = P.shape[0]
    if M == 1:
        return np.ones(1)
    n = round(1 / step)
    if math.comb(n + M - 1, M - 1) <= max_grid:
        grid = simplex_grid(M, step)
        scores = np.array([_score(np.tensordot(w, P, 1), y, objective) for w in grid])
        return _best(grid, scores)
    # Greedy ensemble selection with replacement (Caruana et al. 2004).
    eye = np.eye(M)
    counts = _best(eye, np.array([_score(P[m], y, objective) for m in range(M)])) * 1.0
    for r in range(1, n):
        candidates = (counts[None, :] + eye) / (r + 1)
        scores = np.array([_score(np.tensordot(w, P, 1), y, objective) for w in candidates])
        counts = counts + eye[np.argmax(scores)]
    return counts / counts.sum()


class LinearEnsemble(EmotionModel):
    """Weighted average of member models' class probabilities (Sun et al., MEC 2017, VI, Table II).

    ``p = sum_m w_m softmax(logits_m)``; ``Output.logits`` is ``log p`` (so ``softmax(logits) = p``
    and cross-entropy / argmax work as for any model). The batch must hold every stream a member
    reads (:attr:`streams` is their union, an instance attribute here).

    Output: ``logits`` ``(B, K)``; each explanation field (``temporal_attention``,
    ``spatial_attention``, ``fusion_weights``) is taken from the highest-weighted member that
    provides it (``frame_logits`` is left None: no member's running prediction is the
    ensemble's); ``extras``: ``member_probs`` ``(M, B, K)``, ``weights`` ``(M,)``, ``members``
    (names, in order), ``member_outputs`` (name -> Output), ``explanations_from`` (field -> member
    name).

    Args:
        members: models (or a name -> model mapping), all with the same ``K``.
        weights: ``(M,)`` non-negative weights (normalised to sum 1); uniform if None.
    """

    def __init__(
        self,
        members: Sequence[EmotionModel] | Mapping[str, EmotionModel],
        weights: Sequence[float] | np.ndarray | Tensor | None = None,
    ):
        if isinstance(members, Mapping):
            named = list(members.items())
        else:
            named = []
            for m in members:
                base = getattr(m, "model_name", type(m).__name__.lower())
                key, i = base, 1
                while key in dict(named):
                    i += 1
                    key = f"{base}_{i}"
                named.append((key, m))
        if not named:
            raise ConfigError("an ensemble needs at least one member")
        classes = {getattr(m, "num_classes", None) for _, m in named}
        if len(classes) > 1:
            raise ConfigError(f"ensemble members disagree on num_classes: {sorted(map(str, classes))}")
        super().__init__(classes.pop())
        self.members = torch.nn.ModuleDict(named)
        self.streams = tuple(dict.fromkeys(s for _, m in named for s in m.streams))
        self.register_buffer("weights", torch.full((len(named),), 1.0 / len(named)))
        if weights is not None:
            self.set_weights(weights)

    @property
    def member_names(self) -> list[str]:
        return list(self.members.keys())

    def set_weights(self, weights: Sequence[float] | np.ndarray | Tensor) -> None:
        """Set the ``(M,)`` weights (non-negative, not all zero; normalised to sum 1)."""
        w = torch.as_tensor(np.asarray(torch.as_tensor(weights).cpu(), dtype=np.float64)).float().flatten()
        if w.numel() != len(self.members) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ConfigError(f"ensemble weights must be {len(self.members)} non-negative numbers, not all 0; got {w}")
        self.weights.copy_((w / w.sum()).to(self.weights.device))

    def fit(self, prob_list: Sequence[np.ndarray | Tensor], labels: np.ndarray | Tensor, **kwargs) -> np.ndarray:
        """Fit and set the weights from validation probabilities, one ``(N, K)`` array per member in
        :attr:`member_names` order (see :func:`fit_ensemble_weights` for ``kwargs``)."""
        w = fit_ensemble_weights(prob_list, labels, **kwargs)
        self.set_weights(w)
        return w

    def forward(self, batch: dict[str, Tensor]) -> Output:
        outputs = {name: m(batch) for name, m in self.members.items()}
        probs = torch.stack([torch.softmax(o.logits.float(), dim=-1) for o in outputs.values()])  # (M, B, K)
        p = torch.einsum("m,mbk->bk", self.weights.to(probs.dtype), probs)
        logits = torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))
        by_weight = [self.member_names[i] for i in torch.argsort(self.weights, descending=True, stable=True).tolist()]
        explanations, sources = {}, {}
        for field_name in _EXPLANATIONS:
            for name in by_weight:
                value = getattr(outputs[name], field_name)
                if value is not None:
                    explanations[field_name], sources[field_name] = value, name
                    break
        return Output(
            logits=logits,
            **explanations,
            extras={
                "member_probs": probs,
                "weights": self.weights,
                "members": self.member_names,
                "member_outputs": outputs,
                "explanations_from": sources,
            },
        )


@register_model(
    paper="Sun et al., MEC 2017, VI, Table II (CACA-RNN+2D-3D-CNN)",
    streams=("face", "context", "face_map"),
    recipe=CACA_RNN,
)
def ensemble(
    *,
    num_classes: int,
    face_dim: int | None = None,
    context_dim: int | None = None,
    members: Sequence[str | EmotionModel] = ("caca_rnn_a", "cnn_2d3d"),
    weights: Sequence[float] | None = None,
    member_kwargs: Mapping[str, dict] | None = None,
) -> LinearEnsemble:
    """Linear weighted ensemble of member models' probabilities, weights fitted on validation data.

    ``members`` are registry names (built here with the same ``num_classes``, ``face_dim``,
    ``context_dim`` and ``member_kwargs[name]``) or already built (trained) models. The default
    is the paper's "CACA-RNN+2D-3D-CNN". Streams listed for the registry are the default's; the
    built model's ``streams`` are its members' union.
    """
    member_kwargs = dict(member_kwargs or {})
    built = []
    for m in members:
        if isinstance(m, str):
            built.append(
                create_model(
                    m, num_classes=num_classes, face_dim=face_dim, context_dim=context_dim, **member_kwargs.get(m, {})
                )
            )
        elif isinstance(m, EmotionModel):
            built.append(m)
        else:
            raise ConfigError(f"ensemble members must be registry names or EmotionModels, got {type(m).__name__}")
    return LinearEnsemble(built, weights)
