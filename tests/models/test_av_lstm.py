"""Audio-visual LSTM (Chao et al. 2016): alignment window, masks, perception attention, learning."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from emocontext.errors import ConfigError
from emocontext.models import count_parameters, create_model, list_models, model_info
from emocontext.models.av_lstm import coarse_alignment
from tests.conftest import data_path
from tests.utils import check_contract

K, D_F, D_A = 3, 6, 5
LENGTHS = [7, 5, 3, 2]  # visual steps per clip
AUDIO_LENGTHS = [30, 11, 12, 0]  # audio frames per clip: ratios 30/7, 11/5, 4, and a clip without audio
MODELS = ["av_lstm", "av_lstm_last", "av_lstm_mean"]
VARIANTS = [(m, {}) for m in MODELS] + [
    ("av_lstm", {"two_encoders": False}),
    ("av_lstm", {"align": "none"}),
    ("av_lstm", {"window": 3, "attention_dim": 7}),
    ("av_lstm_mean", {"align": "none", "window": 1}),
]


def _ids(v):
    return v[0] + "".join(f"-{k}={x}" for k, x in v[1].items())


def make_batch(lengths=LENGTHS, audio_lengths=AUDIO_LENGTHS, seed: int = 0, T=None, T_a=None):
    """Variable-length batch; clip 1 has face gaps; padded and face-less positions hold garbage."""
    g = torch.Generator().manual_seed(seed)
    B, T, T_a = len(lengths), T or max(lengths), T_a or max(max(audio_lengths), 1)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    audio_mask = torch.arange(T_a)[None] < torch.tensor(audio_lengths)[:, None]
    face_mask = mask.clone()
    if B > 1:
        face_mask[1, 1:3] = False
    return dict(
        face=torch.randn(B, T, D_F, generator=g),
        audio=torch.randn(B, T_a, D_A, generator=g),
        mask=mask,
        face_mask=face_mask,
        audio_mask=audio_mask,
    )


def build(name: str, **kw):
    torch.manual_seed(0)
    small = {"hidden_size": 12} if name != "av_lstm" else {"hidden_size": 12, "selection_size": 6, "embed_dim": 4}
    return create_model(name, num_classes=K, face_dim=D_F, audio_dim=D_A, **{**small, **kw}).eval()


def perturb(x: torch.Tensor, where: torch.Tensor, seed: int = 1) -> torch.Tensor:
    noise = 100 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return torch.where(where.unsqueeze(-1), noise, x)


def test_registered_with_options():
    assert set(MODELS) <= set(list_models("av_lstm*"))
    info = model_info("av_lstm")
    assert info.streams == ("face", "audio") and "Chao et al. 2016" in str(info)
    assert {"audio_dim", "window", "two_encoders", "align", "hidden_size"} <= set(info.options)
    assert "two_encoders" not in model_info("av_lstm_last").options
    with pytest.raises(ConfigError, match="audio_dim"):
        create_model("av_lstm", num_classes=K, face_dim=D_F)
    with pytest.raises(ConfigError, match="face_dim"):
        create_model("av_lstm_mean", num_classes=K, audio_dim=D_A)
    for bad in ({"window": 0}, {"align": "hard"}, {"hidden_size": 0}, {"dropout": 1.0}):
        with pytest.raises(ConfigError):
            create_model("av_lstm", num_classes=K, face_dim=D_F, audio_dim=D_A, **bad)


@pytest.mark.parametrize("name,kw", VARIANTS, ids=map(_ids, VARIANTS))
def test_shapes_finite_and_gradients(name, kw):
    model = build(name, **kw).train()
    batch = make_batch()
    B, T = batch["mask"].shape
    out = model(batch)
    w2 = 2 * kw.get("window", 2)
    assert out.logits.shape == (B, K) and torch.isfinite(out.logits).all()
    assert out.frame_logits.shape == (B, T, K)
    assert out.extras["alignment"].shape == out.extras["alignment_positions"].shape == (B, T, w2)
    assert out.extras["alignment_centre"].shape == (B, T)
    if name == "av_lstm":
        assert out.temporal_attention.shape == (B, K, T)
        assert out.extras["perception_attention"] is out.temporal_attention
        assert ("selection_alignment" in out.extras) == kw.get("two_encoders", True)
    else:
        assert out.temporal_attention.shape == (B, T)
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 0])).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name,kw", VARIANTS[len(MODELS) :], ids=map(_ids, VARIANTS[len(MODELS) :]))
def test_variants_meet_the_model_contract(name, kw):
    """The options beyond the defaults (which test_contract.py covers)."""
    check_contract(name, **kw)


def test_alignment_ignores_padding_and_a_clip_without_audio():
    """The alignment (extras) does not move with padded values or more padding; clip 3 has no audio at all."""
    model = build("av_lstm")
    batch = make_batch()
    ref = model(batch)
    T, T_a = batch["mask"].shape[1], batch["audio"].shape[1]
    longer = make_batch(T=T + 3, T_a=T_a + 5, seed=1)  # more padding, other values in it
    for key, x in batch.items():
        longer[key][:, : x.shape[1]] = x
    out = model(longer)
    torch.testing.assert_close(out.logits, ref.logits)
    torch.testing.assert_close(out.extras["alignment"][:, :T], ref.extras["alignment"])
    assert (out.extras["alignment"][3] == 0).all() and (out.extras["alignment_centre"][3] == -1).all()


def test_valid_audio_frames_need_not_be_a_prefix():
    model = build("av_lstm")
    batch = make_batch([6], [10], T_a=10)
    ref = model(batch)
    holes = dict(batch)
    holes["audio"] = torch.zeros(1, 15, D_A)
    holes["audio_mask"] = torch.zeros(1, 15, dtype=torch.bool)
    keep = torch.tensor([0, 2, 3, 4, 6, 7, 9, 11, 12, 14])  # the same 10 frames, spread out
    holes["audio"][0, keep] = batch["audio"][0]
    holes["audio_mask"][0, keep] = True
    out = model(holes)
    torch.testing.assert_close(out.logits, ref.logits)
    pos = ref.extras["alignment_positions"][0]
    mapped = torch.where(pos >= 0, keep[pos.clamp(min=0)], pos)
    assert torch.equal(out.extras["alignment_positions"][0], mapped)


def test_coarse_alignment_uses_each_clips_own_lengths():
    mask = torch.arange(8)[None] < torch.tensor([[8], [4], [3]])
    p = coarse_alignment(mask, torch.tensor([32, 10, 3]))
    assert p[0].tolist() == [0, 4, 8, 12, 16, 20, 24, 28]  # 4 audio frames per visual step
    assert p[1, :4].tolist() == [0, 2, 5, 7]  # floor(t * 10 / 4)
    assert p[2, :3].tolist() == [0, 1, 2]


@pytest.mark.parametrize("window", [1, 2, 3])
def test_alignment_rows_sum_to_one_inside_the_window(window):
    model = build("av_lstm", window=window)
    batch = make_batch()
    out = model(batch)
    mask, alen = batch["mask"], batch["audio_mask"].sum(1)
    al, pos, centre = out.extras["alignment"], out.extras["alignment_positions"], out.extras["alignment_centre"]
    p = coarse_alignment(mask, alen)
    slots = torch.arange(2 * window) - window + 1
    expected = p.unsqueeze(-1) + slots
    inside = (expected >= 0) & (expected < alen.view(-1, 1, 1)) & mask.unsqueeze(-1)
    assert torch.equal(pos, torch.where(inside, expected, torch.full_like(expected, -1)))
    has_audio = mask & (alen > 0).unsqueeze(1)
    assert torch.equal(centre, torch.where(has_audio, p, torch.full_like(p, -1)))
    assert (al[~inside] == 0).all() and (al >= 0).all()
    sums = al.sum(-1)
    torch.testing.assert_close(sums[has_audio], torch.ones(int(has_audio.sum())))
    assert (sums[~has_audio] == 0).all()  # padded steps, and the clip without audio
    # the window sits around p_t: slot w-1 is p_t itself, so the centre is always a valid slot
    assert (pos[..., window - 1][has_audio] == p[has_audio]).all()


def test_alignment_none_picks_the_coarse_position():
    out = build("av_lstm_last", align="none")(make_batch())
    al, pos, centre = out.extras["alignment"], out.extras["alignment_positions"], out.extras["alignment_centre"]
    valid = centre >= 0
    assert (al[valid][:, 1] == 1).all() and al[valid].sum().item() == valid.sum().item()
    assert torch.equal(pos[..., 1][valid], centre[valid])


def test_perception_attention_sums_to_one_over_valid_frames():
    batch = make_batch()
    mask = batch["mask"]
    for two in (True, False):
        att = build("av_lstm", two_encoders=two)(batch).temporal_attention  # (B, K, T)
        torch.testing.assert_close(att.sum(-1), torch.ones(len(LENGTHS), K))
        assert (att.masked_select(~mask.unsqueeze(1).expand_as(att)) == 0).all()
    last = build("av_lstm_last")(batch).temporal_attention
    assert torch.equal(last.argmax(1), torch.tensor(LENGTHS) - 1) and (last.sum(1) == 1).all()
    mean = build("av_lstm_mean")(batch).temporal_attention
    torch.testing.assert_close(mean, mask.float() / mask.sum(1, keepdim=True))


def test_clip_without_visual_steps_gets_the_bias():
    model = build("av_lstm")
    batch = make_batch([0, 3], [5, 7], T=4)
    out = model(batch)
    torch.testing.assert_close(out.logits[0], model.b_n)
    assert (out.extras["alignment"][0] == 0).all() and (out.temporal_attention[0] == 0).all()


def test_bad_batches_are_config_errors():
    model = build("av_lstm")
    batch = make_batch()
    with pytest.raises(ConfigError, match="audio"):
        model({k: v for k, v in batch.items() if k != "audio"})
    with pytest.raises(ConfigError, match="audio"):
        model({**batch, "audio": batch["audio"][..., :2]})
    with pytest.raises(ConfigError, match="audio_mask"):
        model({**batch, "audio_mask": batch["audio_mask"][:, :3]})
    with pytest.raises(ConfigError, match="face"):
        model({**batch, "face": batch["face"][..., :2]})


def _lstm(i: int, h: int) -> int:
    return 4 * h * (i + h) + 8 * h


def _encoder(d_f: int, d_a: int, h: int, w: int = 2, soft: bool = True) -> int:
    align = 2 * h * h + 2 * w * h if soft else 0  # W^a, W^v (h x h), W_i (2w x h)
    return (d_a * h + h) + _lstm(h, h) + (d_f * h + h) + align + _lstm(2 * h, h)


def test_parameter_counts_follow_section_4_1():
    D_f, D_a, N = 1280, 47, 7
    full = create_model("av_lstm", num_classes=N, face_dim=D_f, audio_dim=D_a)
    perception = 8 * 8 + N * 8 + N * 32 + N  # W^h, e_n, W^n, b^n
    assert count_parameters(full) == _encoder(D_f, D_a, 32) + _encoder(D_f, D_a, 8) + perception
    one = create_model("av_lstm", num_classes=N, face_dim=D_f, audio_dim=D_a, two_encoders=False)
    assert count_parameters(one) == _encoder(D_f, D_a, 32) + 32 * 8 + N * 8 + N * 32 + N
    for name in ("av_lstm_last", "av_lstm_mean"):
        m = create_model(name, num_classes=N, face_dim=D_f, audio_dim=D_a)
        assert count_parameters(m) == _encoder(D_f, D_a, 64) + 64 * N + N
    none = create_model("av_lstm_mean", num_classes=N, face_dim=D_f, audio_dim=D_a, align="none")
    assert count_parameters(none) == _encoder(D_f, D_a, 64, soft=False) + 64 * N + N


# ---------------------------------------------------------------------------------------------
# Mechanism: the label is carried by the audio frame aligned (with a known shift) to a marked frame
# ---------------------------------------------------------------------------------------------

SHIFT = 1  # the informative audio frame is p_t + 1, i.e. window slot w (= 2 with w = 2)


def sync_task(n: int, seed: int):
    """Clips of 5-8 visual steps with 3-5 audio frames per step (T_a = R * T, so p_t = R * t).

    Every audio frame carries a random sign (dim 0) and noise; the face marks one random step t*
    (dim 0 += 2). The label is the sign of audio frame ``R * t* + SHIFT``: the visual stream alone
    carries nothing, the audio alone is random unless read at the frame aligned with t*.
    """
    g = torch.Generator().manual_seed(seed)
    T_max, R_max = 8, 5
    lengths = torch.randint(5, T_max + 1, (n,), generator=g)
    rate = torch.randint(3, R_max + 1, (n,), generator=g)
    mask = torch.arange(T_max)[None] < lengths[:, None]
    audio_mask = torch.arange(R_max * T_max)[None] < (rate * lengths)[:, None]
    face = 0.3 * torch.randn(n, T_max, 3, generator=g)
    audio = 0.3 * torch.randn(n, R_max * T_max, 3, generator=g)
    sign = torch.randint(0, 2, (n, R_max * T_max), generator=g).float() * 2 - 1
    audio[..., 0] = sign
    t_star = (torch.rand(n, generator=g) * lengths).long()
    face[torch.arange(n), t_star, 0] += 2.0
    a_star = rate * t_star + SHIFT
    label = (sign[torch.arange(n), a_star] > 0).long()
    return dict(face=face, audio=audio, mask=mask, audio_mask=audio_mask, label=label), t_star, a_star


def train_sync(align: str, steps: int = 60):
    torch.manual_seed(0)
    model = create_model(
        "av_lstm", num_classes=2, face_dim=3, audio_dim=3, hidden_size=16, selection_size=8, dropout=0.0, align=align
    )
    train, _, _ = sync_task(1024, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, 1024, (64,), generator=g)
        b = {k: v[idx] for k, v in train.items()}
        loss = F.cross_entropy(model(b).logits, b["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_av_lstm_learns_the_aligned_audio_and_its_alignment_follows_the_shift():
    test, t_star, a_star = sync_task(256, seed=2)
    rows = torch.arange(256)
    soft_model, none_model = train_sync("soft"), train_sync("none")
    with torch.no_grad():
        out, none = soft_model(test), none_model(test)
    acc = (out.logits.argmax(1) == test["label"]).float().mean().item()
    acc_none = (none.logits.argmax(1) == test["label"]).float().mean().item()
    assert acc >= 0.9, acc  # chance is 0.5
    assert acc_none <= acc - 0.15, (acc, acc_none)  # the state at p_t (before the informative frame) is not enough

    # At the marked step the learned alignment puts its mass on the informative frame R * t* + 1:
    # slot 2 of the window [p_t - 1, p_t, p_t + 1, p_t + 2], for every clip's own rate R and length.
    weights = out.extras["alignment"][rows, t_star]  # (256, 4)
    positions = out.extras["alignment_positions"][rows, t_star]
    assert (out.extras["alignment_centre"][rows, t_star] == a_star - SHIFT).all()
    assert (positions[:, 2] == a_star).all()
    assert weights[:, 2].mean() > 0.8 and (weights.argmax(1) == 2).float().mean() > 0.9
    expected_position = (weights * positions.clamp(min=0)).sum(1)  # slot -1 (t* = 0, p_t - 1 < 0) has weight 0
    assert ((expected_position - a_star.float()).abs() < 0.5).float().mean() > 0.9

    # Perception attention finds the marked step: some emotion attends to it far above uniform (1/T).
    att = out.extras["perception_attention"][rows, :, t_star].max(1).values
    assert att.mean() > 0.5


@pytest.mark.realdata
def test_real_clip_forward_pass():
    from emocontext.features.audio import PAPER_AUDIO, audio_features
    from emocontext.video.decode import read_audio

    path = data_path("videos", "crema-d", "1001_DFA_HAP_XX.flv")
    feats, times = audio_features(read_audio(path, sample_rate=16000))
    duration = float(times[-1])
    T = max(1, int(duration * 5))  # the project's 5 fps visual stream
    torch.manual_seed(0)
    model = create_model("av_lstm", num_classes=6, face_dim=1280, audio_dim=PAPER_AUDIO.feature_dim).eval()
    audio = torch.from_numpy(feats)[None]
    audio = (audio - audio.mean(1, keepdim=True)) / (audio.std(1, keepdim=True) + 1e-6)
    batch = dict(face=torch.randn(1, T, 1280), audio=audio)
    out = model(batch)
    assert out.logits.shape == (1, 6) and torch.isfinite(out.logits).all()
    centre = out.extras["alignment_centre"][0]
    # visual step t at t / 5 s lines up with the audio frame centred nearest that time
    t_sec = torch.arange(T) / 5.0
    audio_sec = torch.from_numpy(times)[centre]
    assert (audio_sec - t_sec).abs().max() < 0.1
    torch.testing.assert_close(out.extras["alignment"].sum(-1), torch.ones(1, T))


def test_the_alignment_window_is_matched_to_the_audio_rate():
    """Fig. 2's four slots at the paper's rates (31.25 audio frames/s, 25 video frames/s: 1.25 per frame);
    at another video rate the window widens to reach one video frame each way (issue 25)."""
    from emocontext.errors import ConfigError
    from emocontext.models.av_lstm import matched_window

    assert matched_window(31.25 / 25) == 2 and matched_window(None) == 2
    assert matched_window(31.25 / 5) == 7 and matched_window(1.0) == 1 and matched_window(0.3) == 1
    with pytest.raises(ConfigError):
        matched_window(0)
    assert build("av_lstm", audio_frames_per_step=1.25).encoder.window == 2
    wide = build("av_lstm", audio_frames_per_step=6.25)
    assert wide.encoder.window == wide.selector.window == 7 and wide.encoder.w_slot.shape[0] == 14
    assert build("av_lstm", audio_frames_per_step=6.25, window=3).encoder.window == 3  # an explicit width stays
    out = wide(make_batch())
    assert out.extras["alignment"].shape[-1] == 14
