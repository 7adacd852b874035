"""Each paper's training recipe (models/recipes.py): what `emocontext models --recipes` shows, the sampling."""

from __future__ import annotations

import pytest

from emocontext.errors import ConfigError, IncompatibleFeaturesError
from emocontext.models import list_models, model_info
from emocontext.models.recipes import EVERY_FRAME, check_store_fps, sampling_fps
from emocontext.training.fit import TrainConfig, resolve_config


def recipe_rows(monkeypatch) -> dict[str, dict[str, str]]:
    """``{model: {column: cell}}`` of `emocontext models --recipes --json`, in the table's words."""
    import json

    from typer.testing import CliRunner

    from emocontext import cli

    r = CliRunner().invoke(cli.app, ["models", "--recipes", "--json"])
    assert r.exit_code == 0, r.output
    rows = {}
    for group in json.loads(r.output):
        for name in group["models"]:
            rows[name] = {
                "name": name,
                "optimizer": group["optimizer"],
                "lr": f"{group['lr']:g}",
                "schedule": "constant"
                if not group["lr_step"]
                else f"x{group['lr_gamma']:g} every {group['lr_step']} epochs",
                "weight decay": f"{group['weight_decay']:g}",
                "batch": str(group["batch_size"]),
                "epochs": str(group["epochs"]),
                "patience": str(group["patience"]),
                "select on val": group["selection"],
                "frames/s": "every frame" if group["fps"] == EVERY_FRAME else f"{group['fps']:g}",
                "frames": "all" if group["max_frames"] is None else str(group["max_frames"]),
            }
    return rows


@pytest.mark.parametrize("command", [["models", "--recipes"], ["models"], ["weights", "list"]])
def test_tables_fit_100_columns_without_a_cut_cell(monkeypatch, command):
    from typer.testing import CliRunner

    from emocontext import cli

    monkeypatch.setattr(cli.out, "width", 100)
    r = CliRunner().invoke(cli.app, command)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(map(len, lines)) <= 100
    assert "…" not in r.output
    if command == ["models", "--recipes"]:
        # every model name whole (the names are the API) and every source note printed
        words = {w.strip(",[]") for line in lines for w in line.replace("│", " ").split()}
        assert set(list_models()) <= words
        assert all(model_info(n).recipe.source.split(",")[0] in r.output.replace("\n", " ") for n in list_models())


def test_every_model_has_its_papers_recipe_and_the_cli_shows_it(monkeypatch):
    rows = recipe_rows(monkeypatch)
    assert set(rows) == set(list_models())
    for name, row in rows.items():
        cfg = resolve_config(TrainConfig(model=name))  # what fit() runs for this model
        recipe = model_info(name).recipe
        assert row == {
            "name": name,
            "optimizer": cfg.optimizer,
            "lr": f"{cfg.lr:g}",
            "schedule": recipe.schedule(),
            "weight decay": f"{cfg.weight_decay:g}",
            "batch": str(cfg.batch_size),
            "epochs": str(cfg.epochs),
            "patience": str(cfg.patience),
            "select on val": cfg.selection,
            "frames/s": "every frame" if cfg.fps == EVERY_FRAME else f"{cfg.fps:g}",
            "frames": "all" if cfg.max_frames is None else str(cfg.max_frames),
        }
    # the papers' numbers (issue 25's bar: macro precision for the CACA-RNN family, 25 fps for the AV-LSTM family)
    for name in ("face_rnn", "context_rnn", "parallel_rnn", "concat_rnn", "caca_rnn_a", "caca_rnn_b", "cnn_2d3d"):
        assert rows[name]["select on val"] == "macro_precision" and rows[name]["frames/s"] == "5", name
    assert rows["ensemble"]["select on val"] == "macro_precision"
    for name in ("av_lstm", "av_lstm_last", "av_lstm_mean", "av_face_mean"):
        assert rows[name]["frames/s"] == "25" and rows[name]["select on val"] == "accuracy", name
    for name in ("caan", "ffaa", "faa", "caa", "caan_face", "caan_context"):
        assert rows[name]["frames/s"] == "every frame", name
    assert (rows["caer_net"]["frames/s"], rows["caer_net"]["frames"]) == ("10", "16")
    assert (rows["caer_net_s"]["frames/s"], rows["caer_net_s"]["frames"]) == ("10", "1")  # single images
    assert rows["caer_net_features"]["frames"] == "all"
    caer = resolve_config(TrainConfig(model="caer_net"))
    assert (caer.lr, caer.lr_step, caer.lr_gamma, caer.batch_size) == (5e-3, 4, 0.1, 32)
    chao = resolve_config(TrainConfig(model="av_lstm"))
    assert (chao.optimizer, chao.weight_decay, chao.epochs, chao.selection) == ("adadelta", 5e-4, 50, "accuracy")
    sun = resolve_config(TrainConfig(model="caca_rnn_a"))
    assert (sun.optimizer, sun.lr, sun.batch_size, sun.selection) == ("adam", 1e-4, 32, "macro_precision")
    # an option given overrides the recipe
    assert resolve_config(TrainConfig(model="caer_net", lr=0.1, optimizer="adam")).optimizer == "adam"
    assert resolve_config(TrainConfig(model="caer_net_s", max_frames=16)).max_frames == 16  # the window form
    assert resolve_config(TrainConfig(model="av_lstm", fps=5)).fps == 5


def test_sampling_fps_is_the_recipes_unless_given():
    assert sampling_fps() == 5.0  # no model: CACA-RNN's 5 fps, the project's default
    assert sampling_fps("caca_rnn_a") == 5.0 and sampling_fps("caer_net") == 10.0
    assert sampling_fps("av_lstm") == 25.0 and sampling_fps("caan") == EVERY_FRAME
    assert sampling_fps("av_lstm", 5) == 5.0
    with pytest.raises(ConfigError, match="unknown model"):
        sampling_fps("no_such_model")
    with pytest.raises(ConfigError, match="fps must be > 0"):
        sampling_fps("caan", 0)
    with pytest.raises(ConfigError, match="fps must be > 0"):
        resolve_config(TrainConfig(model="caan", fps=-1))


def test_a_store_at_another_rate_is_refused_with_the_options_named():
    videos = ["/clips/a.mp4", "/clips/b.mkv"]
    check_store_fps("av_lstm", 25.0, 25.0, videos, "store/")
    with pytest.raises(IncompatibleFeaturesError) as e:
        check_store_fps("av_lstm", 25.0, 5.0, videos, "store/")
    message = str(e.value)
    assert "store/ was sampled at 5 frames/s but av_lstm trains at 25" in message
    assert "emocontext extract --model av_lstm" in message and "--fps 5" in message
    assert "every frame" in str(
        pytest.raises(IncompatibleFeaturesError, check_store_fps, "caan", EVERY_FRAME, 5.0, videos, "s").value
    )
    check_store_fps("av_lstm", 25.0, None, videos, "store/")  # a store that records no rate
    check_store_fps("av_lstm", 25.0, 5.0, ["/img/a.jpg", "/img/b.png"], "store/")  # still images: one frame


def test_every_frame_takes_each_decoded_frame_once(tmp_path):
    """CAAN's sampling: every frame of the file, whatever its rate."""
    from emocontext.video.decode import iter_frames
    from tests.conftest import encode_video, frame_index, numbered_frames

    path = encode_video(tmp_path / "v.mp4", numbered_frames(12), fps=10)
    frames = list(iter_frames(path, fps=EVERY_FRAME))
    assert [frame_index(f.image, 12) for f in frames] == list(range(12))
    assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(12)], abs=1e-3)
