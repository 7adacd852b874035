"""Prediction tables: the JSON record of one prediction, the JSON lines / CSV / per-frame CSV files of many.

Every input gets its row(s), failed inputs included (``status: error`` and the message), so a table
always accounts for every file. Files are written atomically (:class:`~emocontext.outputs.AtomicFile`).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

from ..outputs import AtomicFile, output_error

__all__ = ["PredictionTable", "output_names", "prediction_json"]


def prediction_json(path: str, pred, error: str | None) -> dict:
    """The JSON record of one input: ``pred.to_dict()`` (with ``status``/``error`` if it failed), or an error row."""
    if pred is None:
        return {"path": path, "status": "error", "error": error}
    d = pred.to_dict()
    if error:
        d.update(status="error", error=error)
    return d


class PredictionTable:
    """One output table written atomically; every input gets its row(s).

    ``kind``: ``"jsonl"`` (one :func:`prediction_json` a line), ``"csv"`` (one row per input: label,
    confidence, persons, one ``p_<label>`` column per label) or ``"frames"`` (one row per person per
    sampled frame). With ``path`` None the table is off and :meth:`write` does nothing.

    The file appears under its name when the run ends (a temporary file until then; Ctrl-C keeps the rows
    written so far). Failed inputs get ``status: error`` and their message.
    """

    def __init__(self, path: Path | None, kind: str, labels: list[str]):
        self.kind, self.labels = kind, labels
        self.file = AtomicFile(path) if path else None
        self.writer = None
        if self.file and kind in ("csv", "frames"):
            if kind == "csv":
                cols = ["path", "status", "error", "label", "confidence", "frames", "frames_with_face", "persons"]
            else:
                cols = ["path", "status", "error", "person_id", "subject", "timestamp", "face_present"]
                cols += ["x1", "y1", "x2", "y2", "source", "label", "lambda_face"]
            self.writer = csv.DictWriter(self.file.handle, fieldnames=cols + [f"p_{k}" for k in labels])
            self.writer.writeheader()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if self.file:
            self.file.__exit__(kind, value, tb)

    def write(self, path: str, pred, error: str | None) -> None:
        if not self.file:
            return
        status = "error" if error else "ok"
        if self.kind == "jsonl":
            self.file.write(json.dumps(prediction_json(path, pred, error)) + "\n")
            return
        base = {"path": path, "status": status, "error": error or ""}
        if self.kind == "csv":
            row = dict(base)
            if pred is not None:
                persons = [
                    {"person_id": p.person_id, "label": p.label, "confidence": p.confidence} for p in pred.persons
                ]
                row.update(
                    label=pred.label or "",
                    confidence="" if pred.confidence is None else f"{pred.confidence:.4f}",
                    frames=pred.num_frames,
                    frames_with_face=pred.frames_with_face,
                    persons=json.dumps(persons),
                    **{
                        f"p_{k}": f"{v:.4f}"
                        for k, v in pred.probabilities.items()
                        if f"p_{k}" in self.writer.fieldnames
                    },
                )
            self._row(row)
        else:
            rows = list(pred.frame_rows()) if pred is not None else []
            for r in rows or [{}]:
                self._row({**base, **{k: ("" if v is None else v) for k, v in r.items() if k != "path"}})

    def _row(self, row: dict) -> None:
        try:
            self.writer.writerow({k: row.get(k, "") for k in self.writer.fieldnames})  # unknown keys dropped
            self.file.handle.flush()
        except OSError as e:
            self.file.discard()
            raise output_error(self.file.path, e) from None


def output_names(files: list[Path]) -> dict[Path, Path]:
    """Each input's output name: its path relative to the inputs' common folder, without the suffix.

    ``a/clip.flv``, ``b/clip.flv`` and ``a/clip.mp4`` give ``a/clip.flv``, ``b/clip``, ``a/clip.mp4``: the suffix
    is kept where two inputs of one folder share a stem, so reports and annotated videos never collide.
    """
    if not files:
        return {}
    resolved = [f.resolve() for f in files]
    common = Path(os.path.commonpath([str(f.parent) for f in resolved]))
    rels = {f: r.relative_to(common) for f, r in zip(files, resolved, strict=True)}
    stems = Counter(r.with_suffix("") for r in rels.values())
    return {f: (r if stems[r.with_suffix("")] > 1 else r.with_suffix("")) for f, r in rels.items()}
