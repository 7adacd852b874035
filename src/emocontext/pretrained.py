"""The shipped context-aware model: a trained head over the frozen face and context extractors.

The file (``weights/context_model_expw.pt``, float16) holds one registry model (by default
``caer_net_features``: CAER-Net spatial attention and adaptive fusion, Lee et al., ICCV 2019,
section 3.2, eq. 3-6) with its keyword arguments, its label set, and the signatures of the
extractors and stream settings it was trained on. :func:`load_context_model` refuses to pair it
with different extractors (another face CNN, a pooled instead of spatial context map, the face
not hidden): the head would silently read features it has never seen.

Optionally the file also holds a **face-only model** (the ``F`` row of CAER-Net's Table 3 on the same
features) and a ``face_weight`` w in [0, 1] fitted on validation data: on frames with a face the answer is
the linear weighted ensemble (Sun et al., MEC 2017, Table II) ``(1 - w) p_CAER + w p_face``; frames without a
face get CAER-Net's context-only answer. Deviation from CAER-Net, and why: on ExpW the fused model alone
scores below the face alone (``benchmarks/expw_ablation.md``); mixing in the face model with a weight chosen
on validation data keeps the scene's evidence where it helps and makes the model lean on the face where the
scene says little. The reported fusion weights are then the effective ones:
``lambda_face = w + (1 - w) lambda_face^CAER``, ``lambda_context = (1 - w) lambda_context^CAER``.

How it is trained: ``src/emocontext/weights/MODEL_CARD.md``; what it scores:
:data:`emocontext.weights.CONTEXT_MODEL_WEIGHTS` (``metrics``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import EmoContextError, IncompatibleFeaturesError
from .hub import default_path
from .models import create_model
from .models.base import EmotionModel
from .weights import CONTEXT_MODEL_WEIGHTS

__all__ = [
    "CONTEXT_MODEL_FILE",
    "ContextModel",
    "context_model_path",
    "export_context_model",
    "load_context_model",
]

CONTEXT_MODEL_FILE = CONTEXT_MODEL_WEIGHTS.filename
FORMAT = "emocontext.context_model/1"


@dataclass
class ContextModel:
    """A trained head and what it needs.

    Attributes:
        model: the head in eval mode; reads ``face`` ``(B, T, D_f)`` and ``context`` ``(B, T, C, h, w)``.
        name: registry name of the model; ``labels``: class names in logit order.
        extraction: the store signature it was trained on (``face``, ``context``, ``streams``).
        card: free-form provenance (data, recipe, command, results).
    """

    model: EmotionModel
    name: str
    labels: tuple[str, ...]
    extraction: dict
    card: dict = field(default_factory=dict)
    face_model: EmotionModel | None = None
    face_weight: float = 0.0

    @torch.inference_mode()
    def frame_outputs(self, batch: dict) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Per-frame probabilities ``(T, K)``, spatial attention ``(T, h, w)`` (None if the model has none) and
        effective fusion weights ``(T, 2)`` = ``(lambda_face, lambda_context)`` for a batch of one clip
        (``batch["face_mask"]`` ``(1, T)`` says which frames have a face); see the module docstring."""
        out = self.model(batch)
        probs = out.frame_logits[0].float().softmax(-1)
        fusion = None if out.fusion_weights is None else out.fusion_weights[0].float()
        if self.face_model is not None and self.face_weight > 0:
            w = self.face_weight * batch["face_mask"][0].float()[:, None]  # (T, 1): 0 on face-less frames
            face_probs = self.face_model(batch).frame_logits[0].float().softmax(-1)
            probs = (1 - w) * probs + w * face_probs
            if fusion is not None:
                fusion = torch.cat([w + (1 - w) * fusion[:, :1], (1 - w) * fusion[:, 1:]], dim=-1)
        att = out.spatial_attention
        return (
            probs.numpy(),
            None if att is None else att[0].numpy(),
            None if fusion is None else fusion.numpy(),
        )

    @torch.inference_mode()
    def clip_probabilities(self, batch: dict, *, face_weight: float | None = None) -> torch.Tensor:
        """Clip probabilities ``(B, K)`` of a batch of clips: ``(1 - w) softmax(CAER logits) + w softmax(face
        logits)`` for clips with at least one face (``w`` = ``face_weight``, default this model's)."""
        w = self.face_weight if face_weight is None else face_weight
        probs = self.model(batch).logits.float().softmax(-1)
        if self.face_model is None or w == 0:
            return probs
        has_face = batch["face_mask"].any(1).float()[:, None] * w
        return (1 - has_face) * probs + has_face * self.face_model(batch).logits.float().softmax(-1)

    def check_extractors(self, face_signature: dict, context_signature: dict, hide_face: bool) -> None:
        """Raise :class:`IncompatibleFeaturesError` unless the extractors are the ones it was trained on."""
        want = self.extraction
        problems = []
        if _canon(want.get("face")) != _canon(face_signature):
            problems.append(f"face CNN {_ident(want.get('face'))} (this install: {_ident(face_signature)})")
        if _canon(want.get("context")) != _canon(context_signature):
            problems.append(f"context CNN {_ident(want.get('context'))} (this install: {_ident(context_signature)})")
        if bool(want.get("streams", {}).get("hide_face")) != hide_face:
            problems.append(f"hide_face={want.get('streams', {}).get('hide_face')}")
        if problems:
            raise IncompatibleFeaturesError(
                f"the context model {self.name!r} was trained on other features: " + "; ".join(problems)
            )


def _canon(sig: dict | None) -> str:
    return json.dumps(sig, sort_keys=True, default=list)


def _ident(sig: dict | None) -> str:
    if not sig:
        return "?"
    extra = f", weights {sig['weights_sha256']}" if sig.get("weights_sha256") else ""
    spatial = ", spatial" if sig.get("spatial") else ""
    return f"{sig.get('name')} v{sig.get('version')}{spatial}{extra}"


def context_model_path() -> Path:
    """Path of the shipped context model (package data), or ``$EMOCONTEXT_CONTEXT_WEIGHTS`` (not checked)."""
    return default_path(CONTEXT_MODEL_WEIGHTS)


def _model_entry(checkpoint: str | Path) -> tuple[dict, dict]:
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    meta = ck["meta"]
    entry = {
        "model": meta["config"]["model"],
        "model_kwargs": meta["config"]["model_kwargs"],
        "dims": meta["dims"],
        "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()},
    }
    return entry, meta


def export_context_model(
    checkpoint: str | Path,
    extraction: dict,
    out: str | Path,
    *,
    card: dict | None = None,
    face_checkpoint: str | Path | None = None,
    face_weight: float = 0.0,
) -> Path:
    """Write a training checkpoint (``best.pt`` of :func:`emocontext.training.fit`) as a shippable float16 file.

    Args:
        checkpoint: the ``best.pt`` to export.
        extraction: the signature of the feature store it was trained on (``FeatureStore.signature``).
        out: destination file; written atomically.
        card: provenance and results to keep beside the weights.
        face_checkpoint: optional face-only model trained on the same store and labels (module docstring).
        face_weight: its weight w in [0, 1] on frames with a face.

    Raises:
        EmoContextError: ``face_weight`` outside [0, 1], or the face model's labels differ.
    """
    from .outputs import atomic_write_bytes

    entry, meta = _model_entry(checkpoint)
    blob = {"format": FORMAT, **entry, "labels": list(meta["labels"]), "extraction": extraction, "card": card or {}}
    if not 0.0 <= face_weight <= 1.0:
        raise EmoContextError(f"face_weight must be in [0, 1], got {face_weight}")
    if face_checkpoint is not None:
        face_entry, face_meta = _model_entry(face_checkpoint)
        if list(face_meta["labels"]) != blob["labels"]:
            raise EmoContextError(f"{face_checkpoint}: labels {face_meta['labels']} differ from {blob['labels']}")
        blob["face_model"], blob["face_weight"] = face_entry, float(face_weight)
    import io

    buf = io.BytesIO()
    torch.save(blob, buf)
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())  # makes the folder, or says why it cannot
    return out


def load_context_model(path: str | Path | None = None) -> ContextModel:
    """Load the shipped (or a given) context model file.

    Raises:
        EmoContextError: the file is missing or is not a context model file.
    """
    path = Path(path) if path is not None else context_model_path()
    if not path.exists():
        raise EmoContextError(
            f"{path}: no context model file (train one with benchmarks/expw_ablation.py and "
            "scripts/export_context_model.py, or use the face-only model: --model face)"
        )
    try:  # weights_only: a model file from elsewhere cannot run code when it is loaded
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise EmoContextError(f"{path}: not a readable model file ({e})") from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise EmoContextError(f"{path}: not an emocontext context model file")
    k = len(blob["labels"])
    face = blob.get("face_model")
    return ContextModel(
        model=_build(blob, k),
        name=blob["model"],
        labels=tuple(blob["labels"]),
        extraction=blob["extraction"],
        card=blob.get("card", {}),
        face_model=None if face is None else _build(face, k),
        face_weight=float(blob.get("face_weight", 0.0)),
    )


def _build(entry: dict, num_classes: int) -> EmotionModel:
    model = create_model(entry["model"], num_classes=num_classes, **entry["dims"], **entry["model_kwargs"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in entry["state_dict"].items()})
    return model.eval()
