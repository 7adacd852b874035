"""The options of a prediction: one frozen, typed record, checked once (:class:`PredictOptions`).

Every front end builds this record and hands it on: the command line (``emocontext predict``), the
Python API (:class:`emocontext.Predictor`, :func:`emocontext.predict`), the web service (from an
upload's form fields, :meth:`PredictOptions.from_mapping`) and the Ray actors. Choices are
``Literal`` types, so type checkers, typer (``--help`` lists them) and pydantic (an OpenAPI schema)
read the same lists; ranges are class attributes. A bad value raises :class:`OptionError` here and
nowhere else.

This module imports nothing heavy (no torch, no OpenCV): ``emocontext --help`` reads it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from .errors import ConfigError

__all__ = [
    "PredictOptions",
    "OptionError",
    "ModelName",
    "DetectorName",
    "PersonMode",
    "MODELS",
    "DETECTORS",
    "PERSON_MODES",
    "default_model",
]

#: ``face``: the face-expression CNN alone; ``context``: face + scene (CAER-Net attention and fusion).
ModelName = Literal["face", "context"]
#: Face detector backends (:func:`emocontext.video.faces.create_detector`); ``none``: the frame is the face.
DetectorName = Literal["mtcnn", "yunet", "haar", "dlib", "none"]
#: ``all``: every person gets an emotion; ``subject``: only the most persistent, then largest, face.
PersonMode = Literal["all", "subject"]

MODELS: tuple[str, ...] = get_args(ModelName)
DETECTORS: tuple[str, ...] = get_args(DetectorName)
PERSON_MODES: tuple[str, ...] = get_args(PersonMode)


class OptionError(ConfigError):
    """A prediction option has a value outside its choices or range.

    Attributes:
        field: the option's name (``"fps"``, ...), as in :class:`PredictOptions`.
        value: the value given.
    """

    def __init__(self, field: str, value: object, message: str):
        super().__init__(message)
        self.field = field
        self.value = value


def default_model() -> ModelName:
    """``"context"`` when ``$EMOCONTEXT_CONTEXT_WEIGHTS`` names a context model file (your own), else ``"face"``.

    The shipped ExpW context model is not the default: on the ExpW test faces it scores below the
    face alone (the numbers: :data:`emocontext.weights.CONTEXT_MODEL_WEIGHTS` ``.metrics``, from
    ``benchmarks/expw_ablation.md``); ask for it with ``model="context"`` for its context-only answers
    on frames without a face and its evidence (spatial attention, fusion weights).
    """
    return "context" if os.environ.get("EMOCONTEXT_CONTEXT_WEIGHTS") else "face"


@dataclass(frozen=True)
class PredictOptions:
    """How to predict: which model, which face detector, how many frames, whose emotion.

    Frozen and hashable: equal options give equal predictions, so a service can keep one
    :class:`~emocontext.Predictor` per distinct value.

    Attributes:
        model: ``"face"`` (the face-expression CNN, temporal mean over the frames with a face) or
            ``"context"`` (face + scene: CAER-Net spatial attention and adaptive fusion, Lee et al.,
            ICCV 2019, eq. 3-6). None (the default) becomes :func:`default_model` when the record is
            made: ``"face"``, or ``"context"`` when ``$EMOCONTEXT_CONTEXT_WEIGHTS`` is set.
        detector: face detector backend, one of :data:`DETECTORS` (``"mtcnn"``, the offline default).
        fps: frames sampled per second of video, in ``[MIN_FPS, MAX_FPS]`` (5: CACA-RNN, Sun et al.,
            MEC 2017, V-B). Above a file's own frame rate every decoded frame is read once.
        max_duration: read at most this many seconds of each file (> 0), or None for all of it.
        person: ``"all"`` (every person gets a prediction) or ``"subject"`` (only the subject is read:
            faster when many faces are in view). The top-level answer is the subject's either way.
        detect_every: full face detection on every ``detect_every``-th sampled frame (a whole number
            >= 1), a search near the faces already found in the frames between; 1: every frame
            (``benchmarks/keyframe_detection.md`` gives the recall cost of 5).

    Raises:
        OptionError: a value outside its choices or range (``field`` says which); a number given as
            text, a bool for a number, NaN or infinity.
    """

    model: ModelName | None = None
    detector: DetectorName = "mtcnn"
    fps: float = 5.0
    max_duration: float | None = None
    person: PersonMode = "all"
    detect_every: int = 5

    #: The range of :attr:`fps` in Hz.
    MIN_FPS: ClassVar[float] = 0.01
    MAX_FPS: ClassVar[float] = 30.0

    def __post_init__(self) -> None:
        model = default_model() if self.model is None else self.model
        _choice("model", model, MODELS)
        _choice("detector", self.detector, DETECTORS)
        _choice("person", self.person, PERSON_MODES)
        fps = _number("fps", self.fps)
        if not self.MIN_FPS <= fps <= self.MAX_FPS:
            raise OptionError("fps", self.fps, f"fps must be in [{self.MIN_FPS:g}, {self.MAX_FPS:g}], got {fps:g}")
        max_duration = None if self.max_duration is None else _number("max_duration", self.max_duration)
        if max_duration is not None and max_duration <= 0:
            raise OptionError(
                "max_duration", self.max_duration, f"max_duration must be > 0 seconds, got {max_duration:g}"
            )
        every = self.detect_every
        if isinstance(every, bool) or not isinstance(every, int | float) or every != int(every) or every < 1:
            raise OptionError("detect_every", every, f"detect_every must be a whole number >= 1, got {every!r}")
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "fps", fps)
        object.__setattr__(self, "max_duration", max_duration)
        object.__setattr__(self, "detect_every", int(every))

    @classmethod
    def from_mapping(cls, fields: Mapping[str, object], *, base: PredictOptions | None = None) -> PredictOptions:
        """Options from text or JSON values by name, as an HTML form or a query string gives them.

        Numbers may be text (``"2.5"``); choices are matched without case or surrounding blanks; a
        missing, empty (``""``) or None value keeps the value of ``base`` (default: the defaults).

        Args:
            fields: option name -> value; the names are the attributes of this class.
            base: the options the fields change (a server's own defaults, say).

        Raises:
            OptionError: an unknown name, text that is not a number, or a bad value.
        """
        changes: dict[str, object] = {}
        for name, value in fields.items():
            _check_name(name, value)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if isinstance(value, str):
                value = value.strip()
                if name in _NUMBERS:
                    value = _parse_number(name, value)
                else:
                    value = value.lower()
            changes[name] = value
        return (base or cls()).replace(**changes)

    def replace(self, **changes) -> PredictOptions:
        """A copy with ``changes`` (checked like a new record).

        Raises:
            OptionError: an unknown name or a bad value.
        """
        for name, value in changes.items():
            _check_name(name, value)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready ``{name: value}`` of every option (``model`` resolved)."""
        return dataclasses.asdict(self)


_FIELDS = tuple(f.name for f in dataclasses.fields(PredictOptions))
_NUMBERS = ("fps", "max_duration", "detect_every")


def _check_name(name: str, value: object) -> None:
    if name not in _FIELDS:
        raise OptionError(name, value, f"unknown prediction option {name!r}; the options are {', '.join(_FIELDS)}")


_WHAT = {"model": "model", "detector": "face detector", "person": "person mode"}


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(name, value, f"unknown {_WHAT[name]} {value!r}; choose one of {', '.join(choices)}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OptionError(name, value, f"{name} must be a finite number, got {value!r}")
    return float(value)


def _parse_number(name: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise OptionError(name, text, f"{name} must be a number, got {text!r}") from None
    return int(value) if name == "detect_every" and value.is_integer() else value
