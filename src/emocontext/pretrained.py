"""The shipped context-aware model: a trained head over the frozen face and context extractors.

The file (``weights/context_model_expw.pt``, float16) holds one registry model (by default
``caer_net_features``: CAER-Net spatial attention and adaptive fusion, Lee et al., ICCV 2019,
section 3.2, eq. 3-6) with its keyword arguments, its label set, and the signatures of the
extractors and stream settings it was trained on. :func:`load_context_model` refuses to pair it
with different extractors (another face CNN, a pooled instead of spatial context map, the face
not hidden): the head would silently read features it has never seen.

How it is trained and what it scores: ``src/emocontext/weights/MODEL_CARD.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from .errors import EmoContextError, IncompatibleFeaturesError
from .models import create_model
from .models.base import EmotionModel

__all__ = [
    "CONTEXT_MODEL_FILE",
    "ContextModel",
    "context_model_path",
    "export_context_model",
    "load_context_model",
]

CONTEXT_MODEL_FILE = "context_model_expw.pt"
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
    """Path of the shipped context model (package data), or ``$EMOCONTEXT_CONTEXT_WEIGHTS``."""
    env = os.environ.get("EMOCONTEXT_CONTEXT_WEIGHTS")
    if env:
        return Path(env)
    return Path(str(resources.files("emocontext") / "weights" / CONTEXT_MODEL_FILE))


def export_context_model(
    checkpoint: str | Path, extraction: dict, out: str | Path, *, card: dict | None = None
) -> Path:
    """Write a training checkpoint (``best.pt`` of :func:`emocontext.train.fit`) as a shippable float16 file.

    Args:
        checkpoint: the ``best.pt`` to export.
        extraction: the signature of the feature store it was trained on (``FeatureStore.signature``).
        out: destination file; written atomically.
        card: provenance and results to keep beside the weights.
    """
    from .features.store import atomic_write_bytes

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    meta = ck["meta"]
    blob = {
        "format": FORMAT,
        "model": meta["config"]["model"],
        "model_kwargs": meta["config"]["model_kwargs"],
        "dims": meta["dims"],
        "labels": list(meta["labels"]),
        "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()},
        "extraction": extraction,
        "card": card or {},
    }
    import io

    buf = io.BytesIO()
    torch.save(blob, buf)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
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
    model = create_model(blob["model"], num_classes=len(blob["labels"]), **blob["dims"], **blob["model_kwargs"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return ContextModel(
        model=model.eval(),
        name=blob["model"],
        labels=tuple(blob["labels"]),
        extraction=blob["extraction"],
        card=blob.get("card", {}),
    )
