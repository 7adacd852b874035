"""Form fields -> prediction options: defaults, one clear 422 per bad value, person only where supported."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.serve import options as options_module  # noqa: E402
from emocontext.serve.errors import ApiError  # noqa: E402
from emocontext.serve.options import parse_options  # noqa: E402


def parse(**fields):
    return parse_options(fields, default_model="face", default_detector="mtcnn")


def test_defaults_and_values():
    assert parse() == {"model": "face", "detector": "mtcnn", "fps": 5.0, "max_duration": None, "person": None}
    got = parse(model="context", detector="HAAR", fps="2.5", max_duration="10", person="")
    assert got == {"model": "context", "detector": "haar", "fps": 2.5, "max_duration": 10.0, "person": None}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"model": "big"}, "unknown model"),
        ({"detector": "eyes"}, "unknown face detector"),
        ({"fps": "fast"}, "must be a number"),
        ({"fps": "0"}, "must be > 0"),
        ({"fps": "nan"}, "must be > 0"),
        ({"fps": "31"}, "at most 30"),
        ({"max_duration": "-1"}, "must be > 0"),
    ],
)
def test_bad_values(fields, words):
    with pytest.raises(ApiError) as e:
        parse(**fields)
    assert e.value.status == 422 and e.value.kind == "bad_option" and words in e.value.detail


def test_person_follows_what_the_library_supports(monkeypatch):
    monkeypatch.setattr(options_module, "person_values", lambda: [])
    with pytest.raises(ApiError) as e:
        parse(person="all")
    assert e.value.status == 422 and "person" in e.value.detail
    monkeypatch.setattr(options_module, "person_values", lambda: ["all", "subject"])
    assert parse(person="all")["person"] == "all"
    with pytest.raises(ApiError):
        parse(person="everyone")


def test_person_support_is_read_from_the_predictor_signature():
    import inspect

    from emocontext.predict import Predictor
    from emocontext.serve.worker import person_support

    init = "person" in inspect.signature(Predictor.__init__).parameters
    call = "person" in inspect.signature(Predictor.predict).parameters
    assert person_support() == ("init" if init else "predict" if call else None)
