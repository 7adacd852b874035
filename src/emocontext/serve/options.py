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


def parse_options(fields: dict[str, str], *, default_model: str | None, default_detector: str) -> dict:
    """``{"model", "detector", "fps", "max_duration", "person"}`` from the form fields.

    Empty fields take the defaults. Raises :class:`ApiError` 422 (``bad_option``) for an unknown
    model or detector, a rate outside ``(0, MAX_FPS]``, a non-positive duration, or ``person`` when
    not ``all`` or ``subject``.
    """
    from ..options import MODELS, PERSON_MODES
    from ..video.faces import list_detectors

    get = {k: v for k, v in fields.items() if v != ""}.get
    model = get("model", default_model)
    if model is not None and model not in MODELS:
        raise ApiError(422, "bad_option", f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    detector = get("detector", default_detector).lower()
    if detector not in list_detectors():
        raise ApiError(
            422, "bad_option", f"unknown face detector {detector!r}; choose one of {', '.join(list_detectors())}"
        )
    fps = _number("fps", get("fps")) if get("fps") else 5.0
    if fps > MAX_FPS:
        raise ApiError(422, "bad_option", f"fps must be at most {MAX_FPS:g}, got {fps:g}")
    max_duration = _number("max_duration", get("max_duration")) if get("max_duration") else None
    person = get("person")
    if person is not None and person not in PERSON_MODES:
        raise ApiError(422, "bad_option", f"person must be one of {', '.join(PERSON_MODES)}, got {person!r}")
    return {"model": model, "detector": detector, "fps": fps, "max_duration": max_duration, "person": person}
