"""The prediction options of an upload's form fields, checked: a clear 422 for each bad value."""

from __future__ import annotations

import math

from .errors import ApiError

__all__ = ["FIELDS", "MAX_FPS", "parse_options"]

#: Option fields accepted beside the file.
FIELDS = ("model", "detector", "fps", "max_duration", "person")
MAX_FPS = 30.0


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(422, "bad_option", f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ApiError(422, "bad_option", f"{name} must be > 0, got {text!r}")
    return value


def _choice(kind: str, value: str, known, available, capabilities) -> str:
    if value not in known:
        raise ApiError(422, "bad_option", f"unknown {kind} {value!r}; choose one of {', '.join(available)}")
    if value not in available:
        missing = capabilities.why_not(kind.split()[-1], value) if capabilities is not None else None
        why = f" ({missing.reason})" if missing is not None else ""
        raise ApiError(
            422,
            "unavailable",
            f"the {kind} {value!r} is not available on this server{why}; choose one of {', '.join(available)}",
        )
    return value


def parse_options(
    fields: dict[str, str], *, default_model: str | None, default_detector: str, capabilities=None
) -> dict:
    """``{"model", "detector", "fps", "max_duration", "person"}`` from the form fields.

    Empty fields take the defaults. Raises :class:`ApiError` 422 ``bad_option`` for an unknown
    model or detector, a rate outside ``(0, MAX_FPS]``, a non-positive duration, or ``person`` when
    not ``all`` or ``subject``; 422 ``unavailable`` for a model or detector this server cannot run
    (``capabilities``: a :class:`~.capabilities.Capabilities`; None: everything the library knows).
    """
    from ..options import MODELS, PERSON_MODES
    from ..video.faces import list_detectors

    get = {k: v for k, v in fields.items() if v != ""}.get
    models = capabilities.models if capabilities is not None else MODELS
    detectors = capabilities.detectors if capabilities is not None else list_detectors()
    model = get("model", default_model)
    if model is not None:
        model = _choice("model", model, MODELS, models, capabilities)
    detector = _choice(
        "face detector", get("detector", default_detector).lower(), list_detectors(), detectors, capabilities
    )
    fps = _number("fps", get("fps")) if get("fps") else 5.0
    if fps > MAX_FPS:
        raise ApiError(422, "bad_option", f"fps must be at most {MAX_FPS:g}, got {fps:g}")
    max_duration = _number("max_duration", get("max_duration")) if get("max_duration") else None
    person = get("person")
    if person is not None and person not in PERSON_MODES:
        raise ApiError(422, "bad_option", f"person must be one of {', '.join(PERSON_MODES)}, got {person!r}")
    return {"model": model, "detector": detector, "fps": fps, "max_duration": max_duration, "person": person}
