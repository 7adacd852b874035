"""The JSON the API answers with, described for the OpenAPI document (``GET /openapi.json``).

The prediction is exactly ``emocontext predict --json`` (:meth:`~emocontext.inference.Prediction.to_dict`),
with ``path`` the uploaded file's name; its schema is version :data:`SCHEMA_VERSION`, also sent
in the ``X-Emocontext-Schema`` response header. The models allow extra fields, so a newer
library (``persons``, more emotions) passes through unchanged: label names are never listed
here, they are the keys of ``probabilities``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing

from pydantic import BaseModel, ConfigDict, Field

from ..options import PredictOptions

__all__ = [
    "SCHEMA_VERSION",
    "SCHEMA_HEADER",
    "FramePredictionV1",
    "PredictionV1",
    "JobV1",
    "ErrorV1",
    "JobListV1",
    "ModelsV1",
    "upload_body",
    "option_schemas",
]

#: Version of the prediction JSON; changes when a field changes meaning or disappears.
SCHEMA_VERSION = "1"
SCHEMA_HEADER = "X-Emocontext-Schema"


class FramePredictionV1(BaseModel):
    """One sampled frame."""

    model_config = ConfigDict(extra="allow", title="FramePrediction (schema 1)")
    timestamp: float = Field(description="presentation time in seconds")
    face_present: bool
    box: list[float] | None = Field(None, description="face box xyxy in pixels of the frame")
    probabilities: dict[str, float] | None = Field(None, description="emotion -> probability; None: nothing read")
    source: str | None = Field(None, description='"face", "face+context" or "context" (no face)')
    attention: list[list[float]] | None = Field(None, description="context spatial attention (h x w, sums to 1)")
    fusion_weights: dict[str, float] | None = Field(None, description="lambda_face and lambda_context (sum 1)")


class PredictionV1(BaseModel):
    """The emotion of the person in one file: ``emocontext predict --json``."""

    model_config = ConfigDict(extra="allow", title="Prediction (schema 1)")
    path: str = Field(description="the uploaded file's name")
    label: str | None = Field(description="clip emotion; None when no face was found (face model)")
    confidence: float | None
    probabilities: dict[str, float] = Field(description="emotion -> clip probability; the keys are the label set")
    num_frames: int
    frames_with_face: int
    frames: list[FramePredictionV1] = []
    model: str
    fps: float
    truncated: bool
    frame_size: list[int] | None = Field(None, description="[height, width] in pixels")
    context_box: list[float] | None = None
    no_face: bool


class ErrorV1(BaseModel):
    """Every error answer."""

    model_config = ConfigDict(title="Error")
    error: str = Field(description="kind: empty, not_media, too_large, bad_form, bad_filename, queue_full, ...")
    detail: str = Field(description="one line for a person")


class ProgressV1(BaseModel):
    frames_done: int
    frames_total: int | None = Field(description="expected sampled frames (None when the container gives no length)")


class KeyFrameV1(BaseModel):
    frame: int = Field(description="index into result.frames")
    timestamp: float
    url: str = Field(description="PNG: the frame with every person's box numbered, or the context attention overlaid")
    persons: list[int] = Field(description="ids of the persons boxed on the picture")


class PersonV1(BaseModel):
    id: int = Field(description="person_id in result.persons")
    subject: bool
    thumbnail: str = Field(description="PNG: the person's face at their most confident frame")


class JobV1(BaseModel):
    """A job of ``POST /v1/jobs``."""

    model_config = ConfigDict(title="Job")
    id: str
    status: str = Field(description="queued, running, done, failed or cancelled")
    stage: str = Field(description="queued, load, detect, annotate, report, done or failed")
    filename: str
    options: dict
    progress: ProgressV1
    created: float = Field(description="Unix time")
    started: float | None
    finished: float | None
    error: ErrorV1 | None
    result: PredictionV1 | None
    key_frames: list[KeyFrameV1]
    persons: list[PersonV1]
    colors: dict[str, str] = Field(description="emotion -> CSS colour, the same in the page, report, plots, video")
    resumed: int = Field(description="times the job was run again from its upload after a server restart")
    links: dict[str, str]


class JobListV1(BaseModel):
    """``GET /v1/jobs``: the caller's jobs, newest first."""

    model_config = ConfigDict(title="JobList")
    jobs: list[JobV1]
    total: int
    limit: int
    offset: int


class MissingV1(BaseModel):
    kind: str = Field(description="model or detector")
    name: str
    reason: str
    fix: str = Field(description="what the server's operator can do")


class ModelsV1(BaseModel):
    """What ``POST /v1/predict`` accepts."""

    model_config = ConfigDict(extra="allow", title="Models")
    models: list[str] = Field(description="models this server can run")
    default_model: str
    detectors: list[str] = Field(description="face detectors this server can run")
    default_detector: str
    unavailable: list[MissingV1] = Field(description="models and detectors the library has but this server lacks")
    person: list[str] = Field(description="accepted values of the person field (empty: the field is not supported)")
    loaded: list[dict] = Field(description="models loaded in the workers, with their label sets")
    max_upload_mb: float
    max_fps: float
    colors: dict[str, str] = Field(description="emotion -> CSS colour of the loaded models' labels")
    auth: bool = Field(description="requests need Authorization: Bearer KEY")


#: Checks of :class:`PredictOptions` that no class attribute holds (``fps`` reads ``MIN_FPS`` and ``MAX_FPS``).
_BOUNDS = {"max_duration": {"exclusiveMinimum": 0}, "detect_every": {"minimum": 1}}
_TYPES = {float: "number", int: "integer", str: "string"}


def _attribute_docs(cls) -> dict[str, str]:
    """``name -> first sentence`` of the ``Attributes:`` section of a class docstring, Sphinx roles as Markdown code."""
    docs: dict[str, str] = {}
    name, inside = None, False
    for line in inspect.cleandoc(cls.__doc__ or "").splitlines():
        if line == "Attributes:":
            inside = True
        elif inside and line and not line.startswith(" "):
            break  # the next section
        elif inside and (m := re.match(r" {4}(\w+): (.*)", line)):
            name, docs[m[1]] = m[1], m[2]
        elif inside and name and line.strip():
            docs[name] += " " + line.strip()
    first = {k: re.split(r"(?<=\.)\s+(?=[A-Z])", v)[0] for k, v in docs.items()}
    return {k: re.sub(r":\w+:`~?([^`]+)`", r"`\1`", v) for k, v in first.items()}


def _value_schema(hint) -> dict:
    """JSON schema of a ``Literal`` (its choices), a number or text; ``X | None`` as ``X`` (a field may be left out)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = (a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is typing.Literal:
        return {"type": "string", "enum": list(typing.get_args(hint))}
    return {"type": _TYPES[hint]}


def option_schemas(defaults: PredictOptions) -> dict[str, dict]:
    """JSON schema of every field of :class:`PredictOptions`, in its order, read off the class: the type, the
    ``Literal`` choices, the range (``MIN_<NAME>`` / ``MAX_<NAME>`` class attributes), the docstring's words, and
    the value of ``defaults`` (the server's) as the default."""
    hints = typing.get_type_hints(PredictOptions)
    docs = _attribute_docs(PredictOptions)
    out = {}
    for f in dataclasses.fields(PredictOptions):
        schema = _value_schema(hints[f.name])
        for key, attr in (("minimum", "MIN_"), ("maximum", "MAX_")):
            if hasattr(PredictOptions, attr + f.name.upper()):
                schema[key] = getattr(PredictOptions, attr + f.name.upper())
        schema.update(_BOUNDS.get(f.name, {}))
        if getattr(defaults, f.name) is not None:
            schema["default"] = getattr(defaults, f.name)
        schema["description"] = docs.get(f.name, "")
        out[f.name] = schema
    return out


def upload_body(*, jobs: bool, defaults: PredictOptions) -> dict:
    """OpenAPI ``requestBody`` of the upload endpoints: ``file`` and the fields of :class:`PredictOptions`
    (:func:`option_schemas`, ``defaults`` the server's). The body is parsed by streaming, not by FastAPI."""
    file = {"type": "string", "format": "binary", "description": "the video or image (checked by decoding)"}
    props = {"file": file, **option_schemas(defaults)}
    what = "the job also writes the HTML report, the annotated video and key frames" if jobs else "JSON answer"
    what += (
        "; an option left out or empty takes the server's default (`default`); GET /v1/models lists the models "
        "and face detectors this server can run"
    )
    return {
        "requestBody": {
            "required": True,
            "description": what,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": props}}
            },
        }
    }
