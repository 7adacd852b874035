"""The model contract (``tests/utils.py``) on every registered model, found at collection time.

A model registered with :func:`~emocontext.models.register_model` gets every check without being
named here: shapes and finite values, gradients, exact invariance to the values at padded frames
and at face-less frames, invariance to the padding length, default masks, missing streams, the
use of every stream, context feature maps.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from emocontext.models import EmotionModel, Output, list_models
from emocontext.models import registry as reg
from emocontext.models.base import batch_masks, masked_mean, require, zero_invalid
from tests.utils import (
    CHECKS,
    check_faceless_frames,
    check_padding_length,
    check_padding_values,
    contract_cases,
    one_thread,
)


def pytest_generate_tests(metafunc):
    """Parametrise over the models registered when the tests are collected (not when this file is imported)."""
    if {"model_name", "check"} <= set(metafunc.fixturenames):
        cases = contract_cases(list_models())
        metafunc.parametrize("model_name,check", cases, ids=[f"{name}-{c.name}" for name, c in cases])


def test_model_contract(model_name, check):
    with one_thread():
        check.run(model_name)


# ---------------------------------------------------------------------------------------------
# The suite itself: a new model gets it without being named, and a leaky model fails it
# ---------------------------------------------------------------------------------------------

TOY = "_toy_contract_model"


class ToyModel(EmotionModel):
    """Toy: face and context encodings averaged over the frames, then a linear classifier.

    ``leak="padding"`` averages the context over every frame, padding included; ``leak="faces"``
    averages the face over every valid frame, face-less ones included: both break the contract.
    """

    streams = ("face", "context")

    def __init__(self, *, num_classes: int, face_dim: int, context_dim: int, hidden: int = 4, leak: str = ""):
        super().__init__(num_classes)
        self.face, self.context = nn.Linear(face_dim, hidden), nn.Linear(context_dim, hidden)
        self.head = nn.Linear(2 * hidden, num_classes)
        self.leak = leak

    def forward(self, batch: dict[str, Tensor]) -> Output:
        face, context = require(batch, "face", "ToyModel"), require(batch, "context", "ToyModel")
        mask, face_mask = batch_masks(batch, context)
        if self.leak == "faces":
            face_mask = mask
        f = masked_mean(self.face(zero_invalid(face, face_mask)), face_mask)
        if self.leak == "padding":
            c = self.context(context).mean(1)
        else:
            c = masked_mean(self.context(zero_invalid(context, mask)), mask)
        return Output(logits=self.head(torch.cat([f, c], dim=-1)))


@pytest.fixture
def toy():
    reg.register_model(ToyModel, name=TOY, paper="tests/models/test_contract.py")
    try:
        yield TOY
    finally:
        reg._REGISTRY.pop(TOY, None)


class _Collected:
    """Pytest plugin recording the test ids a collection finds."""

    def __init__(self):
        self.ids: list[str] = []

    def pytest_collection_finish(self, session):
        self.ids = [item.nodeid for item in session.items]


def test_a_newly_registered_model_gets_the_whole_suite(toy):
    collected = _Collected()
    code = pytest.main(
        [__file__, "--collect-only", "-q", "-p", "no:cacheprovider", "-k", "test_model_contract"], plugins=[collected]
    )
    assert code == 0
    toy_checks = {i.split("[", 1)[1].rstrip("]").removeprefix(f"{toy}-") for i in collected.ids if f"[{toy}-" in i}
    assert toy_checks == {c.name for c in CHECKS}  # face and context streams: every check applies
    assert any("[caca_rnn_a-" in i for i in collected.ids)
    for c in CHECKS:  # and the toy, written to the contract, passes it
        c.run(toy)


@pytest.mark.parametrize(
    "leak,check",
    [("padding", check_padding_values), ("padding", check_padding_length), ("faces", check_faceless_frames)],
)
def test_the_suite_catches_a_model_that_reads_invalid_frames(toy, leak, check):
    check(toy)  # the same model without the leak passes
    with pytest.raises(AssertionError):
        check(toy, leak=leak)
