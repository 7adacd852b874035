"""The worker's predictors: one per distinct options value, kept, never changed in place; a bounded cache."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.options import PredictOptions  # noqa: E402
from emocontext.serve import worker  # noqa: E402


class FakePredictor:
    made = 0

    def __init__(self, options: PredictOptions, detector=None):
        FakePredictor.made += 1
        self.options = options
        self.detector = detector or object()  # a new detector, as create_detector would build


@pytest.fixture
def cache(monkeypatch):
    import emocontext.inference

    monkeypatch.setattr(emocontext.inference, "Predictor", FakePredictor)
    base = PredictOptions(model="face")
    monkeypatch.setattr(worker, "_STATE", {"events": None, "base": base, "predictors": {}})
    FakePredictor.made = 0
    return base


def test_one_predictor_per_options_value(cache):
    base = cache
    first = worker._predictor(base)
    assert worker._predictor(PredictOptions(model="face")) is first  # an equal record: the same predictor
    other = worker._predictor(base.replace(fps=2.0))
    assert other is not first and other.options.fps == 2.0 and first.options == base  # nothing changed in place
    assert FakePredictor.made == 2
    assert other.detector is first.detector  # the same detector is built once
    assert worker._predictor(base.replace(detector="haar")).detector is not first.detector


def test_the_least_recently_used_goes_never_the_default(cache):
    base = cache
    worker._predictor(base)
    for fps in range(1, worker.MAX_PREDICTORS + 3):
        worker._predictor(base.replace(fps=float(fps)))
    kept = list(worker._STATE["predictors"])
    assert len(kept) == worker.MAX_PREDICTORS and base in kept
    assert kept[-1].fps == worker.MAX_PREDICTORS + 2
