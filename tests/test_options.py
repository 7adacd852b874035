"""PredictOptions: one record of the prediction options, checked once, with one error type."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emocontext import OptionError, PredictOptions
from emocontext.errors import ConfigError
from emocontext.options import DETECTORS, MODELS, PERSON_MODES


def test_defaults(monkeypatch):
    monkeypatch.delenv("EMOCONTEXT_CONTEXT_WEIGHTS", raising=False)
    o = PredictOptions()
    assert o.to_dict() == {
        "model": "face",
        "detector": "mtcnn",
        "fps": 5.0,
        "max_duration": None,
        "person": "all",
        "detect_every": 5,
    }
    monkeypatch.setenv("EMOCONTEXT_CONTEXT_WEIGHTS", "/my/context_model.pt")
    assert PredictOptions().model == "context"  # your own context model: the default model
    assert PredictOptions(model="face").model == "face"


def test_the_choices_are_the_registries():
    from emocontext.video.faces import list_detectors

    assert list(DETECTORS) == list_detectors()
    assert set(MODELS) == {"face", "context"} and PERSON_MODES == ("all", "subject")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("model", "scene", "unknown model 'scene'; choose one of face, context"),
        ("detector", "eyes", "unknown face detector 'eyes'; choose one of mtcnn, yunet, haar, dlib, none"),
        ("detector", "MTCNN", "unknown face detector"),  # the record is exact; from_mapping folds case
        ("person", "everyone", "unknown person mode 'everyone'; choose one of all, subject"),
        ("fps", 0, "fps must be in [0.01, 30], got 0"),
        ("fps", 31, "fps must be in [0.01, 30], got 31"),
        ("fps", math.nan, "fps must be a finite number"),
        ("fps", "5", "fps must be a finite number, got '5'"),
        ("fps", True, "fps must be a finite number"),
        ("max_duration", 0, "max_duration must be > 0 seconds"),
        ("max_duration", -1.5, "max_duration must be > 0 seconds"),
        ("max_duration", math.inf, "max_duration must be a finite number"),
        ("detect_every", 0, "detect_every must be a whole number >= 1"),
        ("detect_every", 2.5, "detect_every must be a whole number >= 1"),
        ("detect_every", True, "detect_every must be a whole number >= 1"),
    ],
)
def test_each_bad_value_is_one_option_error(field, value, words):
    with pytest.raises(OptionError) as e:
        PredictOptions(**{field: value})
    assert words in str(e.value)
    assert e.value.field == field and (e.value.value == value or value != value)
    assert isinstance(e.value, ConfigError)  # the CLI and the service catch one type


def test_numbers_are_normalised():
    o = PredictOptions(fps=2, detect_every=3.0, max_duration=10)
    assert (o.fps, o.detect_every, o.max_duration) == (2.0, 3, 10.0)
    assert isinstance(o.fps, float) and isinstance(o.detect_every, int)


def test_frozen_hashable_and_replace_checks_again():
    o = PredictOptions(model="face")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.fps = 1.0
    assert o == PredictOptions(model="face") and hash(o) == hash(PredictOptions(model="face"))
    assert {o: 1}[PredictOptions(model="face", fps=5)] == 1  # usable as a cache key
    assert o.replace(fps=2.0).fps == 2.0 and o.fps == 5.0
    with pytest.raises(OptionError, match="fps must be in"):
        o.replace(fps=100)
    with pytest.raises(OptionError, match="unknown prediction option 'speed'"):
        o.replace(speed=2)


def test_from_mapping_reads_form_fields():
    base = PredictOptions(model="face", detector="haar")
    got = PredictOptions.from_mapping(
        {"model": " Context ", "fps": "2.5", "max_duration": "10", "detect_every": "1", "person": "", "detector": None},
        base=base,
    )
    assert got == PredictOptions(model="context", detector="haar", fps=2.5, max_duration=10.0, detect_every=1)
    assert PredictOptions.from_mapping({}, base=base) is not base and PredictOptions.from_mapping({}, base=base) == base
    assert PredictOptions.from_mapping({"fps": 3}) == PredictOptions(fps=3.0)  # JSON numbers as they are


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"fps": "fast"}, "fps", "fps must be a number, got 'fast'"),
        ({"detect_every": "2.5"}, "detect_every", "whole number"),
        ({"detector": "eyes"}, "detector", "unknown face detector 'eyes'"),
        ({"speed": "1"}, "speed", "unknown prediction option 'speed'; the options are model, detector, fps"),
    ],
)
def test_from_mapping_errors(fields, field, words):
    with pytest.raises(OptionError) as e:
        PredictOptions.from_mapping(fields)
    assert words in str(e.value) and e.value.field == field


options = st.builds(
    PredictOptions,
    model=st.sampled_from(MODELS),
    detector=st.sampled_from(DETECTORS),
    fps=st.floats(PredictOptions.MIN_FPS, PredictOptions.MAX_FPS),
    max_duration=st.none() | st.floats(1e-3, 1e6),
    person=st.sampled_from(PERSON_MODES),
    detect_every=st.integers(1, 1000),
)


@given(options)
def test_form_text_round_trip(o):
    """What a page sends (every value as text, ``repr`` of floats) gives the same options back."""
    text = {k: "" if v is None else repr(v) if isinstance(v, float) else str(v) for k, v in o.to_dict().items()}
    assert PredictOptions.from_mapping(text) == o
