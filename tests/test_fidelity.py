"""Paper fidelity (issue 17): the bugs found reading the code against the papers, and the recipes.

Each test here failed before its fix. FIDELITY.md lists every element of the four papers.
"""

from __future__ import annotations

import numpy as np
import pytest

from emocontext.data.manifest import ClipEntry
from emocontext.features.store import FeatureStore
from emocontext.labels import EKMAN7
from emocontext.training.datasets import FeatureSequenceDataset
from tests.conftest import feature_record

SIG = {"face": {"name": "synthetic"}, "context": {"name": "synthetic"}}


def counting_store(root, n=20, t=40):
    """Clips whose face feature at frame ``j`` is ``j``: a sample's first value is its start frame."""
    store = FeatureStore(root, SIG)
    entries = []
    for i in range(n):
        e = ClipEntry(f"/synthetic/count{i}.mp4", EKMAN7.names[i % 3], "train", None)
        frames = np.arange(t, dtype=np.float32)[:, None].repeat(2, 1)
        store.put(e.clip_id, feature_record(e, frames, frames.copy()))
        entries.append(e)
    return store, entries


def _starts(ds: FeatureSequenceDataset, epoch: int) -> list[int]:
    ds.set_epoch(epoch)
    return [int(ds[i]["face"][0, 0]) for i in range(len(ds))]


def test_seeds_draw_different_start_frames_at_every_epoch(tmp_path):
    """Seeds 0 and 1 draw other start frames at every epoch, and seed s at epoch e is not seed s+1 at e-1.

    Before the fix the draw was seeded by ``(seed + epoch) * 1_000_003 + i``: seed 0 at epoch 1 drew
    exactly what seed 1 drew at epoch 0, so the "independent" seeds shared their augmentation.
    """
    store, entries = counting_store(tmp_path / "s")
    ds0 = FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=0)
    ds1 = FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=1)
    for epoch in range(6):
        assert _starts(ds0, epoch) != _starts(ds1, epoch), epoch
        assert _starts(ds0, epoch + 1) != _starts(ds1, epoch), epoch
    # still reproducible: the same seed and epoch give the same starts
    assert _starts(ds0, 3) == _starts(FeatureSequenceDataset(store, entries, EKMAN7, train=True, seed=0), 3)


# ---------------------------------------------------------------------------------------------
# Losses: class weights and CAAN's loss options reach the model's own loss; FaceNet's triplet loss
# ---------------------------------------------------------------------------------------------


def imbalanced_store(root, n=24, t=5, d=6, seed=0):
    """Clips labelled 0 (two thirds), 1 and 2; the label is readable from the context stream."""
    rng = np.random.default_rng(seed)
    store = FeatureStore(root, SIG)
    entries = []
    for i in range(n):
        y = 0 if i % 3 else 1 + (i // 3) % 2
        ctx = rng.normal(size=(t, d)).astype(np.float32)
        ctx[:, y] += 1.0
        split = "train" if i < 16 else "val"
        e = ClipEntry(f"/synthetic/imb{i}.mp4", EKMAN7.names[y], split, None)
        store.put(e.clip_id, feature_record(e, rng.normal(size=(t, d)).astype(np.float32), ctx, map_shape=(d, 1, 1)))
        entries.append(e)
    return store, entries


def _fit_losses(tmp_path, name, **cfg):
    from emocontext.training.fit import TrainConfig, fit

    store, entries = imbalanced_store(tmp_path / "s")
    tr = FeatureSequenceDataset(store, [e for e in entries if e.split == "train"], EKMAN7, train=True)
    va = FeatureSequenceDataset(store, [e for e in entries if e.split == "val"], EKMAN7)
    small = {"embed_dim": 8, "fusion_dim": 8, "feature_dim": 8, "score_hidden": 4}
    config = TrainConfig(model="caan", epochs=2, batch_size=8, model_kwargs=small, **cfg)
    result = fit(config, tr, va, tmp_path / name, label_set=EKMAN7)
    return [h["loss"] for h in result.history]


def test_class_weights_reach_caans_own_loss(tmp_path):
    """``--class-weights`` changes CAAN's training loss (before the fix ``model.loss`` never got the weights)."""
    plain = _fit_losses(tmp_path, "plain")
    weighted = _fit_losses(tmp_path, "weighted", class_weights=True)
    assert plain != weighted
    assert plain == _fit_losses(tmp_path, "again")  # the difference is the weights, not chance


def test_caan_loss_options_come_from_the_config(tmp_path):
    from emocontext.errors import ConfigError
    from emocontext.training.fit import TrainConfig, fit

    default = _fit_losses(tmp_path, "default")
    no_triplet = _fit_losses(tmp_path, "nt", loss_kwargs={"triplet_weight": 0.0, "frame_weight": 0.5})
    assert default != no_triplet
    store, entries = imbalanced_store(tmp_path / "s2")
    ds = FeatureSequenceDataset(store, entries, EKMAN7)
    with pytest.raises(ConfigError, match="takes no loss options"):
        fit(
            TrainConfig(model="face_rnn", epochs=1, loss_kwargs={"margin": 1.0}),
            ds,
            ds,
            tmp_path / "x",
            label_set=EKMAN7,
        )


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


# ---------------------------------------------------------------------------------------------
# Recipes: shown by `emocontext models --recipes`, used by `emocontext train`
# ---------------------------------------------------------------------------------------------


def _recipe_rows(monkeypatch) -> dict[str, list[str]]:
    from typer.testing import CliRunner

    from emocontext import cli

    monkeypatch.setattr(cli.out, "width", 400)
    r = CliRunner().invoke(cli.app, ["models", "--recipes"])
    assert r.exit_code == 0, r.output
    rows = {}
    for line in r.output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 9 and cells[0] and cells[1] in ("adam", "adadelta", "sgd"):
            rows[cells[0]] = cells
    return rows


def test_every_model_has_its_papers_recipe_and_the_cli_shows_it(monkeypatch):
    from emocontext.models import list_models, model_info
    from emocontext.training.fit import TrainConfig, resolve_config

    rows = _recipe_rows(monkeypatch)
    assert set(rows) == set(list_models())
    for name, cells in rows.items():
        cfg = resolve_config(TrainConfig(model=name))  # what fit() runs for this model
        assert (
            cells[1:10]
            == [
                cfg.optimizer,
                f"{cfg.lr:g}",
                model_info(name).recipe.schedule(),
                f"{cfg.weight_decay:g}",
                str(cfg.batch_size),
                str(cfg.epochs),
                str(cfg.patience),
                cfg.selection,
            ][: len(cells[1:10])]
            or cells
        )
    # the papers' numbers
    caer = resolve_config(TrainConfig(model="caer_net"))
    assert (caer.lr, caer.lr_step, caer.lr_gamma, caer.batch_size) == (5e-3, 4, 0.1, 32)
    chao = resolve_config(TrainConfig(model="av_lstm"))
    assert (chao.optimizer, chao.weight_decay, chao.epochs, chao.selection) == ("adadelta", 5e-4, 50, "accuracy")
    sun = resolve_config(TrainConfig(model="caca_rnn_a"))
    assert (sun.optimizer, sun.lr, sun.batch_size) == ("adam", 1e-4, 32)
    # an option given overrides the recipe
    assert resolve_config(TrainConfig(model="caer_net", lr=0.1, optimizer="adam")).optimizer == "adam"


def test_train_runs_the_recipe_the_cli_shows(tmp_path, monkeypatch):
    """`emocontext train` with no recipe option runs exactly the recipe `models --recipes` shows."""
    import torch
    from typer.testing import CliRunner

    from emocontext import cli

    rows = _recipe_rows(monkeypatch)
    shown = rows["caer_net_features"]
    store, _ = imbalanced_store(tmp_path / "s")
    r = CliRunner().invoke(
        cli.app,
        ["train", "-s", str(tmp_path / "s"), "--model", "caer_net_features", "-o", str(tmp_path / "r")]
        + ["--model-option", "attention_channels=4", "--model-option", "fusion_hidden=4"],
    )
    assert r.exit_code == 0, r.output
    assert "recipe: sgd lr 0.005 x0.1 every 4 epochs" in r.output
    ck = torch.load(tmp_path / "r" / "seed0" / "checkpoint.pt", weights_only=False)
    cfg = ck["meta"]["config"]
    assert [cfg["optimizer"], f"{cfg['lr']:g}", f"{cfg['weight_decay']:g}", str(cfg["batch_size"])] == [
        shown[1],
        shown[2],
        shown[4],
        shown[5],
    ]
    assert [str(cfg["epochs"]), str(cfg["patience"]), cfg["selection"]] == [shown[6], shown[7], shown[8]]
    assert f"x{cfg['lr_gamma']:g} every {cfg['lr_step']} epochs" == shown[3]
    # the optimiser really is that one, and the schedule really ran: 5e-3 divided by 10 every 4 epochs
    group = ck["opt"]["param_groups"][0]
    assert group["momentum"] == 0.9 and "nesterov" in group  # torch.optim.SGD's state
    lrs = [h["lr"] for h in ck["history"]]
    assert len(lrs) == int(shown[6])
    assert lrs[:5] == pytest.approx([5e-3, 5e-3, 5e-3, 5e-3, 5e-4])
    assert lrs[-1] == pytest.approx(5e-6)


def test_context_pool_flatten_gives_the_papers_25088_values_for_squeezenet():
    """Sun et al., V-C: SqueezeNet 1.1's last map (512 x 13 x 13 at 224 px) pooled to 25,088 values."""
    import torch

    from emocontext.features.backbones import SqueezeNet11, pool_map

    m = SqueezeNet11().features(torch.zeros(1, 3, 224, 224))
    assert tuple(m.shape) == (1, 512, 13, 13)
    assert pool_map(m, "flatten").shape == (1, 25_088) and pool_map(m, "mean").shape == (1, 512)
    x = torch.arange(2 * 4 * 14 * 14, dtype=torch.float32).view(2, 4, 14, 14)
    flat = pool_map(x, "flatten").view(2, 4, 7, 7)
    torch.testing.assert_close(flat[:, :, 0, 0], x[:, :, :2, :2].mean((2, 3)))  # 2x2 cells, channel-major


# ---------------------------------------------------------------------------------------------
# Architecture details the papers give, as options
# ---------------------------------------------------------------------------------------------


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


def test_caca_rnn_layer_counts_of_both_sections():
    """V-D (default): the first (left) LSTM has two layers; V-C: the face RNN (right in A) has two."""
    from emocontext.models import create_model

    v_d = create_model("caca_rnn_a", num_classes=8, face_dim=128, context_dim=128)
    v_c = create_model("caca_rnn_a", num_classes=8, face_dim=128, context_dim=128, left_layers=1, right_layers=2)
    assert v_d.left_lstm.num_layers == 2 and len(v_d.right_cells) == 1
    assert v_c.left_lstm.num_layers == 1 and len(v_c.right_cells) == 2


# ---------------------------------------------------------------------------------------------
# CAER-Net's face-hidden context: missed detections and other people's faces
# ---------------------------------------------------------------------------------------------


class _Squares:
    """Finds the bright squares of a frame (stand-in faces); misses every face in the calls listed in ``miss``."""

    name = "squares"

    def __init__(self, miss=()):
        self.miss, self.calls = set(miss), 0

    def detect(self, frame):
        import cv2

        from emocontext.video.faces import Detection

        self.calls += 1
        if self.calls - 1 in self.miss:
            return []
        mask = (frame[..., 0] > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [
            Detection((float(x), float(y), float(x + w), float(y + h)), 0.99)
            for x, y, w, h, area in stats[1:n]
            if area >= 20
        ]


def _two_people_video(path, n=6):
    from tests.conftest import encode_video

    frames = np.full((n, 120, 160, 3), 60, np.uint8)
    frames[:, 40:80, 60:100] = 255  # the subject: large, centre
    frames[:, 10:30, 125:145] = 255  # another person: small, top right
    return encode_video(path, frames, fps=5)


def test_hide_undetected_keeps_the_face_hidden_where_the_detector_missed_it(tmp_path):
    from emocontext.video.pipeline import StreamConfig, video_streams

    path = _two_people_video(tmp_path / "v.mp4")
    leaky = video_streams(path, _Squares(miss={2, 3}), StreamConfig(fps=5, hide_face=True))
    assert leaky.face_present.tolist() == [True, True, False, False, True, True]
    assert leaky.context[2, 112, 112].min() > 200  # before: the missed face shows in the context stream
    held = video_streams(path, _Squares(miss={2, 3}), StreamConfig(fps=5, hide_face=True, hide_undetected=True))
    assert held.face_present.tolist() == leaky.face_present.tolist()  # the face stream is unchanged
    assert held.context[:, 112, 112].max() < 10  # every frame hides the subject


def test_hide_all_faces_hides_other_people_too(tmp_path):
    from emocontext.training.pixels import pixel_stream_config
    from emocontext.video.pipeline import StreamConfig, video_streams

    path = _two_people_video(tmp_path / "v.mp4")
    # the other person's square: x 125..145 of 160, y 10..30 of 120 -> the centre crop's x 105..125 (of 120)
    one = video_streams(path, _Squares(), StreamConfig(fps=5, hide_face=True))
    every = video_streams(path, _Squares(), StreamConfig(fps=5, hide_face=True, hide_all_faces=True))
    y, x = int(20 * 224 / 120), int(115 * 224 / 120)
    assert one.context[0, y, x].min() > 200 and every.context[0, y, x].max() < 10
    assert one.context[0, 112, 112].max() < 10 and every.context[0, 112, 112].max() < 10
    assert every.context[0, 200, 20].min() > 40  # the scene stays
    assert StreamConfig(hide_face=True, hide_all_faces=True).signature()["hide_all_faces"] is True
    assert "hide_all_faces" not in StreamConfig(hide_face=True).signature()  # older stores still match
    cfg = pixel_stream_config()
    assert cfg.hide_face and cfg.hide_all_faces and cfg.hide_undetected


def test_pixel_training_jitters_hue_and_saturation():
    """Lee et al. 5.1: "contrast, and color changes": hue and saturation jitter besides brightness and contrast."""
    import torch

    from emocontext.training.pixels import PixelClip, PixelClipDataset, hue_saturation

    grey = torch.full((1, 3, 4, 4), 0.3)
    torch.testing.assert_close(hue_saturation(grey, 1.5, 17.0), grey, atol=1e-5, rtol=0)  # grey stays grey
    red = torch.tensor([0.8, -0.5, -0.5]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    torch.testing.assert_close(hue_saturation(red, 1.0, 0.0), red, atol=1e-5, rtol=0)
    turned = hue_saturation(red, 1.0, 18.0)
    assert (turned - red).abs().max() > 0.05  # the hue moved
    pale = hue_saturation(red, 0.5, 0.0)
    assert pale.std(1).mean() < red.std(1).mean()  # less saturated: channels closer together
    rng = np.random.default_rng(0)
    clip = PixelClip(
        rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8),
        rng.integers(0, 255, (4, 12, 12, 3), dtype=np.uint8),
        np.ones(4, bool),
    )
    on = PixelClipDataset([clip], [0], train=True, crop=12, clip_len=4, seed=3)
    off = PixelClipDataset([clip], [0], train=True, crop=12, clip_len=4, seed=3, hue_saturation=False)
    assert not torch.equal(on[0]["context_pixels"], off[0]["context_pixels"])


# ---------------------------------------------------------------------------------------------
# Selection-set numbers are labelled; a held-out split is reported
# ---------------------------------------------------------------------------------------------


def test_a_test_split_is_held_out_by_group_before_validation():
    from emocontext.data.manifest import Manifest
    from emocontext.training.seeds import split_train_val_test

    entries = [ClipEntry(f"/c{i}.mp4", EKMAN7.names[i % 3], None, f"subject{i % 10}") for i in range(60)]
    m = Manifest(entries, EKMAN7, "m")
    tr, va, te = split_train_val_test(m, test_fraction=0.2)
    groups = [{e.group for e in part} for part in (tr, va, te)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert len(groups[2]) == 2 and len(tr) + len(va) + len(te) == 60
    assert split_train_val_test(m)[2] is None  # no test split unless asked
    again = split_train_val_test(m, test_fraction=0.2)[2]
    assert [e.path for e in again] == [e.path for e in te]  # evaluate finds the same split


def test_cli_labels_selection_set_numbers(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from emocontext import cli

    monkeypatch.setattr(cli.out, "width", 250)
    monkeypatch.setattr(cli.err, "width", 250)
    imbalanced_store(tmp_path / "s", n=30)  # train and val splits only
    base = ["train", "-s", str(tmp_path / "s"), "--model", "face_rnn", "--epochs", "1"]
    small = ["--model-option", "hidden_size=4", "--model-option", "embed_dim=4"]
    r = CliRunner().invoke(cli.app, base + small + ["-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "no test split" in r.output and "val mAP (selection)" in r.output and "val (selection)" in r.output
    r = CliRunner().invoke(cli.app, base + small + ["-o", str(tmp_path / "b"), "--test-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    assert "no test split" not in r.output
    import json

    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert "test" in summary["runs"][0]
    ck = str(tmp_path / "b" / "seed0" / "best.pt")
    r = CliRunner().invoke(
        cli.app, ["evaluate", ck, "-s", str(tmp_path / "s"), "--split", "val", "--test-fraction", "0.3"]
    )
    assert r.exit_code == 0, r.output
    assert "val (selection set: it picked this checkpoint, optimistic" in " ".join(r.output.split())
    r = CliRunner().invoke(cli.app, ["evaluate", ck, "-s", str(tmp_path / "s")])  # the fraction forgotten
    assert r.exit_code == 1 and "give evaluate the same --test-fraction" in " ".join(r.output.split()), r.output
