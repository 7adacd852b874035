"""Form fields -> PredictOptions over the server's defaults: every option settable, one clear 422 per bad value."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.options import PredictOptions  # noqa: E402
from emocontext.serve.capabilities import Capabilities, Missing  # noqa: E402
from emocontext.serve.errors import ApiError  # noqa: E402
from emocontext.serve.options import FIELDS, job_options, read_options  # noqa: E402

BASE = PredictOptions(model="face", detector="mtcnn")


def test_every_option_is_a_form_field():
    assert FIELDS == tuple(f.name for f in dataclasses.fields(PredictOptions))
    assert "detect_every" in FIELDS


def test_defaults_are_the_servers_and_every_option_is_settable():
    assert read_options({}, base=BASE) == BASE
    assert read_options({}, base=BASE.replace(detector="haar", detect_every=2)).detector == "haar"
    fields = {"model": "context", "detector": "HAAR", "fps": "2.5", "max_duration": "10", "person": "subject"}
    got = read_options({**fields, "detect_every": "3"}, base=BASE)
    assert got == PredictOptions(
        model="context", detector="haar", fps=2.5, max_duration=10.0, person="subject", detect_every=3
    )
    assert read_options({"person": "", "detector": "none"}, base=BASE) == BASE.replace(detector="none")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"model": "big"}, "unknown model"),
        ({"detector": "eyes"}, "unknown face detector"),
        ({"fps": "fast"}, "must be a number"),
        ({"fps": "0"}, "fps must be in [0.01, 30]"),
        ({"fps": "nan"}, "must be a finite number"),
        ({"fps": "31"}, "fps must be in [0.01, 30]"),
        ({"max_duration": "-1"}, "must be > 0"),
        ({"person": "everyone"}, "all, subject"),
        ({"detect_every": "0"}, "whole number >= 1"),
        ({"detect_every": "1.5"}, "whole number >= 1"),
    ],
)
def test_bad_values(fields, words):
    with pytest.raises(ApiError) as e:
        read_options(fields, base=BASE)
    assert e.value.status == 422 and e.value.kind == "bad_option" and words in e.value.detail


def test_what_this_server_cannot_run_is_unavailable():
    caps = Capabilities(
        ("face",), ("mtcnn", "none"), (Missing("detector", "yunet", "the yunet model file is not on the server", "x"),)
    )
    assert read_options({"detector": "none"}, base=BASE, capabilities=caps).detector == "none"
    with pytest.raises(ApiError) as e:
        read_options({"detector": "yunet"}, base=BASE, capabilities=caps)
    assert (e.value.status, e.value.kind) == (422, "unavailable")
    assert e.value.detail == (
        "the face detector 'yunet' is not available on this server (the yunet model file is not on the server); "
        "choose one of mtcnn, none"
    )
    with pytest.raises(ApiError) as e:
        read_options({"model": "context"}, base=BASE, capabilities=caps)
    assert e.value.kind == "unavailable" and e.value.detail.startswith("the model 'context' is not available")


def test_a_job_record_gives_back_its_options():
    options = PredictOptions(model="face", detector="haar", fps=2.0, person="subject", detect_every=2)
    assert job_options(options.to_dict()) == options
    # a record of an older server: person None, no detect_every
    old = {"model": "face", "detector": "mtcnn", "fps": 5.0, "max_duration": None, "person": None}
    assert job_options(old) == PredictOptions(model="face")


def test_openapi_upload_body_is_predict_options(tmp_path):
    """The documented upload body is read off PredictOptions: its fields, choices, ranges; the server's defaults."""
    from emocontext.options import DETECTORS, MODELS, PERSON_MODES
    from emocontext.serve.app import create_app
    from emocontext.serve.settings import ServeSettings

    defaults = PredictOptions(model="face", detector="haar", detect_every=2)
    doc = create_app(ServeSettings(data_dir=tmp_path, options=defaults)).openapi()
    for path in ("/v1/predict", "/v1/jobs"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        props = body["properties"]
        assert body["required"] == ["file"] and props["file"]["format"] == "binary"
        assert list(props) == ["file", *(f.name for f in dataclasses.fields(PredictOptions))]
        assert props["model"]["enum"] == list(MODELS) == ["face", "context"]
        assert props["detector"]["enum"] == list(DETECTORS) and "none" in props["detector"]["enum"]
        assert props["person"]["enum"] == list(PERSON_MODES) == ["all", "subject"]
        assert (props["fps"]["type"], props["fps"]["minimum"], props["fps"]["maximum"]) == (
            "number",
            PredictOptions.MIN_FPS,
            PredictOptions.MAX_FPS,
        )
        assert props["detect_every"]["type"] == "integer" and props["detect_every"]["minimum"] == 1
        assert props["max_duration"]["type"] == "number" and "default" not in props["max_duration"]
        assert {k: props[k].get("default") for k in FIELDS} == defaults.to_dict() | {"max_duration": None}
        assert all(props[k]["description"] for k in FIELDS)
