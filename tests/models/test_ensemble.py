"""Linear weighted ensemble (Sun et al., MEC 2017, VI, Table II) and its weight fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from emocontext.errors import ConfigError
from emocontext.models import EmotionModel, LinearEnsemble, Output, count_parameters, create_model
from emocontext.models.ensemble import fit_ensemble_weights, simplex_grid

K = 4


def batch(B=3, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(T)[None] < torch.tensor([5, 3, 1][:B])[:, None]
    return dict(
        face=torch.randn(B, T, 6, generator=g),
        context=torch.randn(B, T, 5, generator=g),
        face_map=torch.randn(B, T, 6, 2, 2, generator=g),
        mask=mask,
        face_mask=mask & (torch.rand(B, T, generator=g) < 0.7),
    )


class Fixed(EmotionModel):
    """Returns fixed logits (and optionally an attention map), for exact checks."""

    streams = ("context",)

    def __init__(self, logits, attention=None):
        super().__init__(len(logits))
        self.register_buffer("z", torch.tensor(logits, dtype=torch.float32))
        self.attention = attention

    def forward(self, batch):
        B = batch["context"].shape[0]
        return Output(logits=self.z.expand(B, -1), temporal_attention=self.attention)


def noisy_probs(labels, K, quality, rng):
    """Probabilities that put ``quality`` extra mass on the true class."""
    p = rng.dirichlet(np.ones(K), size=len(labels))
    p[np.arange(len(labels)), labels] += quality
    return p / p.sum(1, keepdims=True)


def test_the_map_objective_is_the_projects_one_average_precision(monkeypatch):
    """The ensemble's "map" objective is metrics.macro_map (sklearn's AP, ties included), not a copy of it."""
    from emocontext.models import ensemble

    rng = np.random.default_rng(0)
    y = rng.integers(0, K, 200)
    p = np.round(noisy_probs(y, K, 0.5, rng), 2)  # ties
    ref = np.mean([average_precision_score(y == k, p[:, k]) for k in range(K)])
    assert math.isclose(ensemble._score(p, y, "map"), ref, rel_tol=1e-12)
    calls = []
    monkeypatch.setattr(ensemble, "macro_map", lambda *a: calls.append(a) or 0.0)
    ensemble._score(p, y, "map")
    assert calls and calls[0][0] is y  # (y_true, probs): metrics.py's order


def test_simplex_grid():
    g = simplex_grid(3, 0.05)
    assert g.shape == (231, 3)
    np.testing.assert_allclose(g.sum(1), 1.0)
    assert (g >= 0).all() and len({tuple(r) for r in g}) == 231
    assert simplex_grid(2, 0.5).tolist() == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    with pytest.raises(ConfigError):
        simplex_grid(2, 0.3)


@pytest.mark.parametrize("objective", ["nll", "map", "accuracy"])
def test_fit_prefers_the_informative_member(objective):
    rng = np.random.default_rng(1)
    y = rng.integers(0, K, 300)
    good = noisy_probs(y, K, 1.0, rng)
    noise = rng.dirichlet(np.ones(K), size=300)
    w = fit_ensemble_weights([noise, good], y, objective=objective)
    assert w.shape == (2,) and math.isclose(w.sum(), 1.0) and (w >= 0).all()
    assert w[1] >= 0.6


def test_fit_mixes_complementary_members():
    """Each member knows half the classes: the best mixture uses both."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, K, 400)
    a = noisy_probs(np.where(y < 2, y, rng.integers(0, K, 400)), K, 1.0, rng)
    b = noisy_probs(np.where(y >= 2, y, rng.integers(0, K, 400)), K, 1.0, rng)
    w = fit_ensemble_weights([a, b], y)
    assert 0.2 <= w[0] <= 0.8
    ll = lambda w: np.mean(np.log((w[0] * a + w[1] * b)[np.arange(400), y]))  # noqa: E731
    assert ll(w) >= max(ll([1, 0]), ll([0, 1]))


def test_greedy_selection_when_grid_is_too_large():
    rng = np.random.default_rng(3)
    y = rng.integers(0, K, 200)
    probs = [rng.dirichlet(np.ones(K), size=200) for _ in range(5)] + [noisy_probs(y, K, 1.0, rng)]
    w = fit_ensemble_weights(probs, y, max_grid=10)
    assert math.isclose(w.sum(), 1.0) and w.argmax() == 5
    assert np.allclose(w * 20, np.round(w * 20))  # multiples of the step
    assert fit_ensemble_weights(probs[:1], y).tolist() == [1.0]
    with pytest.raises(ConfigError):
        fit_ensemble_weights(probs, y, objective="f1")
    with pytest.raises(ConfigError):
        fit_ensemble_weights(probs, y[:10])


def test_linear_ensemble_averages_probabilities():
    a, b = Fixed([2.0, 0.0, 0.0, 0.0]), Fixed([0.0, 0.0, 3.0, 0.0], attention=torch.ones(1, 5))
    ens = LinearEnsemble({"a": a, "b": b}, weights=[3, 1])
    torch.testing.assert_close(ens.weights, torch.tensor([0.75, 0.25]))
    out = ens(batch())
    expect = 0.75 * torch.softmax(a.z, 0) + 0.25 * torch.softmax(b.z, 0)
    torch.testing.assert_close(torch.softmax(out.logits, -1), expect.expand(3, -1))
    assert out.extras["members"] == ["a", "b"] and out.extras["member_probs"].shape == (2, 3, K)
    # the explanation comes from the highest-weighted member that has one
    assert out.extras["explanations_from"] == {"temporal_attention": "b"}
    assert out.temporal_attention is b.attention
    ens.fit([torch.softmax(a.z, 0).expand(10, -1), torch.softmax(b.z, 0).expand(10, -1)], torch.full((10,), 2))
    assert ens.weights[1] == 1.0
    state = ens.state_dict()
    fresh = LinearEnsemble({"a": Fixed([0.0] * K), "b": Fixed([0.0] * K)})
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.weights, ens.weights)


def test_linear_ensemble_rejects_bad_input():
    with pytest.raises(ConfigError):
        LinearEnsemble([])
    with pytest.raises(ConfigError, match="num_classes"):
        LinearEnsemble([Fixed([0.0] * 3), Fixed([0.0] * 4)])
    ens = LinearEnsemble([Fixed([0.0] * K), Fixed([1.0] * K)])
    assert ens.member_names == ["fixed", "fixed_2"]
    for bad in ([1.0], [-1.0, 2.0], [0.0, 0.0]):
        with pytest.raises(ConfigError):
            ens.set_weights(bad)


def test_registered_ensemble_default_is_caca_plus_2d3d():
    torch.manual_seed(0)
    ens = create_model("ensemble", num_classes=K, face_dim=6, context_dim=5).eval()
    assert ens.member_names == ["caca_rnn_a", "cnn_2d3d"]
    assert ens.streams == ("face", "context", "face_map")
    caca, cnn = ens.members["caca_rnn_a"], ens.members["cnn_2d3d"]
    assert count_parameters(ens) == count_parameters(caca) + count_parameters(cnn)
    b = batch()
    with torch.no_grad():
        out = ens(b)
        expect = 0.5 * torch.softmax(caca(b).logits, -1) + 0.5 * torch.softmax(cnn(b).logits, -1)
    torch.testing.assert_close(torch.softmax(out.logits, -1), expect)
    assert out.temporal_attention.shape == (3, 5, 5)
    # padded frames do not matter here either
    noisy = dict(b, context=torch.where(b["mask"][..., None], b["context"], 1e3))
    with torch.no_grad():
        torch.testing.assert_close(ens(noisy).logits, out.logits)


def test_registered_ensemble_with_built_members_and_options():
    trained = create_model("context_rnn", num_classes=K, context_dim=5)
    ens = create_model(
        "ensemble",
        num_classes=K,
        face_dim=6,
        context_dim=5,
        members=[trained, "caca_rnn_b"],
        weights=[1, 3],
        member_kwargs={"caca_rnn_b": {"hidden_size": 16}},
    )
    assert ens.members["context_rnn"] is trained
    assert ens.members["caca_rnn_b"].left_lstm.hidden_size == 16
    torch.testing.assert_close(ens.weights, torch.tensor([0.25, 0.75]))
    assert ens(batch()).logits.shape == (3, K)
    with pytest.raises(ConfigError):
        create_model("ensemble", num_classes=K, face_dim=6, context_dim=5, members=[3])
