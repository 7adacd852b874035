"""Prediction tables: every input gets its row, failed ones included; output names never collide."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from emocontext.report.tables import PredictionTable, output_names, prediction_json


def test_error_rows_in_every_table(tmp_path):
    labels = ["happy", "sad"]
    paths = {kind: tmp_path / f"t.{kind}" for kind in ("jsonl", "csv", "frames")}
    tables = [PredictionTable(paths[k], k, labels) for k in paths]
    for t in tables:
        with t:
            t.write("/v/broken.mp4", None, "cannot decode")
    (row,) = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    assert (
        row
        == prediction_json("/v/broken.mp4", None, "cannot decode")
        == {
            "path": "/v/broken.mp4",
            "status": "error",
            "error": "cannot decode",
        }
    )
    for kind in ("csv", "frames"):
        (r,) = list(csv.DictReader(open(paths[kind])))
        assert r["status"] == "error" and r["error"] == "cannot decode" and "p_sad" in r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.frames", "t.jsonl"]  # no temporary left


def test_disabled_table_writes_nothing(tmp_path):
    with PredictionTable(None, "csv", ["happy"]) as t:
        t.write("/v/a.mp4", None, "x")
    assert not any(tmp_path.iterdir())


def test_output_names_keep_the_suffix_only_where_stems_clash(tmp_path):
    files = [tmp_path / "a" / "clip.flv", tmp_path / "b" / "clip.flv", tmp_path / "a" / "clip.mp4"]
    names = output_names(files)
    assert names == {files[0]: Path("a/clip.flv"), files[1]: Path("b/clip"), files[2]: Path("a/clip.mp4")}
    assert output_names([]) == {}
