"""What this server can run: the models and face detectors whose files and packages are here.

Checked once, in the server process, at start: each detector is built (:func:`~emocontext.video.faces.
create_detector`: a missing model file or package fails there), each model's pretrained files are
resolved (:func:`~emocontext.hub.resolve`, never downloading). What is missing is listed with the reason
and the operator's fix, in words for a web user: no server path, no Python argument.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from ..errors import EmoContextError, WeightsError
from .errors import public_message

__all__ = ["Capabilities", "Missing", "check_capabilities", "MODEL_WEIGHTS"]

#: The pretrained files (``emocontext.weights`` records) each model of the service reads.
MODEL_WEIGHTS = {
    "face": ("face_cnn",),
    "context": ("face_cnn", "efficientnet_lite0", "context_model"),
}


@dataclass(frozen=True)
class Missing:
    """A model or detector this server cannot run.

    Attributes:
        kind: ``"model"`` or ``"detector"``.
        name: its name (``"yunet"``).
        reason: why, for a person (no server path).
        fix: what the server's operator can do.
    """

    kind: str
    name: str
    reason: str
    fix: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "reason": self.reason, "fix": self.fix}


@dataclass(frozen=True)
class Capabilities:
    """The models and detectors that can run here (in the library's order), and what is missing."""

    models: tuple[str, ...]
    detectors: tuple[str, ...]
    missing: tuple[Missing, ...] = field(default=())

    def why_not(self, kind: str, name: str) -> Missing | None:
        return next((m for m in self.missing if m.kind == kind and m.name == name), None)


def _weights_fix(name: str) -> str:
    from ..weights import get_weights

    w = get_weights(name)
    if w.url:
        return f"on the server, run: emocontext weights download {name}"
    return f"on the server, reinstall emocontext or see `emocontext weights list` for where {name} is looked for"


def _detector_missing(name: str, e: EmoContextError) -> Missing:
    from ..weights import list_weights

    if isinstance(e, WeightsError):
        fix = _weights_fix(name) if name in list_weights() else "on the server, see `emocontext weights list`"
        return Missing("detector", name, f"the {name} model file is not on the server", fix)
    if importlib.util.find_spec(name) is None:
        return Missing(
            "detector",
            name,
            f"the {name} package is not installed on the server",
            f"on the server, run: pip install 'emocontext[{name}]'",
        )
    return Missing("detector", name, public_message(str(e)), "see the server's log")


def check_capabilities() -> Capabilities:
    """Build every detector and resolve every model's files once (no download); see the module docstring."""
    from ..hub import resolve
    from ..options import MODELS
    from ..video.faces import create_detector, list_detectors
    from ..weights import get_weights

    missing: list[Missing] = []
    detectors = []
    for name in list_detectors():
        try:
            create_detector(name)
        except EmoContextError as e:
            missing.append(_detector_missing(name, e))
        else:
            detectors.append(name)
    models = []
    for name in MODELS:
        absent = []
        for w in MODEL_WEIGHTS.get(name, ()):
            try:
                resolve(get_weights(w))
            except EmoContextError:
                absent.append(w)
        if absent:
            files = f"file {absent[0]} is" if len(absent) == 1 else f"files {', '.join(absent)} are"
            reason = f"its model {files} not on the server"
            missing.append(Missing("model", name, reason, _weights_fix(absent[0])))
        else:
            models.append(name)
    return Capabilities(tuple(models), tuple(detectors), tuple(missing))
