"""CAAN and its baselines FAA, CAA, FFAA (HEIV paper, section 4): shapes, masks, scores, losses, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from emocontext.errors import ConfigError
from emocontext.models import Output, count_parameters, create_model, list_models, model_info
from emocontext.models.caan import batch_hard_triplet_loss, caan_loss
from tests.utils import check_contract

K = 3
D_F, D_C = 6, 5
LENGTHS = [7, 5, 3, 1]
T = max(LENGTHS)
MODELS = ["caan", "ffaa", "faa", "caa"]
VARIANTS = [(m, {}) for m in MODELS] + [
    ("caan", {"score_layers": 1}),
    ("caan", {"score_layers": 2}),
    ("caan", {"drop_faceless": True}),
    ("ffaa", {"drop_faceless": True}),
]
SMALL = {
    "caan": dict(embed_dim=8, fusion_dim=12, feature_dim=8, score_hidden=8),
    "ffaa": dict(embed_dim=8, fusion_dim=12, feature_dim=8),
    "faa": dict(hidden=8),
    "caa": dict(hidden=8),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ids(v):
    return v[0] + "".join(f"-{k}={x}" for k, x in v[1].items())


def make_batch(lengths=LENGTHS, seed: int = 0) -> dict[str, torch.Tensor]:
    """Variable-length batch; clip 0 has face gaps, clip 2 no face at all."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    face_mask = mask & (torch.rand(B, T, generator=g) < 0.7)
    face_mask[0, :2] = True
    face_mask[0, 3] = False
    if B > 2:
        face_mask[2] = False
    return dict(
        face=torch.randn(B, T, D_F, generator=g),
        context=torch.randn(B, T, D_C, generator=g),
        mask=mask,
        face_mask=face_mask,
        label=torch.tensor([0, 1, 0, 2][:B]),
    )


def build(name: str, *, small: bool = True, **kw) -> nn.Module:
    torch.manual_seed(0)
    if small:
        kw = {**SMALL[name], **kw}
    return create_model(name, num_classes=K, face_dim=D_F, context_dim=D_C, **kw).eval()


def perturb(batch, where: torch.Tensor, keys=("face", "context"), seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for k in keys:
        out[k] = torch.where(where[..., None], 100 * torch.randn(batch[k].shape, generator=g), batch[k])
    return out


@pytest.mark.parametrize("name,kw", VARIANTS[len(MODELS) :], ids=map(_ids, VARIANTS[len(MODELS) :]))
def test_variants_meet_the_model_contract(name, kw):
    """The options beyond the defaults (which test_contract.py covers), at small widths."""
    check_contract(name, **SMALL[name], **kw)


def test_registered():
    assert set(MODELS) <= set(list_models())
    assert model_info("caan").streams == ("face", "context")
    assert model_info("ffaa").streams == ("face", "context")
    assert model_info("faa").streams == ("face",)
    assert model_info("caa").streams == ("context",)
    assert {"score_layers", "drop_faceless"} <= set(model_info("caan").options)
    assert "eq. (1)-(4)" in str(model_info("caan"))


@pytest.mark.parametrize("name,kw", VARIANTS, ids=map(_ids, VARIANTS))
def test_shapes_and_weights(name, kw):
    model = build(name, small=False, **kw)  # paper widths (1024 / 2048) on small inputs
    batch = make_batch()
    with torch.no_grad():
        out = model(batch)
    B = len(LENGTHS)
    assert out.logits.shape == (B, K) and torch.isfinite(out.logits).all()
    assert set(model.streams) <= set(batch)
    w, used = out.temporal_attention, out.extras["frame_mask"]
    assert w.shape == (B, T) and (w >= 0).all() and (w[~used] == 0).all()
    torch.testing.assert_close(w.sum(1), used.any(1).float())  # normalised weights sum to 1
    video = out.extras["video_feature"]
    assert video.dim() == 2 and video.shape[0] == B
    if name == "faa":
        assert (used == batch["face_mask"]).all()
    elif kw.get("drop_faceless"):
        has_face = batch["face_mask"].any(1, keepdim=True)
        assert (used == torch.where(has_face, batch["face_mask"], batch["mask"])).all()
    else:
        assert (used == batch["mask"]).all()
    if name in ("caan", "ffaa"):
        assert out.frame_logits.shape == (B, T, K) and (out.frame_logits[~used] == 0).all()
    if name == "caan":
        # R_V = sum_i w_i g_i and the linear classifier is shared: logits = sum_i w_i frame_logits_i
        torch.testing.assert_close(out.logits, (w[..., None] * out.frame_logits).sum(1))
    if name == "ffaa":  # the mean of g_i, then ReLU and the classifier (two FC layers with a ReLU between)
        torch.testing.assert_close(out.logits, model.head(torch.relu(video)))
    if name == "caan":
        scores = out.extras["scores"]
        assert scores.shape == (B, T) and (scores[~used] == 0).all()
        for b in range(B):
            torch.testing.assert_close(w[b][used[b]], torch.softmax(scores[b][used[b]], 0))
    if name in ("ffaa", "faa", "caa"):
        uniform = used.float() / used.sum(1, keepdim=True).clamp(min=1)
        torch.testing.assert_close(w, uniform)


def test_faceless_frames_keep_their_context_by_default():
    """CAAN uses every valid frame: the context of a face-less frame matters, unless drop_faceless."""
    batch = make_batch()
    faceless = batch["mask"] & ~batch["face_mask"]
    for drop in (False, True):
        model = build("caan", drop_faceless=drop)
        with torch.no_grad():
            ref = model(batch).logits
            got = model(perturb(batch, faceless, keys=("context",))).logits
        changed = ~torch.isclose(got, ref).all(1)
        assert changed[0] == (not drop)  # clip 0 has face frames and face-less frames
        assert changed[2]  # clip 2 has no face: all its frames are used either way


def test_stream_baselines_read_one_stream():
    batch = make_batch()
    for name, other in (("faa", "context"), ("caa", "face")):
        model = build(name)
        with torch.no_grad():
            ref = model(batch).logits
            got = model(perturb(batch, batch["mask"], keys=(other,))).logits
        torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_faa_is_mean_then_two_fc():
    model = build("faa")
    batch = make_batch()
    with torch.no_grad():
        out = model(batch)
        fm = batch["face_mask"][0]
        ref = model.head(model.fc(batch["face"][0][fm].mean(0)))
    torch.testing.assert_close(out.logits[0], ref)


def test_faa_caa_and_ffaa_read_two_fc_layers_the_same_way():
    """5.2: "two successive fully connected layers": Linear, ReLU, Dropout, Linear for all three baselines;
    FFAA's first layer is eq. (2)'s W_1 on the averaged fusion features (issue 25: before, FFAA had no ReLU)."""
    model = build("ffaa")
    batch = make_batch()
    with torch.no_grad():
        out = model(batch)
        m = batch["mask"][0]
        r = model.fusion(
            torch.cat(
                [
                    model.face_encoder(batch["face"][0]) * batch["face_mask"][0, :, None],
                    model.context_encoder(batch["context"][0]),
                ],
                -1,
            )
        )
        ref = model.head(F.relu(model.feature(r[m].mean(0))))  # W_1 on the mean r_i, ReLU, classifier
    torch.testing.assert_close(out.logits[0], ref)
    faa = build("faa")
    assert [type(x) for x in faa.fc] == [nn.Linear, nn.ReLU, nn.Dropout]
    # the same classifier state dict keys as before: checkpoints still load
    assert {"feature.weight", "head.weight"} <= set(model.state_dict())


def test_score_layers_and_errors():
    with pytest.raises(ConfigError, match="score_layers"):
        build("caan", score_layers=4)
    with pytest.raises(ConfigError, match="face_dim"):
        create_model("caan", num_classes=K, context_dim=D_C)
    with pytest.raises(ConfigError, match="context"):
        build("caan")({"face": torch.zeros(1, 2, D_F)})


def test_parameter_counts():
    """Section 4.2 / 5.1-5.2 widths, with this project's 1280-d features and 8 classes."""

    def lin(i, o):
        return i * o + o

    D, Kc = 1280, 8
    trunk = 2 * lin(D, 1024) + lin(2048, 2048) + lin(2048, 1024) + lin(1024, Kc)
    n = {name: count_parameters(create_model(name, num_classes=Kc, face_dim=D, context_dim=D)) for name in MODELS}
    assert n["ffaa"] == trunk == 8_926_216
    assert n["caan"] == trunk + lin(1024, 512) + lin(512, 512) + lin(512, 1) == 9_714_185  # 3CF
    one = count_parameters(create_model("caan", num_classes=Kc, face_dim=D, context_dim=D, score_layers=1))
    assert one == trunk + lin(1024, 1)
    assert n["faa"] == n["caa"] == lin(D, 1024) + lin(1024, Kc) == 1_319_944


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def _brute_triplet(x, y, margin):
    losses = []
    for a in range(len(y)):
        pos = [p for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [q for q in range(len(y)) if y[q] != y[a]]
        if pos and neg:
            dp = max((x[a] - x[p]).norm() for p in pos)
            dn = min((x[a] - x[q]).norm() for q in neg)
            losses.append(F.relu(dp - dn + margin))
    return torch.stack(losses).mean()


def test_batch_hard_triplet_loss():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, generator=g)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3])  # classes 2 and 3 have no positive: not anchors
    got = batch_hard_triplet_loss(x, y, margin=0.5, normalize=False)
    torch.testing.assert_close(got, _brute_triplet(x, y, 0.5))
    torch.testing.assert_close(batch_hard_triplet_loss(x, y, margin=0.2), _brute_triplet(F.normalize(x, dim=1), y, 0.2))
    # separated classes give 0; no anchor with a positive and a negative gives 0 with a graph
    sep = torch.tensor([[10.0, 0], [10.1, 0], [-10, 0], [-10.1, 0]], requires_grad=True)
    assert batch_hard_triplet_loss(sep, torch.tensor([0, 0, 1, 1]), margin=1.0, normalize=False) == 0
    none = batch_hard_triplet_loss(sep, torch.tensor([0, 1, 2, 3]))
    none.backward()
    assert none == 0 and torch.isfinite(sep.grad).all()
    dup = torch.zeros(3, 2, requires_grad=True)  # identical embeddings: finite gradients
    batch_hard_triplet_loss(dup, torch.tensor([0, 0, 1]), normalize=False).backward()
    assert torch.isfinite(dup.grad).all()


def test_caan_loss_terms():
    model = build("caan").train()
    batch = make_batch()
    y = batch["label"]
    out = model(batch)
    terms = caan_loss(out, y, triplet_weight=0.3, margin=0.4, frame_weight=0.7, triplet="batch_hard", return_terms=True)
    used = out.extras["frame_mask"]
    frame = torch.stack(
        [F.cross_entropy(out.frame_logits[b][used[b]], y[b].repeat(int(used[b].sum()))) for b in range(len(y))]
    ).mean()
    torch.testing.assert_close(terms["frame"], frame)
    torch.testing.assert_close(terms["clip"], F.cross_entropy(out.logits, y))
    torch.testing.assert_close(terms["triplet"], batch_hard_triplet_loss(out.extras["video_feature"], y, margin=0.4))
    total = 0.7 * terms["frame"] + terms["clip"] + 0.3 * terms["triplet"]
    torch.testing.assert_close(terms["loss"], total)
    torch.testing.assert_close(
        caan_loss(out, y, triplet_weight=0.3, margin=0.4, frame_weight=0.7, triplet="batch_hard"), total
    )
    total.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.score[0].weight.grad.abs().sum() > 0  # the score branch is trained


def test_caan_loss_on_baselines_and_bare_outputs():
    batch = make_batch()
    y = batch["label"]
    for name in ("faa", "caa", "ffaa"):
        terms = caan_loss(build(name).train()(batch), y, return_terms=True)
        assert torch.isfinite(terms["loss"])
        assert (terms["frame"] == 0) == (name != "ffaa")
    bare = Output(logits=torch.randn(4, K, requires_grad=True))
    torch.testing.assert_close(caan_loss(bare, y), F.cross_entropy(bare.logits, y))


# ---------------------------------------------------------------------------------------------
# Mechanism: the emotion scores find the informative frames among distractors
# ---------------------------------------------------------------------------------------------

KS, TS, DS = 4, 8, 8


def distractor_clips(n: int, seed: int) -> dict[str, torch.Tensor]:
    """8-frame clips, 2 informative frames at random positions (one-hot label x 3 added to both
    streams), 6 pure-noise distractor frames."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, KS, (n,), generator=g)
    pos = torch.rand(n, TS, generator=g).argsort(1)[:, :2]
    info = torch.zeros(n, TS, dtype=torch.bool)
    info[torch.arange(n)[:, None], pos] = True
    signal = info[..., None] * 3.0 * F.one_hot(label, DS).float()[:, None]
    return dict(
        face=torch.randn(n, TS, DS, generator=g) + signal,
        context=torch.randn(n, TS, DS, generator=g) + signal,
        label=label,
        info=info,
    )


def test_caan_scores_rise_on_informative_frames():
    train, test = distractor_clips(512, 1), distractor_clips(512, 2)
    torch.manual_seed(0)
    model = create_model(
        "caan",
        num_classes=KS,
        face_dim=DS,
        context_dim=DS,
        embed_dim=16,
        fusion_dim=32,
        feature_dim=16,
        score_hidden=16,
        dropout=0.0,
    )
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, 512, (64,), generator=g)
        batch = {k: v[idx] for k, v in train.items()}
        loss = caan_loss(model(batch), batch["label"], triplet_weight=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(test)
    accuracy = (out.logits.argmax(1) == test["label"]).float().mean().item()
    assert accuracy > 0.8  # chance: 1/4
    w = out.temporal_attention
    informative, distractor = w[test["info"]].mean().item(), w[~test["info"]].mean().item()
    assert informative > 1 / TS > distractor  # uniform weight is 1/8
    assert informative > 10 * distractor


def _brute_facenet(x, y, margin):
    """FaceNet's loss by loops: squared distances, every (a, p), semi-hard negative (else the farthest)."""
    import torch

    d = torch.cdist(x, x).pow(2)
    losses = []
    for a in range(len(y)):
        for p in range(len(y)):
            if a == p or y[a] != y[p]:
                continue
            negs = [float(d[a, n]) for n in range(len(y)) if y[n] != y[a]]
            if not negs:
                continue
            farther = [v for v in negs if v > float(d[a, p])]
            dn = min(farther) if farther else max(negs)
            losses.append(max(0.0, float(d[a, p]) - dn + margin))
    return sum(losses) / len(losses)


def test_facenet_triplet_loss_is_squared_and_semi_hard():
    import torch
    from torch.nn import functional as F

    from emocontext.models.base import Output
    from emocontext.models.caan import batch_hard_triplet_loss, caan_loss, facenet_triplet_loss

    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 5, generator=g)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    got = facenet_triplet_loss(x, y, margin=0.2)
    assert float(got) == pytest.approx(_brute_facenet(F.normalize(x, dim=1), y, 0.2), abs=1e-5)
    assert float(got) != pytest.approx(float(batch_hard_triplet_loss(x, y, margin=0.2)), abs=1e-3)
    # the default of CAAN's loss is FaceNet's form
    out = Output(logits=torch.zeros(10, 4), extras={"video_feature": x})
    terms = caan_loss(out, y, frame_weight=0.0, clip_weight=0.0, return_terms=True)
    torch.testing.assert_close(terms["triplet"], got)
    assert float(facenet_triplet_loss(x, torch.arange(10))) == 0.0  # no positive pair


def test_caan_single_stream_attention_networks():
    import torch

    from emocontext.models import create_model, list_models

    assert {"caan_face", "caan_context", "av_face_mean"} <= set(list_models())
    face = create_model("caan_face", num_classes=3, face_dim=4)
    context = create_model("caan_context", num_classes=3, context_dim=4)
    assert len(face.score) == 1 and len([m for m in context.score if isinstance(m, torch.nn.Linear)]) == 3
    assert face.streams == ("face",) and context.streams == ("context",)


def test_ffaa_is_supervised_at_the_video_level_only():
    """CAAN paper 5.2: FFAA is "supervised by softmax-loss" after the average: no frame-level term by default."""
    import torch
    from torch.nn import functional as F

    from emocontext.models import create_model

    model = create_model("ffaa", num_classes=3, face_dim=4, context_dim=4).eval()
    batch = {"face": torch.randn(2, 5, 4), "context": torch.randn(2, 5, 4)}
    y = torch.tensor([0, 2])
    out = model(batch)
    torch.testing.assert_close(model.loss(out, y), F.cross_entropy(out.logits, y))
    assert model.loss(out, y, frame_weight=1.0) > model.loss(out, y)  # CAAN's frame term, on request


def test_caa_can_average_the_face_frames_only():
    import torch

    from emocontext.models import create_model

    torch.manual_seed(0)
    ctx = torch.randn(1, 4, 4)
    face_mask = torch.tensor([[True, False, True, False]])
    batch = {"context": ctx, "face_mask": face_mask}
    every = create_model("caa", num_classes=3, context_dim=4).eval()
    faces = create_model("caa", num_classes=3, context_dim=4, drop_faceless=True).eval()
    faces.load_state_dict(every.state_dict())
    assert faces(batch).temporal_attention.tolist() == [[0.5, 0.0, 0.5, 0.0]]
    assert every(batch).temporal_attention.tolist() == [[0.25] * 4]
    moved = {"context": ctx.clone(), "face_mask": face_mask}
    moved["context"][0, 1] += 10  # a face-less frame
    torch.testing.assert_close(faces(moved).logits, faces(batch).logits)
