"""CAER-Net, CAER-Net-S and the feature-map variant (Lee et al., ICCV 2019): shapes, masks, attention, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from emocontext.errors import ConfigError
from emocontext.models import count_parameters, create_model, list_models, model_info
from emocontext.models.caer_net import (
    TABLE3_ABLATIONS,
    AdaptiveFusion,
    CAEREncoder,
    SpatialAttention,
    masked_batch_norm,
)
from tests.utils import check_contract

K = 3
D_F, C_MAP = 6, 5  # feature variant: face vector size, context map channels
TINY = dict(channels=(4, 6, 8, 8, 8), attention_channels=4, fusion_hidden=4, classifier_hidden=8)
LENGTHS = [7, 5, 3, 1]
T = max(LENGTHS)
PIXEL_MODELS = ["caer_net", "caer_net_s"]
MODELS = [*PIXEL_MODELS, "caer_net_features"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_batch(lengths=LENGTHS, seed: int = 0, size: int = 32, face_size: int = 16) -> dict[str, torch.Tensor]:
    """Variable-length batch for every model of the file; clip 0 has face gaps, clip 2 no face at all."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    face_mask = mask & (torch.rand(B, T, generator=g) < 0.7)
    face_mask[0, :2] = True
    face_mask[0, 3] = False
    if B > 2:
        face_mask[2] = False
    return dict(
        face_pixels=torch.randn(B, T, 3, face_size, face_size, generator=g),
        context_pixels=torch.randn(B, T, 3, size, size, generator=g),
        face=torch.randn(B, T, D_F, generator=g),
        context=torch.randn(B, T, C_MAP, 4, 3, generator=g),
        mask=mask,
        face_mask=face_mask,
        label=torch.randint(0, K, (B,), generator=g),
    )


def build(name: str, **kw) -> nn.Module:
    """Tiny model in eval mode (masking does not depend on the widths)."""
    torch.manual_seed(0)
    if name == "caer_net_features":
        kw = {k: v for k, v in {**TINY, **kw}.items() if k != "channels"}
    else:
        kw = {**TINY, **kw}
    return create_model(name, num_classes=K, face_dim=D_F, context_dim=C_MAP, **kw).eval()


def perturb(batch, where: torch.Tensor, keys=("face_pixels", "context_pixels", "face", "context"), seed: int = 1):
    """Copy of ``batch`` with large random values at the ``(B, T)`` positions ``where``."""
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for k in keys:
        x = batch[k]
        w = where.view(*where.shape, *([1] * (x.dim() - 2)))
        out[k] = torch.where(w, 100 * torch.randn(x.shape, generator=g), x)
    return out


def test_registered_with_streams():
    assert set(MODELS) <= set(list_models())
    assert model_info("caer_net").streams == ("face_pixels", "context_pixels")
    assert model_info("caer_net_s").streams == ("face_pixels", "context_pixels")
    assert model_info("caer_net_features").streams == ("face", "context")
    for name in MODELS:
        opts = model_info(name).options
        assert {"use_face", "use_context", "context_attention", "fusion_attention"} <= set(opts)
        assert "Lee et al., ICCV 2019" in str(model_info(name))


def test_the_shared_options_are_written_once_and_listed_for_every_model():
    """The head's options live in one base class; the registry still lists them for each model."""
    import inspect

    from emocontext.models.caer_net import CAERNet, CAERNetFeatures, CAERNetS, _CAERModel

    shared = set(inspect.signature(_CAERModel.__init__).parameters) - {"self", "num_classes"}
    assert {"use_face", "fusion_dropout", "attention_channels", "classifier_hidden"} <= shared
    for cls in (CAERNet, CAERNetS, CAERNetFeatures):
        assert not shared & set(inspect.signature(cls.__init__).parameters)  # not restated
    for name in MODELS:
        assert shared <= set(model_info(name).options)
    assert "face_dropout" in model_info("caer_net_s").options and "face_dropout" not in model_info("caer_net").options
    assert {"channels", "context_channels"} <= set(model_info("caer_net").options)
    with pytest.raises(ConfigError, match="no option"):
        create_model("caer_net", num_classes=K, fusion_dropot=0.1)
    model = build("caer_net", fusion_dropout=0.25, attention_channels=3)
    assert model.head.fusion.face_score[1].p == 0.25 and model.head.attention.conv1.out_channels == 3


def test_caer_net_face_and_context_volumes_stay_aligned():
    """Eq. (1)-(2) encode V_F and V_C of the same frames: step t of both volumes is frame t; a face-less
    frame keeps its slot in the face volume, zeroed and masked (issue 25; before, the face frames were
    moved together, so the two volumes no longer matched frame by frame)."""
    model = build("caer_net")
    batch = make_batch()
    fm, mask = batch["face_mask"], batch["mask"]
    assert not fm[0, 3] and fm[0, 4]  # clip 0 has a gap at frame 3
    volumes = model.volumes(batch)
    face, face_valid = volumes["face_pixels"]
    context, context_valid = volumes["context_pixels"]
    assert face.shape[2] == context.shape[2] == T
    torch.testing.assert_close(face_valid, fm)
    torch.testing.assert_close(context_valid, mask)
    for b in range(len(LENGTHS)):
        for t in range(T):
            want = batch["face_pixels"][b, t] if fm[b, t] else torch.zeros_like(batch["face_pixels"][b, t])
            torch.testing.assert_close(face[b, :, t], want)
            torch.testing.assert_close(context[b, :, t], batch["context_pixels"][b, t] * mask[b, t])
    # the face encoder reads exactly these: its input and mask, captured during a forward pass
    seen = {}
    model.face_encoder.register_forward_hook(lambda m, args, out: seen.update(x=args[0], valid=args[1]))
    with torch.no_grad():
        model(batch)
    torch.testing.assert_close(seen["x"], face)
    torch.testing.assert_close(seen["valid"], fm)
    # a face moved to the gap's slot is another clip for the encoder: the slot is where the frame is
    moved = dict(batch, face_mask=fm.clone())
    moved["face_mask"][0, 3], moved["face_mask"][0, 4] = True, False
    moved["face_pixels"] = batch["face_pixels"].clone()
    moved["face_pixels"][0, 3] = batch["face_pixels"][0, 4]
    with torch.no_grad():
        assert not torch.allclose(model(moved).logits[0], model(batch).logits[0])


# ---------------------------------------------------------------------------------------------
# Shapes and the explanation outputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_shapes_attention_and_lambdas(name):
    model = build(name)
    batch = make_batch()
    B, mask = len(LENGTHS), batch["mask"]
    with torch.no_grad():
        out = model(batch)
    assert out.logits.shape == (B, K) and torch.isfinite(out.logits).all()
    assert set(model.streams) <= set(batch)
    a = out.spatial_attention
    h, w = (2, 2) if name != "caer_net_features" else (4, 3)  # 32 px / 16, or the map's size
    assert a.shape == (B, T, h, w)
    assert (a >= 0).all()
    torch.testing.assert_close(a.sum((2, 3)), mask.float())  # sums to 1 per valid frame, 0 at padding
    lam = out.fusion_weights
    if name == "caer_net":
        assert lam.shape == (B, 1, 2)
        torch.testing.assert_close(lam.sum(-1), torch.ones(B, 1))
        assert lam[2, 0, 0] == 0 and lam[2, 0, 1] == 1  # clip without a face: context only
        assert out.frame_logits is None
        assert out.extras["temporal_stride"] == 8 and out.extras["spatial_attention_steps"].shape[1] == 1
    else:
        assert lam.shape == (B, T, 2)
        torch.testing.assert_close(lam.sum(-1), mask.float())
        faceless = mask & ~batch["face_mask"]
        assert (lam[faceless] == torch.tensor([0.0, 1.0])).all()  # lambda_face forced to 0
        assert (lam[batch["face_mask"]][:, 0] > 0).all()
        assert out.frame_logits.shape == (B, T, K)
        assert (out.frame_logits[~mask] == 0).all()
        torch.testing.assert_close(out.logits, (out.frame_logits.sum(1) / mask.sum(1, keepdim=True)))


def test_caer_net_paper_input_sizes():
    """16 frames, 96x96 faces, 112x112 context (section 5.1): 7x7 maps, 2 pooled time steps."""
    model = create_model("caer_net", num_classes=7, channels=(4, 4, 4, 4, 4), attention_channels=4).eval()
    batch = dict(face_pixels=torch.randn(1, 16, 3, 96, 96), context_pixels=torch.randn(1, 16, 3, 112, 112))
    with torch.no_grad():
        out = model(batch)
    assert out.logits.shape == (1, 7)
    assert out.extras["spatial_attention_steps"].shape == (1, 2, 7, 7)
    a = out.spatial_attention
    assert a.shape == (1, 16, 7, 7)
    torch.testing.assert_close(a[0, :8], out.extras["spatial_attention_steps"][0, :1].expand(8, 7, 7))
    torch.testing.assert_close(a[0, 8:], out.extras["spatial_attention_steps"][0, 1:].expand(8, 7, 7))


def test_caer_net_s_single_images():
    """(B, 3, H, W) inputs, no masks: one frame per clip; the same as T = 1."""
    model = build("caer_net_s")
    g = torch.Generator().manual_seed(0)
    face, ctx = torch.randn(2, 3, 16, 16, generator=g), torch.randn(2, 3, 48, 48, generator=g)
    with torch.no_grad():
        out = model(dict(face_pixels=face, context_pixels=ctx))
        again = model(dict(face_pixels=face[:, None], context_pixels=ctx[:, None]))
    assert out.logits.shape == (2, K) and out.spatial_attention.shape == (2, 1, 3, 3)
    assert out.fusion_weights.shape == (2, 1, 2)
    torch.testing.assert_close(out.logits, again.logits)


def test_caer_net_features_accepts_pooled_context():
    """A (B, T, C) context is a 1x1 map: attention 1, still face/context fusion."""
    model = build("caer_net_features")
    batch = make_batch()
    batch["context"] = batch["context"].mean((3, 4))
    with torch.no_grad():
        out = model(batch)
    assert out.logits.shape == (len(LENGTHS), K)
    assert out.spatial_attention.shape == (len(LENGTHS), T, 1, 1)
    torch.testing.assert_close(out.spatial_attention[..., 0, 0], batch["mask"].float())


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="context_pixels"):
        build("caer_net")({"face_pixels": torch.zeros(1, 2, 3, 16, 16)})
    with pytest.raises(ConfigError, match="context"):
        build("caer_net_features")({"face": torch.zeros(1, 2, D_F), "context": torch.zeros(1, 2, C_MAP + 1, 2, 2)})
    with pytest.raises(ConfigError, match="use_face"):
        build("caer_net_features", use_face=False, use_context=False)
    with pytest.raises(ConfigError, match="face_dim"):
        create_model("caer_net_features", num_classes=K, context_dim=C_MAP)


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_training_mode_ignores_padding(name):
    """With dropout off, even batch-norm statistics in training ignore padded frames (values and amount)."""
    model = build(name, dropout=0.0, fusion_dropout=0.0).train()
    twin = build(name, dropout=0.0, fusion_dropout=0.0).train()
    batch = make_batch()
    longer = {k: (torch.cat([v, torch.zeros_like(v[:, :3])], 1) if v.dim() > 1 else v) for k, v in batch.items()}
    longer = perturb(longer, ~longer["mask"])
    a, b = model(batch), twin(longer)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-5)
    for (n1, s1), (_, s2) in zip(model.state_dict().items(), twin.state_dict().items(), strict=True):
        torch.testing.assert_close(s1, s2, rtol=1e-4, atol=1e-6, msg=n1)  # running statistics too


def test_no_face_in_the_whole_batch():
    for name in MODELS:
        model = build(name).train()
        batch = make_batch()
        batch["face_mask"] = torch.zeros_like(batch["mask"])
        out = model(batch)
        assert torch.isfinite(out.logits).all()
        assert (out.fusion_weights[..., 0] == 0).all()


@pytest.mark.parametrize("name", ["caer_net_s", "caer_net_features"])
def test_face_dropout_trains_the_context_only_path(name):
    """In training some face frames go through the fused model as face-less (lambda_face = 0); never in eval."""
    torch.manual_seed(0)
    model = build(name, face_dropout=0.5)
    batch = make_batch()
    had_face = batch["face_mask"] & batch["mask"]
    dropped = ~model.train()(batch).fusion_weights[..., 0].bool() & had_face
    assert 0 < int(dropped.sum()) < int(had_face.sum())
    with torch.no_grad():
        kept = model.eval()(batch).fusion_weights[..., 0].bool()
    assert torch.equal(kept & batch["mask"], had_face)
    with pytest.raises(ConfigError, match="face_dropout"):
        build(name, face_dropout=1.0)


# ---------------------------------------------------------------------------------------------
# Ablations (Table 3)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", list(TABLE3_ABLATIONS))
@pytest.mark.parametrize("name", MODELS)
def test_table3_ablations(name, row):
    kw = TABLE3_ABLATIONS[row]
    model = build(name, **kw)
    batch = make_batch()
    with torch.no_grad():
        out = model(batch)
    assert out.logits.shape == (len(LENGTHS), K) and torch.isfinite(out.logits).all()
    pixel = name != "caer_net_features"
    expect = tuple(
        s for s, on in (("face", kw["use_face"]), ("context", kw["use_context"])) if on
    )  # streams read, by modality
    assert model.streams == tuple(f"{s}_pixels" if pixel else s for s in expect)
    assert (out.spatial_attention is None) == (not kw["context_attention"])
    if kw["use_face"] and kw["use_context"]:
        lam = out.fusion_weights
        if not kw["fusion_attention"]:  # plain concatenation: 0.5 / 0.5, or 0 / 1 without a face
            has_face = batch["face_mask"].any(1, keepdim=True) if name == "caer_net" else batch["face_mask"]
            expected = torch.where(has_face[..., None], torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0]))
            if name != "caer_net":
                expected = expected * batch["mask"][..., None]
            torch.testing.assert_close(lam, expected)
    else:
        assert out.fusion_weights is None
    # a stream that is switched off is never read
    with torch.no_grad():
        off = [k for k, on in (("face", kw["use_face"]), ("context", kw["use_context"])) if not on]
        keys = [f"{k}_pixels" if pixel else k for k in off]
        if keys:
            got = model(perturb(batch, batch["mask"], keys=keys)).logits
            torch.testing.assert_close(got, out.logits, rtol=0, atol=0)


# Table 3's rows through the whole model contract (the full models: test_contract.py), at tiny widths;
# every row on the feature model, the single-stream and unfused rows on the pixel models.
CONTRACT_ROWS = [("caer_net_features", row) for row in TABLE3_ABLATIONS if row != "F+C+cA+fA"] + [
    (name, row) for name in PIXEL_MODELS for row in ("F", "C+cA", "F+C")
]


@pytest.mark.parametrize("name,row", CONTRACT_ROWS)
def test_table3_ablations_meet_the_model_contract(name, row):
    tiny = {k: v for k, v in TINY.items() if name != "caer_net_features" or k != "channels"}
    check_contract(name, **tiny, **TABLE3_ABLATIONS[row])


def test_face_only_uses_face_frames():
    """Without the context stream, face-less frames carry no input: the clip mean runs over face frames."""
    model = build("caer_net_features", **TABLE3_ABLATIONS["F"])
    batch = make_batch()
    with torch.no_grad():
        out = model(batch)
    fm = batch["face_mask"]
    assert (out.frame_logits[~fm] == 0).all()
    torch.testing.assert_close(out.logits[0], out.frame_logits[0][fm[0]].mean(0))
    empty = model.head.empty_logits(out.logits)[0]  # clip 2 has no face
    torch.testing.assert_close(out.logits[2], empty)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def test_spatial_attention_module_2d():
    torch.manual_seed(0)
    att = SpatialAttention(5, 4).eval()
    x = torch.randn(3, 5, 4, 6)
    attended, a = att(x)
    assert attended.shape == (3, 5) and a.shape == (3, 4, 6)
    torch.testing.assert_close(a.sum((1, 2)), torch.ones(3))
    logits = att.conv2(F.relu(att.bn1(att.conv1(x))))[:, 0]
    ref = torch.softmax(logits.flatten(1), 1).view(3, 4, 6)  # eq. (3)
    torch.testing.assert_close(a, ref)
    torch.testing.assert_close(attended, (x * ref[:, None]).sum((2, 3)))  # eq. (4), summed over space
    off = SpatialAttention(5, enabled=False)
    assert count_parameters(off) == 0
    attended, a = off(x)
    torch.testing.assert_close(attended, x.mean((2, 3)))
    torch.testing.assert_close(a, torch.full((3, 4, 6), 1 / 24))


def test_spatial_attention_module_3d_softmax_per_step():
    torch.manual_seed(0)
    att = SpatialAttention(5, 4, dims=3).eval()
    x = torch.randn(2, 5, 4, 3, 3)
    valid = torch.tensor([[True, True, True, False], [True, False, False, False]])
    attended, a = att(x, valid)
    assert attended.shape == (2, 4, 5) and a.shape == (2, 4, 3, 3)
    torch.testing.assert_close(a.sum((2, 3)), valid.float())
    assert (attended[~valid] == 0).all()
    x2 = x.clone()
    x2[0, :, 3] = 1e3  # an invalid step does not influence valid ones
    x2[1, :, 1:] = -1e3
    torch.testing.assert_close(att(x2, valid)[0], attended)


def test_adaptive_fusion_module():
    torch.manual_seed(0)
    fusion = AdaptiveFusion(4, 3, hidden=5)
    face, ctx = torch.randn(6, 4), torch.randn(6, 3)
    valid = torch.tensor([True, True, False, True, False, True])
    face = torch.where(valid[:, None], face, torch.tensor(float("nan")))  # never read where invalid
    fused, lam = fusion(face, ctx, valid)
    assert fused.shape == (6, 7) and lam.shape == (6, 2) and torch.isfinite(fused).all()
    torch.testing.assert_close(lam.sum(1), torch.ones(6))
    assert (lam[~valid] == torch.tensor([0.0, 1.0])).all()
    assert (fused[~valid, :4] == 0).all()
    torch.testing.assert_close(fused[valid, :4], face[valid] * lam[valid, :1])
    torch.testing.assert_close(fused[:, 4:], ctx * lam[:, 1:])
    ref = torch.softmax(torch.cat([fusion.face_score(face[valid]), fusion.context_score(ctx[valid])], 1), 1)
    torch.testing.assert_close(lam[valid], ref)  # eq. (5): lambda_F + lambda_C = 1 by a softmax
    plain = AdaptiveFusion(4, 3, attention=False)
    assert count_parameters(plain) == 0
    _, lam = plain(torch.randn(6, 4), ctx, valid)
    torch.testing.assert_close(lam, torch.where(valid[:, None], torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])))


def test_encoder_output_sizes():
    enc3 = CAEREncoder(dims=3, channels=(2, 2, 2, 2, 2)).eval()
    y, v = enc3(torch.randn(1, 3, 16, 112, 112), torch.ones(1, 16, dtype=torch.bool))
    assert y.shape == (1, 2, 2, 7, 7) and v.shape == (1, 2) and enc3.temporal_stride == 8
    y, v = enc3(torch.randn(1, 3, 5, 96, 96), torch.ones(1, 5, dtype=torch.bool))
    assert y.shape == (1, 2, 1, 6, 6)  # ceil mode: 5 -> 5 -> 3 -> 2 -> 1
    enc2 = CAEREncoder(dims=2, channels=(2, 2, 2, 2, 2)).eval()
    assert enc2(torch.randn(1, 3, 224, 224))[0].shape == (1, 2, 14, 14)


def test_masked_batch_norm_matches_batch_norm_on_valid_steps():
    torch.manual_seed(0)
    bn, ref = nn.BatchNorm3d(4).train(), nn.BatchNorm3d(4).train()
    x = torch.randn(3, 4, 5, 2, 2)
    valid = torch.arange(5)[None].expand(3, 5) < 3
    y = masked_batch_norm(bn, x, valid)
    r = ref(x[:, :, :3])
    torch.testing.assert_close(y[:, :, :3], r)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    bn.eval()
    torch.testing.assert_close(masked_batch_norm(bn, x, valid), bn(x))
    bn.train()
    before = bn.running_mean.clone()
    none = torch.zeros(3, 5, dtype=torch.bool)
    assert masked_batch_norm(bn, x, none) is x and torch.equal(bn.running_mean, before)  # nothing valid
    with pytest.raises(ValueError, match="more than 1 value"):
        masked_batch_norm(bn, x[:1, :, :, :1, :1], none[:1] | (torch.arange(5) == 0))


# ---------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------


def _encoder(k: int, chans=(32, 64, 128, 256, 256)) -> int:
    total, cin = 0, 3
    for c in chans:
        total += k * cin * c + c + 2 * c  # conv + bias, BN weight + bias
        cin = c
    return total


def _head(k: int, c: int, face: int, classes: int) -> int:
    attention = k * c * 128 + 128 + 2 * 128 + k * 128 + 1
    fusion = (face * 128 + 128 + 128 + 1) + (c * 128 + 128 + 128 + 1)
    classifier = (face + c) * 128 + 128 + 128 * classes + classes
    return attention + fusion + classifier


def test_parameter_counts():
    """Paper architectures (section 3.2): counts do not depend on the input size (fully convolutional)."""
    n3 = count_parameters(create_model("caer_net", num_classes=7))
    n2 = count_parameters(create_model("caer_net_s", num_classes=7))
    nf = count_parameters(create_model("caer_net_features", num_classes=8, face_dim=1280, context_dim=1280))
    assert n3 == 2 * _encoder(27) + _head(27, 256, 256, 7) == 6_892_170
    assert n2 == 2 * _encoder(9) + _head(9, 256, 256, 7) == 2_389_002
    assert nf == _head(9, 1280, 1280, 8) == 2_133_131


# ---------------------------------------------------------------------------------------------
# Mechanism: CAER-Net-S finds a label that lives only in the context, and attends to it
# ---------------------------------------------------------------------------------------------

SIZE, CELL = 64, 16
GRID = SIZE // CELL


def square_in_context(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Context: noise plus a bright 16x16 square on a random cell of a 4x4 grid, coloured by the label
    (red / green / blue); face: pure noise (uninformative)."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, K, (n,), generator=g)
    cell = torch.randint(0, GRID * GRID, (n,), generator=g)
    ctx = 0.3 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    for i in range(n):
        r, c = divmod(int(cell[i]), GRID)
        ctx[i, label[i], r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL] += 2.0
    face = torch.randn(n, 1, 3, 32, 32, generator=g)
    return dict(face_pixels=face, context_pixels=ctx.unsqueeze(1), label=label, cell=cell)


def test_caer_net_s_learns_context_label_and_attends_to_it():
    train, test = square_in_context(512, 1), square_in_context(256, 2)
    torch.manual_seed(0)
    model = create_model(
        "caer_net_s",
        num_classes=K,
        channels=(4, 8, 8, 16, 16),
        attention_channels=8,
        fusion_hidden=8,
        classifier_hidden=16,
        dropout=0.0,
        fusion_dropout=0.0,
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, 512, (32,), generator=g)
        batch = {k: v[idx] for k, v in train.items()}
        loss = F.cross_entropy(model(batch).logits, batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(test)
    accuracy = (out.logits.argmax(1) == test["label"]).float().mean().item()
    assert accuracy > 0.8  # chance: 1/3
    att = out.spatial_attention[:, 0].flatten(1)  # (N, 16) over the 4x4 cells
    assert att.shape[1] == GRID * GRID
    mass = att[torch.arange(len(att)), test["cell"]].mean().item()
    assert mass > 3 / (GRID * GRID)  # attention on the square: > 3x the uniform share
    assert out.fusion_weights[:, 0, 1].mean() > 0.5  # and the fusion leans on the context


def test_caer_fusion_dropout_between_the_fusion_1x1_layers():
    """Lee et al. 5.1: dropout 0.5 between the 1x1 layers; the fusion weights vary in training, not in eval."""
    import torch

    from emocontext.models import create_model
    from emocontext.models.caer_net import PAPER_CONTEXT_CHANNELS_AS_PRINTED

    torch.manual_seed(0)
    model = create_model("caer_net_features", num_classes=3, face_dim=6, context_dim=5)
    assert model.head.fusion.face_score[1].p == 0.5
    batch = {"face": torch.randn(2, 3, 6), "context": torch.randn(2, 3, 5, 2, 2)}
    model.train()
    assert not torch.equal(model(batch).fusion_weights, model(batch).fusion_weights)
    model.eval()
    torch.testing.assert_close(model(batch).fusion_weights, model(batch).fusion_weights)
    # the state dict keys are unchanged by the dropout (checkpoints written before load)
    assert {"head.fusion.face_score.0.weight", "head.fusion.face_score.2.weight"} <= set(model.state_dict())
    # the context stream's four printed channel values build a four-layer encoder
    net = create_model("caer_net", num_classes=3, context_channels=PAPER_CONTEXT_CHANNELS_AS_PRINTED)
    assert len(net.context_encoder.convs) == 4 and net.context_encoder.temporal_stride == 4
