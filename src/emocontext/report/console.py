"""Predictions on the terminal: the rich tables ``emocontext predict`` prints (the caller prints them)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from ..inference import Prediction

__all__ = ["prediction_summary", "predictions_table"]


def prediction_summary(pred: Prediction) -> list[RenderableType]:
    """What ``emocontext predict FILE`` prints: the emotion table (or a no-face line), then the persons if several."""
    name = escape(Path(pred.path).name)
    face_note = f"{pred.frames_with_face}/{pred.num_frames} sampled frames had a face"
    if pred.label is None:
        return [f"[bold]{name}[/]: [yellow]no face found[/] ({face_note}); no emotion predicted"]
    caption = f"{face_note} at {pred.fps:g} fps; model {pred.model}"
    lambdas = [f.fusion_weights["face"] for f in pred.frames if f.fusion_weights and f.face_present]
    if lambdas:
        lam = sum(lambdas) / len(lambdas)
        caption += f"\nfusion weights (mean over face frames): face {lam:.2f}, context {1 - lam:.2f}"
    who = f" (person {pred.subject_id} of {len(pred.persons)})" if len(pred.persons) > 1 else ""
    title = f"{name}{who}: [bold]{pred.label}[/] ({pred.confidence:.0%})"
    if pred.no_face:
        title += " [yellow]no face found: read from the scene alone[/]"
    table = Table(title=title, caption=caption)
    table.add_column("emotion")
    table.add_column("probability", justify="right")
    table.add_column("")
    for label, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1]):
        table.add_row(label, f"{p:.3f}", "█" * int(round(p * 30)), style="bold" if label == pred.label else None)
    parts: list[RenderableType] = [table]
    if len(pred.persons) > 1:
        people = Table(title=f"{len(pred.persons)} persons")
        for c in ("person", "emotion", "confidence", "frames with face", "seen (s)"):
            people.add_column(c, no_wrap=True)
        for p in pred.persons:
            people.add_row(
                f"{p.person_id}" + (" (subject)" if p.subject else ""),
                p.label or "-",
                "" if p.confidence is None else f"{p.confidence:.2f}",
                f"{p.frames_with_face}/{pred.num_frames}",
                "" if p.first_seen is None else f"{p.first_seen:.1f}-{p.last_seen:.1f}",
            )
        parts.append(people)
    return parts


def _relative_paths(paths: list[str]) -> tuple[str | None, list[str]]:
    """``(folder, names)``: the paths relative to the folder that holds them all (None: shown as given)."""
    if len(paths) < 2:
        return None, paths
    try:
        folder = os.path.commonpath(paths)
    except ValueError:  # absolute and relative paths mixed
        return None, paths
    if folder in ("", ".", os.sep) or folder in paths:
        return None, paths
    return folder, [os.path.relpath(p, folder) for p in paths]


def predictions_table(records: Sequence[tuple[str, Prediction | None, str | None]]) -> Table:
    """What ``emocontext predict`` prints for several files: one row per ``(path, prediction, error)``."""
    failed = sum(1 for _, _, e in records if e)
    folder, names = _relative_paths([path for path, _, _ in records])
    title = f"{len(records)} files" + (f" ({failed} failed)" if failed else "") + (f" in {folder}" if folder else "")
    # the file name must stay visible: no vertical rules, one space between columns and a two-line header leave
    # it 33 of 80 terminal columns; only longer paths fold
    table = Table(
        title=escape(title), box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False
    )
    table.add_column("file", overflow="fold")
    for c in ("status", "emotion", "confidence", "frames\nwith face", "persons"):
        table.add_column(c, no_wrap=True)
    for path, (_, r, error) in zip(names, records, strict=True):
        if r is None:
            table.add_row(escape(path), "[red]error[/]", "", "", "", "")
            continue
        table.add_row(
            escape(path),
            "[red]error[/]" if error else "ok",
            (r.label or "[yellow]no face[/]") + (" [yellow](scene only)[/]" if r.no_face and r.label else ""),
            "" if r.confidence is None else f"{r.confidence:.2f}",
            f"{r.frames_with_face}/{r.num_frames}",
            str(len(r.persons)),
        )
    return table
