"""The terminal tables of ``emocontext predict`` (report/console.py)."""

from __future__ import annotations

from rich.console import Console

from emocontext.report.console import predictions_table


def _render(table) -> str:
    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 - closed with the console
    console.print(table)
    return console.export_text()


def test_folder_table_names_files_relative_to_their_common_folder():
    deep = "/data/lab/projects/emotion/recordings/2026"
    records = [(f"{deep}/a.mp4", None, "corrupt"), (f"{deep}/session 2/b.mp4", None, "no video stream")]
    text = _render(predictions_table(records))
    assert f"2 files (2 failed) in {deep}" in text
    assert "session 2/b.mp4" in text and "a.mp4" in text
    assert text.count(deep) == 1  # once, in the title: each row fits on its line
    assert max(map(len, text.splitlines())) <= 100


def test_paths_as_given_when_nothing_is_shared():
    text = _render(predictions_table([("a.mp4", None, "x"), ("/abs/b.mp4", None, "y")]))
    assert "2 files (2 failed)\n" in text or "2 files (2 failed) " in text
    assert "/abs/b.mp4" in text and " in " not in text.splitlines()[0]


def test_file_names_stay_whole_in_an_80_column_terminal():
    # a folder of CREMA-D-like names: the name column must not be squeezed by the narrow ones beside it
    names = [f"crema-d/1001_DFA_{e}_XX.flv" for e in ("ANG", "DIS", "FEA")] + ["unlabeled/face_noface.mov"]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 - closed with the console
    console.print(predictions_table([(f"/videos/{n}", None, "corrupt") for n in names]))
    text = console.export_text()
    assert all(n in text for n in names), text
    assert max(map(len, text.splitlines())) <= 80
