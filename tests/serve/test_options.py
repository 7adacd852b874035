"""Form fields -> prediction options: defaults, one clear 422 per bad value."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

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


def test_person_values():
    assert parse(person="all")["person"] == "all" and parse(person="subject")["person"] == "subject"
    with pytest.raises(ApiError) as e:
        parse(person="everyone")
    assert e.value.status == 422 and "all, subject" in e.value.detail
