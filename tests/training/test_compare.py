"""The comparison table (the training and the ensemble run end to end in tests/training/test_fit.py)."""

from __future__ import annotations

from emocontext.training.compare import compare_table


def _summary(model: str, parameters: int, speed: float | None, precision: float, mean_ap: float, acc: float) -> dict:
    return {
        "model": model,
        "parameters": parameters,
        "clips_per_second": speed,
        "median": {
            part: {"macro_precision": precision, "macro_map": mean_ap, "accuracy": acc} for part in ("val", "test")
        },
    }


def test_compare_table_rows_and_note():
    """MEC's macro precision first, the mean average precision beside it (issue 25), then accuracy."""
    summaries = [
        _summary("face_rnn", 1234567, 812.4, 0.3125, 0.41234, 0.5),
        _summary("ensemble(a b)", 10, None, 0.75, 0.5, 0.25),
    ]
    text = compare_table(summaries, "test", "\nnote\n")
    lines = text.splitlines()
    assert lines[0] == (
        "| model | parameters | test (held out) macro precision | test (held out) mAP | test (held out) accuracy "
        "| train clips/s |"
    )
    assert lines[2] == "| face_rnn | 1,234,567 | 0.3125 | 0.4123 | 0.5000 | 812 |"
    assert lines[3] == "| ensemble(a b) | 10 | 0.7500 | 0.5000 | 0.2500 | - |"
    assert text.endswith("\nnote\n")
    assert "val (selection set: optimistic) macro precision" in compare_table(summaries, "val", "")
