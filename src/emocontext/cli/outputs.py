"""What ``emocontext predict`` writes, in one place (:class:`PredictOutputs`).

The --jsonl, --csv and --frames-csv tables and the --json file of a run. Every input is written
here and only here, so that a change to how outputs are written (a target, a format) is made once.
"""

from __future__ import annotations

import json

__all__ = ["PredictOutputs"]


class PredictOutputs:
    """Every file ``predict`` writes, in this one place: a row of --jsonl, --csv and --frames-csv as each input
    is answered (failed ones too), then --json (one object for one input file, else a list) at the end.

    A context manager: leaving it with an error keeps no partial --json (the tables keep what was written).
    """

    def __init__(self, json_out, jsonl, csv_out, frames_csv, labels: list[str], single: bool):
        from ..report.tables import PredictionTable

        self.json_out, self.single = json_out, single
        self.records: list[tuple[str, object, str | None]] = []
        self.tables = [
            PredictionTable(jsonl, "jsonl", labels),
            PredictionTable(csv_out, "csv", labels),
            PredictionTable(frames_csv, "frames", labels),
        ]

    def __enter__(self) -> PredictOutputs:
        return self

    def write(self, path: str, pred, problem: str | None) -> None:
        """One input's answer (``pred``) or its failure (``problem``), to every table."""
        self.records.append((path, pred, problem))
        for table in self.tables:
            table.write(path, pred, problem)

    def __exit__(self, kind, value, tb) -> None:
        for table in self.tables:
            table.__exit__(kind, value, tb)
        if kind is None and self.json_out:
            from ..outputs import atomic_write_text
            from ..report.tables import prediction_json

            payload = [prediction_json(p, pred, e) for p, pred, e in self.records]
            atomic_write_text(self.json_out, json.dumps(payload[0] if self.single else payload, indent=2))
