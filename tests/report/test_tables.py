"""Prediction tables: every input gets its row, failed ones included, under the path as given; JSON lines and
frame rows kept as they come and resumed; one JSON shape; output names never collide."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from emocontext.errors import ConfigError, OutputError
from emocontext.inference import FramePrediction, PersonPrediction, Prediction
from emocontext.report.tables import PredictionTables, csv_row, load_predictions, output_names, prediction_json

LABELS = ["happy", "sad"]


def _pred(path: str, label: str = "happy", persons: int = 2) -> Prediction:
    """A prediction of ``persons`` persons, each with two sampled frames; person 1 is the subject."""
    probs = {"happy": 0.75, "sad": 0.25} if label == "happy" else {"happy": 0.25, "sad": 0.75}
    people = []
    for k in range(1, persons + 1):
        frames = [FramePrediction(t, True, [1.0, 2.0, 3.0, 4.0], probs, "face") for t in (0.0, 0.2)]
        people.append(PersonPrediction(k, k == 1, label, max(probs.values()), probs, 2, 0.0, 0.2, frames))
    alone = [FramePrediction(t, False, None, None) for t in (0.0, 0.2)]  # no person: the file's frames
    return Prediction(
        path,
        label,
        0.75,
        probs,
        2,
        2,
        people[0].frames if people else alone,
        persons=people,
        subject_id=1 if people else None,
    )


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tables(tmp_path, **kw):
    paths = {k: tmp_path / f"t.{k}" for k in ("json", "jsonl", "csv", "frames")}
    return paths, PredictionTables(LABELS, **paths, **kw)


def test_error_rows_in_every_table(tmp_path):
    paths, tables = _tables(tmp_path)
    with tables:
        tables.write("/v/broken.mp4", None, "cannot decode:\n  line two")
    (row,) = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    error = {"path": "/v/broken.mp4", "status": "error", "error": "cannot decode:\n  line two"}
    assert row == prediction_json("/v/broken.mp4", None, "cannot decode:\n  line two") == error
    assert json.loads(paths["json"].read_text()) == [error]
    for kind in ("csv", "frames"):
        (r,) = _csv(paths[kind])
        assert r["status"] == "error" and r["error"] == "cannot decode: / line two" and "p_sad" in r
        assert len(paths[kind].read_text().splitlines()) == 2  # header + one line: a message never breaks a row
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.frames", "t.json", "t.jsonl"]


def test_disabled_tables_write_nothing(tmp_path):
    with PredictionTables(LABELS) as t:
        t.write("/v/a.mp4", None, "x")
    assert not any(tmp_path.iterdir())


def test_one_json_shape_utf8_lines_and_flat_person_columns(tmp_path):
    paths, tables = _tables(tmp_path)
    with tables:
        tables.write("vidéos/é.mp4", _pred("/abs/vidéos/é.mp4", persons=2), None)
        tables.write("b.mp4", _pred("b.mp4", "sad", persons=0), None)
    text = paths["jsonl"].read_text(encoding="utf-8")
    assert "vidéos/é.mp4" in text and "\\u" not in text  # UTF-8, no escapes
    records = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [r["path"] for r in records] == ["vidéos/é.mp4", "b.mp4"]  # the path as given, always a list
    rows = _csv(paths["csv"])
    assert list(rows[0])[:9] == ["path", "status", "error", "label", "confidence", "frames", "frames_with_face"] + [
        "persons",
        "subject_id",
    ]
    assert list(rows[0])[9:] == [
        "person_1_label",
        "person_1_confidence",
        "person_2_label",
        "person_2_confidence",
        "p_happy",
        "p_sad",
    ]
    assert rows[0]["persons"] == "2" and rows[0]["person_2_label"] == "happy" and rows[0]["p_sad"] == "0.2500"
    assert rows[1]["persons"] == "0" and rows[1]["person_1_label"] == "" and rows[1]["label"] == "sad"
    frames = _csv(paths["frames"])
    assert [(r["path"], r["person_id"], r["timestamp"]) for r in frames] == [
        ("vidéos/é.mp4", "1", "0.0"),
        ("vidéos/é.mp4", "1", "0.2"),
        ("vidéos/é.mp4", "2", "0.0"),
        ("vidéos/é.mp4", "2", "0.2"),
        ("b.mp4", "", "0.0"),
        ("b.mp4", "", "0.2"),
    ]
    assert {k: str(v) for k, v in csv_row(records[0]).items()} == rows[0]  # the row, from the JSON record alone


def test_resume_keeps_the_answered_retries_the_failed_and_drops_a_cut_line(tmp_path):
    paths, first = _tables(tmp_path)
    first.__enter__()  # a run that is killed: the line tables as they were, no json or csv
    first.write("a.mp4", _pred("a.mp4"), None)
    first.write("bad.mp4", None, "cannot decode")
    first.write("c.mp4", _pred("c.mp4", "sad"), None)
    first._close_lines()
    with open(paths["jsonl"], "a") as f:
        f.write('{"path": "d.mp4", "sta')  # the kill cut the last line
    with open(paths["frames"], "a") as f:
        f.write("d.mp4,ok,,1,True,0.0")
    again = PredictionTables(LABELS, **paths, resume=True)
    assert list(again.answered) == ["a.mp4", "c.mp4"]
    with again:
        for name in ("bad.mp4", "d.mp4", "e.mp4"):  # what a rerun does: the rest only
            if name not in again.answered:
                again.write(name, _pred(name), None)
    lines = [json.loads(x) for x in paths["jsonl"].read_text().splitlines()]
    order = ["a.mp4", "c.mp4", "bad.mp4", "d.mp4", "e.mp4"]
    assert [x["path"] for x in lines] == order and all(x["status"] == "ok" for x in lines)  # each once
    assert [r["path"] for r in json.loads(paths["json"].read_text())] == order
    assert [r["path"] for r in _csv(paths["csv"])] == order and _csv(paths["csv"])[1]["label"] == "sad"
    frame_paths = [r["path"] for r in _csv(paths["frames"])]
    assert frame_paths == [p for p in order for _ in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.frames", "t.json", "t.jsonl"]


def test_resume_from_the_frame_rows_alone_redoes_the_last_input(tmp_path):
    frames = tmp_path / "f.csv"
    with PredictionTables(LABELS, frames=frames) as t:
        for name in ("a.mp4", "b.mp4", "c.mp4"):
            t.write(name, _pred(name), None)
    again = PredictionTables(LABELS, frames=frames, resume=True)
    assert list(again.answered) == ["a.mp4", "b.mp4"]  # c's rows may have been cut short by a kill
    with again:
        again.write("c.mp4", _pred("c.mp4"), None)
    assert [r["path"] for r in _csv(frames)] == [p for p in ("a.mp4", "b.mp4", "c.mp4") for _ in range(4)]
    with pytest.raises(OutputError, match="columns are not this run's"):
        PredictionTables(["angry"], frames=frames, resume=True)


def test_resume_and_stdout_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="--jsonl or --frames-csv"):
        PredictionTables(LABELS, csv=tmp_path / "a.csv", resume=True)
    with pytest.raises(ConfigError, match="--json or --csv reads"):
        PredictionTables(LABELS, frames=tmp_path / "f.csv", json=tmp_path / "a.json", resume=True)
    with pytest.raises(ConfigError, match="standard output"):
        PredictionTables(LABELS, jsonl="-", resume=True)
    with pytest.raises(ConfigError, match="only one table"):
        PredictionTables(LABELS, jsonl="-", json="-")
    (tmp_path / "x.jsonl").write_text('{"path": "a", "status": "ok"}\nnot json\n')
    with pytest.raises(OutputError, match="line 2: not a prediction record.*not resuming"):
        PredictionTables(LABELS, jsonl=tmp_path / "x.jsonl", resume=True)


def test_load_predictions_reads_every_shape(tmp_path):
    one = {"path": "a.mp4", "status": "ok", "label": "happy"}
    (tmp_path / "old.json").write_text(json.dumps(one))  # what --json wrote for one input before
    (tmp_path / "new.json").write_text(json.dumps([one]))
    (tmp_path / "run.jsonl").write_text(json.dumps(one) + "\n" + '{"path": "b.mp4", "sta')
    for name in ("old.json", "new.json", "run.jsonl"):
        assert load_predictions(tmp_path / name) == [one], name
    (tmp_path / "bad.jsonl").write_text('{"path": "a"}\n[1]\n{"path": "b"}\n')
    with pytest.raises(OutputError, match="line 2"):
        load_predictions(tmp_path / "bad.jsonl")


def test_output_names_keep_the_suffix_only_where_stems_clash(tmp_path):
    files = [tmp_path / "a" / "clip.flv", tmp_path / "b" / "clip.flv", tmp_path / "a" / "clip.mp4"]
    names = output_names(files)
    assert names == {files[0]: Path("a/clip.flv"), files[1]: Path("b/clip"), files[2]: Path("a/clip.mp4")}
    assert output_names([]) == {}
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").symlink_to("a.jpg")  # a link and its target: a report each
    assert output_names([tmp_path / "a.jpg", tmp_path / "b.jpg"]) == {
        tmp_path / "a.jpg": Path("a"),
        tmp_path / "b.jpg": Path("b"),
    }
