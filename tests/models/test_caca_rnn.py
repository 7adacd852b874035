"""CACA-RNN and its comparison models (Sun et al., MEC 2017): shapes, masks, attention, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from emocontext.models import create_model, list_models
from emocontext.models.base import masked_mean, masked_softmax, run_lstm
from tests.utils import check_contract

K = 3
D_F, D_C, C_MAP = 6, 5, 4
LENGTHS = [7, 5, 3, 1]
T = max(LENGTHS)
MODELS = ["face_rnn", "context_rnn", "parallel_rnn", "concat_rnn", "caca_rnn_a", "caca_rnn_b", "cnn_2d3d"]
# CACA-RNN's other resolution of eq. (4)-(5) and deeper right LSTMs (the defaults: test_contract.py)
VARIANTS = [
    ("caca_rnn_a", {"attention_query": "current"}),
    ("caca_rnn_b", {"attention_query": "current"}),
    ("caca_rnn_a", {"right_layers": 2}),
    ("caca_rnn_b", {"attention_query": "current", "left_layers": 1, "right_layers": 2}),
    ("caca_rnn_a", {"attention_input": False}),
    ("caca_rnn_b", {"attention_query": "current", "attention_input": False}),
    ("caca_rnn_a", {"context_fc": False}),
    ("caca_rnn_b", {"context_fc": False}),
    ("caca_rnn_b", {"attention_query": "current", "context_fc": False}),
]
CACA = [("caca_rnn_a", "previous"), ("caca_rnn_a", "current"), ("caca_rnn_b", "previous"), ("caca_rnn_b", "current")]


def make_batch(lengths=LENGTHS, seed: int = 0, T: int | None = None) -> dict[str, torch.Tensor]:
    """Variable-length batch; clip 1 has face gaps, clip 2 no face at all; face-less frames hold garbage."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), T or max(lengths)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    face_mask = mask & (torch.rand(B, T, generator=g) < 0.7)
    face_mask[0, :2] = True
    if B > 2:
        face_mask[2] = False
    return dict(
        face=torch.randn(B, T, D_F, generator=g),
        context=torch.randn(B, T, D_C, generator=g),
        face_map=torch.randn(B, T, C_MAP, 2, 2, generator=g),
        mask=mask,
        face_mask=face_mask,
        label=torch.randint(0, K, (B,), generator=g),
    )


def build(name: str, *, small: bool = True, **kw) -> nn.Module:
    """Model in eval mode; ``small`` shrinks the widths (masking does not depend on them) to keep tests fast."""
    torch.manual_seed(0)
    face_dim = C_MAP if name == "cnn_2d3d" else D_F
    if small:
        kw = {**({"channels": 16} if name == "cnn_2d3d" else {"embed_dim": 16, "hidden_size": 24}), **kw}
    return create_model(name, num_classes=K, face_dim=face_dim, context_dim=D_C, **kw).eval()


def perturb(batch, where: torch.Tensor, keys=("face", "context", "face_map"), seed: int = 1):
    """Copy of ``batch`` with large random values at the ``(B, T)`` positions ``where``."""
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for k in keys:
        x = batch[k]
        noise = 100 * torch.randn(x.shape, generator=g)
        w = where.view(*where.shape, *([1] * (x.dim() - 2)))
        out[k] = torch.where(w, noise, x)
    return out


def _ids(v):
    return v[0] + "".join(f"-{k}={x}" for k, x in v[1].items())


def test_all_paper_models_registered():
    assert set(MODELS) <= set(list_models())


@pytest.mark.parametrize("name,kw", VARIANTS, ids=map(_ids, VARIANTS))
def test_variants_meet_the_model_contract(name, kw):
    check_contract(name, **kw)


@pytest.mark.parametrize("name,query", CACA)
def test_caca_attention(name, query):
    model = build(name, attention_query=query)
    batch = make_batch()
    out = model(batch)
    a = out.temporal_attention
    assert a.shape == (len(LENGTHS), T, T)
    left_face = name == "caca_rnn_b"
    key_valid = batch["face_mask"] if left_face else batch["mask"]
    query_valid = batch["mask"] if left_face else batch["face_mask"]
    assert out.extras["left_stream"] == ("face" if left_face else "context")
    # zero weight on invalid keys, zero rows for skipped queries
    assert (a * ~key_valid[:, None, :] == 0).all()
    assert (a[~query_valid] == 0).all()
    # rows of valid queries sum to 1 when there is any valid key
    rows = a.sum(-1)
    expect = (query_valid & key_valid.any(1, keepdim=True)).float()
    torch.testing.assert_close(rows, expect)
    assert (a >= 0).all()


@pytest.mark.parametrize("attention_input", [True, False])
@pytest.mark.parametrize("query", ["previous", "current"])
def test_caca_matches_a_step_by_step_reference(query, attention_input):
    """Eq. (2)-(5) written out for one unpadded clip, every frame with a face; eq. (4)'s h(x_i, c_i, h_i)
    reads the input x_i unless ``attention_input=False`` (Luong's tanh(W_c [c_i; h_i]))."""
    model = build("caca_rnn_a", attention_query=query, attention_input=attention_input)
    batch = make_batch([6])
    batch["face_mask"] = batch["mask"].clone()
    with torch.no_grad():
        out = model(batch)
        keys, (h_n, c_n) = model.left_lstm(model.left_encoder(batch["context"]))
        keys = keys[0]
        x = model.right_encoder(batch["face"])[0]
        h, c = h_n[-1], c_n[-1]  # (1, H): the left top layer initialises the right LSTM
        rows, outputs = [], []
        for i in range(6):
            if query == "previous":
                a = torch.softmax(keys @ h[0], 0)  # score with h_{i-1}
                ctx = a @ keys
                h, c = model.right_cells[0](torch.cat([x[i], ctx])[None], (h, c))
            else:
                _, (h, c) = model.right_lstm(x[i][None, None], (h[None], c[None]))
                h, c = h[0], c[0]  # (1, H)
                a = torch.softmax(keys @ h[0], 0)  # score with h_i
                ctx = a @ keys
            rows.append(a)
            parts = [ctx, h[0], x[i]] if attention_input else [ctx, h[0]]
            outputs.append(torch.tanh(model.combine(torch.cat(parts))))
        logits = model.head(outputs[-1])
    torch.testing.assert_close(out.temporal_attention[0], torch.stack(rows))
    torch.testing.assert_close(out.logits[0], logits)


def test_caca_attention_input_sizes_and_effect():
    """Eq. (4): W_c reads [c; h; x] (H + H + E columns), or [c; h] without the input."""
    with_x, without = build("caca_rnn_a"), build("caca_rnn_a", attention_input=False)
    assert with_x.combine.in_features == 24 + 24 + 16 and without.combine.in_features == 24 + 24
    # the x_i columns of W_c set to 0 change the output of a clip with faces, not of the clip without any
    batch = make_batch()
    with torch.no_grad():
        model = build("caca_rnn_a", attention_query="current")
        ref = model(batch).logits
        model.combine.weight[:, 48:] = 0
        cut = model(batch).logits
    assert not torch.allclose(ref[0], cut[0])
    torch.testing.assert_close(ref[2], cut[2])


def test_caca_context_fc_false_feeds_the_context_features_to_the_lstm():
    """V-C's submitted model: no FC after the context CNN, the pooled features go to the context RNN."""
    a = build("caca_rnn_a", context_fc=False)
    assert isinstance(a.left_encoder, nn.Identity) and a.left_lstm.input_size == D_C
    assert isinstance(a.right_encoder, nn.Sequential) and a.combine.in_features == 24 + 24 + 16
    b = build("caca_rnn_b", context_fc=False)  # the context is the right stream: its cells read [x_i; c_i]
    assert b.right_cells[0].input_size == D_C + 24 and b.combine.in_features == 24 + 24 + D_C
    assert b.left_lstm.input_size == 16
    assert build("caca_rnn_a").left_lstm.input_size == 16


def test_caca_right_state_initialised_from_left():
    """Fig. 2: the context RNN 'initiates the first state of face RNN'; a faceless clip is predicted from it."""
    model = build("caca_rnn_a")
    batch = make_batch()
    with torch.no_grad():
        ref = model(batch).logits
        # clip 2 has no face: its logits still depend on the context (through the initial state)
        changed = model(perturb(batch, batch["mask"], keys=("context",))).logits
    assert not torch.allclose(changed[2], ref[2])


def test_caca_depths_and_queries():
    batch = make_batch()
    for left_layers, right_layers in [(1, 1), (2, 2), (2, 3)]:
        for query in ("previous", "current"):
            m = build("caca_rnn_a", left_layers=left_layers, right_layers=right_layers, attention_query=query)
            assert m(batch).logits.shape == (len(LENGTHS), K)


def test_cnn_2d3d_any_size():
    model = build("cnn_2d3d")
    for h, w, t in [(1, 1, 1), (4, 3, 9), (7, 7, 2)]:
        batch = make_batch([t, max(1, t - 1)], T=t)
        batch["face_map"] = torch.randn(2, t, C_MAP, h, w)
        assert model(batch).logits.shape == (2, K)


def test_run_lstm_skips_invalid_steps_anywhere():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, 2, batch_first=True)
    x = torch.randn(2, 6, 3)
    valid = torch.tensor([[1, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    out, (h, c) = run_lstm(lstm, x, valid)
    ref, (rh, rc) = lstm(x[0:1, valid[0]])
    torch.testing.assert_close(h[:, 0], rh[:, 0])
    torch.testing.assert_close(out[0, [0, 2, 3, 5]], ref[0])
    torch.testing.assert_close(out[0, 1], ref[0, 0])  # forward-filled
    torch.testing.assert_close(out[0, -1], h[-1, 0])
    assert (out[1] == 0).all() and (h[:, 1] == 0).all()  # empty row: initial (zero) state


def test_masked_helpers():
    s = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    v = torch.tensor([[True, False, True], [False, False, False]])
    a = masked_softmax(s, v)
    torch.testing.assert_close(a[0], torch.softmax(torch.tensor([1.0, -torch.inf, 3.0]), 0))
    assert (a[1] == 0).all()
    m = masked_mean(torch.ones(2, 3, 2) * torch.tensor([1.0, 2.0, 3.0])[None, :, None], v)
    torch.testing.assert_close(m, torch.tensor([[2.0, 2.0], [0.0, 0.0]]))


# ---------------------------------------------------------------------------------------------
# Tiny synthetic learning tests (seeded; about 10 s in all on one core)
# ---------------------------------------------------------------------------------------------

DIM, STEPS, FRAMES = 8, 60, 6


def synthetic(n: int, task: str, seed: int) -> dict[str, torch.Tensor]:
    """Two-class toy clips of 4-6 frames; face-less frames (20 %) hold large garbage face features.

    ``order``: the context stream is noise plus one bump frame, at one of the first two frames
    (class 0) or the last two (class 1) -- the same multiset of frames, only the order differs;
    the face stream is noise. ``xor``: each stream carries one bit on every frame (feature 0 is
    +-1 plus noise) and the label is face-bit XOR context-bit.
    """
    g = torch.Generator().manual_seed(seed)
    T = FRAMES
    lengths = torch.randint(4, T + 1, (n,), generator=g)
    mask = torch.arange(T)[None] < lengths[:, None]
    face_mask = mask & (torch.rand(n, T, generator=g) < 0.8)
    face = 0.5 * torch.randn(n, T, DIM, generator=g)
    context = 0.5 * torch.randn(n, T, DIM, generator=g)
    if task == "order":
        label = torch.randint(0, 2, (n,), generator=g)
        offset = torch.randint(0, 2, (n,), generator=g)
        pos = torch.where(label == 0, offset, lengths - 1 - offset)
        context[torch.arange(n), pos, 0] += 3.0
    else:
        f = torch.randint(0, 2, (n,), generator=g)
        c = torch.randint(0, 2, (n,), generator=g)
        face[..., 0] += (2 * f - 1)[:, None].float()
        context[..., 0] += (2 * c - 1)[:, None].float()
        label = f ^ c
    face = torch.where(face_mask[..., None], face, 10 * torch.randn(n, T, DIM, generator=g))
    return dict(face=face, context=context, mask=mask, face_mask=face_mask, label=label)


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_and_test(name: str, task: str, seed: int = 0) -> float:
    """Test accuracy after ``STEPS`` Adam steps (lr 2e-2, batches of 64 from 256 clips) on 256 new clips."""
    train, test = synthetic(256, task, 1), synthetic(256, task, 2)
    torch.manual_seed(seed)
    model = create_model(name, num_classes=2, face_dim=DIM, context_dim=DIM, embed_dim=16, hidden_size=16, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        idx = torch.randint(0, 256, (64,), generator=g)
        batch = {k: v[idx] for k, v in train.items()}
        loss = F.cross_entropy(model(batch).logits, batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return (model(test).logits.argmax(1) == test["label"]).float().mean().item()


@pytest.mark.parametrize("name", ["context_rnn", "caca_rnn_a"])
def test_learns_temporal_order_of_context(name, one_thread):
    assert train_and_test(name, "order") > 0.85


def test_face_only_cannot_learn_context_order(one_thread):
    assert abs(train_and_test("face_rnn", "order") - 0.5) < 0.12


@pytest.mark.parametrize("name", ["caca_rnn_a", "parallel_rnn"])
def test_two_stream_models_learn_xor(name, one_thread):
    assert train_and_test(name, "xor") > 0.85


@pytest.mark.parametrize("name", ["face_rnn", "context_rnn"])
def test_single_stream_models_cannot_learn_xor(name, one_thread):
    assert abs(train_and_test(name, "xor") - 0.5) < 0.12


def test_caca_rnn_layer_counts_of_both_sections():
    """V-D (default): the first (left) LSTM has two layers; V-C: the face RNN (right in A) has two."""
    from emocontext.models import create_model

    v_d = create_model("caca_rnn_a", num_classes=8, face_dim=128, context_dim=128)
    v_c = create_model("caca_rnn_a", num_classes=8, face_dim=128, context_dim=128, left_layers=1, right_layers=2)
    assert v_d.left_lstm.num_layers == 2 and len(v_d.right_cells) == 1
    assert v_c.left_lstm.num_layers == 1 and len(v_c.right_cells) == 2
