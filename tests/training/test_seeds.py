"""Seeds, splits and the labels of what they report: a held-out test split, selection-set numbers."""

from __future__ import annotations

from emocontext.data.manifest import ClipEntry
from emocontext.labels import EKMAN7
from tests.conftest import imbalanced_store


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
