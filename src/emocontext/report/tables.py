"""Prediction tables: the JSON record of one prediction, and the files of a batch run.

Every input gets its row(s), failed inputs included (``status: error`` and the message), so a table
always accounts for every input, under the path as given. :class:`PredictionTables` writes them:

* ``jsonl`` (one :func:`prediction_json` record a line, UTF-8) and ``frames`` (one CSV row per person per
  sampled frame) are written as each input finishes, each line whole in the file at once
  (:class:`~emocontext.outputs.LineWriter`): a crash or a ``kill -9`` keeps every answer given before it.
* ``json`` (a list of records, one per input, always a list) and ``csv`` (one row per input) are written
  whole, atomically, when the run ends.
* ``resume=True`` continues an interrupted run: the inputs the earlier ``jsonl`` (else ``frames``) answers
  with ``status: ok`` are skipped and their lines kept; failed inputs are retried (their lines dropped);
  a line cut off by the kill is dropped. ``json`` and ``csv`` then hold the earlier records read back from
  the ``jsonl`` and the new ones, so a rerun ends with every input exactly once in every table.

Any path may be ``"-"`` (standard output; one of them at most), a symlink (its target is written) or a
pipe (written as it goes); see :mod:`emocontext.outputs`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..outputs import STDOUT, LineWriter, atomic_write_text, read_lines

__all__ = [
    "CSV_COLUMNS",
    "FRAME_COLUMNS",
    "PredictionTables",
    "csv_row",
    "load_predictions",
    "output_names",
    "prediction_json",
]

#: The first columns of the ``csv`` table; then ``person_<id>_label`` and ``person_<id>_confidence`` for every
#: person id found in the run, then ``p_<emotion>`` for every emotion.
CSV_COLUMNS = [
    "path",
    "status",
    "error",
    "label",
    "confidence",
    "frames",
    "frames_with_face",
    "persons",
    "subject_id",
]
#: The first columns of the ``frames`` table (one row per person per sampled frame); then ``p_<emotion>``.
FRAME_COLUMNS = ["path", "status", "error", "person_id", "subject", "timestamp", "face_present"]
FRAME_COLUMNS += ["x1", "y1", "x2", "y2", "source", "label", "lambda_face"]


def prediction_json(path: str, pred, error: str | None) -> dict:
    """The JSON record of one input: ``pred.to_dict()`` (with ``status``/``error`` if it failed), or an error row."""
    if pred is None:
        return {"path": path, "status": "error", "error": error}
    d = pred.to_dict()
    d["path"] = path
    if error:
        d.update(status="error", error=error)
    return d


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


def _one_line(error: str | None) -> str:
    """An error message on one CSV line (multi-line messages joined with `` / ``; nothing dropped)."""
    return " / ".join(part.strip() for part in (error or "").splitlines() if part.strip())


def csv_row(record: dict) -> dict:
    """The ``csv`` row of one :func:`prediction_json` record: :data:`CSV_COLUMNS`, every person's label and
    confidence flattened (``person_1_label``, ``person_1_confidence``, ...) and ``p_<emotion>``."""
    row = {"path": record["path"], "status": record.get("status", "ok"), "error": _one_line(record.get("error"))}
    if "label" not in record:  # an input that failed before any prediction
        return row
    conf = record.get("confidence")
    row.update(
        label=record.get("label") or "",
        confidence="" if conf is None else f"{conf:.4f}",
        frames=record.get("num_frames", ""),
        frames_with_face=record.get("frames_with_face", ""),
        persons=len(record.get("persons") or []),
        subject_id="" if record.get("subject_id") is None else record["subject_id"],
    )
    for person in record.get("persons") or []:
        k, c = person["person_id"], person.get("confidence")
        row[f"person_{k}_label"] = person.get("label") or ""
        row[f"person_{k}_confidence"] = "" if c is None else f"{c:.4f}"
    row.update({f"p_{k}": f"{v:.4f}" for k, v in (record.get("probabilities") or {}).items()})
    return row


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def _csv_text(rows: list[dict], labels: list[str]) -> str:
    """The ``csv`` table: a header with every column some row has (persons in id order), then the rows."""
    ids = sorted({int(k.split("_")[1]) for r in rows for k in r if k.startswith("person_")})
    people = [f"person_{i}_{part}" for i in ids for part in ("label", "confidence")]
    seen = {k for r in rows for k in r if k.startswith("p_")}
    probs = [f"p_{k}" for k in labels] + sorted(seen - {f"p_{k}" for k in labels})
    columns = CSV_COLUMNS + people + probs
    return _csv_line(columns) + "".join(_csv_line([r.get(c, "") for c in columns]) for r in rows)


def _frame_lines(path: str, pred, error: str | None, columns: list[str]) -> str:
    """The ``frames`` rows of one input (one row with its status alone when it has no frame)."""
    base = {"path": path, "status": "error" if error else "ok", "error": _one_line(error)}
    lines = []
    for r in (list(pred.frame_rows()) if pred is not None else []) or [{}]:
        row = {**base, **{k: v for k, v in r.items() if k != "path"}}
        lines.append(_csv_line(["" if row.get(c) is None else row[c] for c in columns]))
    return "".join(lines)


class PredictionTables:
    """The output tables of one batch run; any of them None is not written.

    Construct (reads an earlier run's files with ``resume``, writes nothing), then use as a context manager:
    entering starts the line tables, :meth:`write` adds one input, leaving writes ``json`` and ``csv`` (also
    on Ctrl-C, with the inputs answered so far; not after another error). See the module docstring.

    Args:
        labels: the model's emotion names (the ``p_<emotion>`` columns, in this order).
        json, jsonl, csv, frames: the files (``"-"``: standard output).
        resume: continue the run that wrote ``jsonl`` (else ``frames``): :attr:`answered` lists what to skip.

    Attributes:
        answered: ``{path: record}`` of the inputs an earlier run answered (``status: ok``), in its order;
            empty without ``resume``.

    Raises:
        ConfigError: two tables on standard output; ``resume`` without ``jsonl`` or ``frames`` to read, with
            one on standard output, or with ``json``/``csv`` but no ``jsonl`` (their earlier records are read
            from it).
        OutputError: an earlier file cannot be read back (a line that is not a record, other columns).
    """

    def __init__(
        self,
        labels: list[str],
        *,
        json: Path | str | None = None,
        jsonl: Path | str | None = None,
        csv: Path | str | None = None,
        frames: Path | str | None = None,
        resume: bool = False,
    ):
        self.labels = list(labels)
        self.paths = {"json": json, "jsonl": jsonl, "csv": csv, "frames": frames}
        given = {k: str(v) for k, v in self.paths.items() if v is not None}
        on_stdout = [k for k, v in given.items() if v == STDOUT]
        if len(on_stdout) > 1:
            raise ConfigError(f"only one table can go to standard output (-): {', '.join(on_stdout)} both ask for it")
        self.frame_columns = FRAME_COLUMNS + [f"p_{k}" for k in self.labels]
        self.answered: dict[str, dict] = {}
        self._keep: dict[str, list[str]] = {"jsonl": [], "frames": [_csv_line(self.frame_columns)]}
        if resume:
            self._read_earlier_run(on_stdout)
        self._lines: dict[str, LineWriter] = {}
        self._records: list[dict] | None = [] if json is not None else None
        self._rows: list[dict] | None = [] if csv is not None else None

    @property
    def to_stdout(self) -> bool:
        """One of the tables goes to standard output (what is for people then goes to stderr)."""
        return any(str(v) == STDOUT for v in self.paths.values() if v is not None)

    def _read_earlier_run(self, on_stdout: list[str]) -> None:
        jsonl, frames = self.paths["jsonl"], self.paths["frames"]
        if jsonl is None and frames is None:
            raise ConfigError("--resume reads the answers of the earlier run from --jsonl or --frames-csv: give one")
        if on_stdout:
            raise ConfigError(f"--resume cannot read back the {on_stdout[0]} table from standard output (-)")
        if jsonl is None and (self.paths["json"] is not None or self.paths["csv"] is not None):
            raise ConfigError("--resume with --json or --csv reads their earlier records from --jsonl: give --jsonl")
        by_path: dict[str, list[str]] = {}
        if frames is not None:
            by_path = self._earlier_frames(frames)
        if jsonl is not None:
            for n, line in enumerate(read_lines(jsonl), 1):
                try:
                    record = _record(line, f"{jsonl}, line {n}")
                except OutputError as e:
                    raise OutputError(f"{e}; not resuming: name a new file, or fix the line") from None
                path = record["path"]
                if record.get("status") != "ok" or path in self.answered:
                    continue  # failed: retried; a repeat: kept once
                if frames is not None and path not in by_path:
                    continue  # killed between its frame rows and its line: redone for both
                self.answered[path] = record if self.paths["json"] is not None else _without_frames(record)
                self._keep["jsonl"].append(line)
        else:  # the frame rows alone: the last input's rows may be cut short, so it is redone
            last = next(reversed(by_path), None)
            for path, rows in by_path.items():
                if path != last and all(_csv_status(r) == "ok" for r in rows):
                    self.answered[path] = {"path": path, "status": "ok"}
        for path in self.answered:
            self._keep["frames"] += by_path.get(path, [])

    def _earlier_frames(self, frames) -> dict[str, list[str]]:
        """The earlier ``frames`` rows by input path, in file order (the rows of one input are consecutive)."""
        lines = read_lines(frames)
        if not lines:
            return {}
        if lines[0] != self._keep["frames"][0]:
            raise OutputError(
                f"{frames}: its columns are not this run's ({lines[0].strip()[:200]}); another model's emotions? "
                "Resume with the options of the earlier run, or name a new file"
            )
        by_path: dict[str, list[str]] = {}
        for line in lines[1:]:
            (row,) = list(csv.reader([line]))
            by_path.setdefault(row[0], []).append(line)
        return by_path

    def __enter__(self) -> PredictionTables:
        try:
            for kind in ("frames", "jsonl"):
                if self.paths[kind] is not None:
                    self._lines[kind] = LineWriter(self.paths[kind], self._keep[kind])
        except BaseException:
            self._close_lines()
            raise
        for record in self.answered.values():
            self._add(record)
        return self

    def _add(self, record: dict) -> None:
        if self._records is not None:
            self._records.append(record)
        if self._rows is not None:
            self._rows.append(csv_row(record))

    def write(self, path: str, pred, error: str | None) -> None:
        """Add one input: its frame rows, then its JSON line (so a JSON line means its frame rows are whole)."""
        if "frames" in self._lines:
            self._lines["frames"].write(_frame_lines(path, pred, error, self.frame_columns))
        record = prediction_json(path, pred, error)
        if "jsonl" in self._lines:
            self._lines["jsonl"].write(_dumps(record) + "\n")
        self._add(record)

    def _close_lines(self) -> None:
        lines, self._lines = self._lines, {}
        for writer in lines.values():
            writer.close()

    def __exit__(self, kind, value, tb) -> None:
        try:
            self._close_lines()
        finally:
            if kind is None or issubclass(kind, KeyboardInterrupt):
                if self._rows is not None:
                    atomic_write_text(self.paths["csv"], _csv_text(self._rows, self.labels))
                if self._records is not None:
                    atomic_write_text(self.paths["json"], json.dumps(self._records, indent=2, ensure_ascii=False))


def _record(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise OutputError(f"{where}: not a prediction record (a JSON object with a path)")
    return record


def _csv_status(line: str) -> str:
    (row,) = list(csv.reader([line]))
    return row[1] if len(row) > 1 else ""


def _without_frames(record: dict) -> dict:
    """A record without its per-frame lists (what the ``csv`` table needs): memory stays small on long runs."""
    slim = {k: v for k, v in record.items() if k != "frames"}
    if "persons" in slim:
        slim["persons"] = [{k: v for k, v in p.items() if k != "frames"} for p in slim["persons"]]
    return slim


def load_predictions(path: str | Path) -> list[dict]:
    """The records of a ``--json`` or ``--jsonl`` file, as a list: reads the list that ``--json`` writes, the
    single object earlier versions wrote for one input, and JSON lines (a last line cut off by a crash is
    left out).

    Raises:
        OutputError: the file cannot be read or holds none of these.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OutputError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        lines = text.split("\n")
        records = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(_record(line, f"{path}, line {n}"))
            except OutputError:
                if n < len(lines):  # only the last line may be cut off
                    raise
        return records
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        return [data]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return data
    raise OutputError(f"{path}: not a list of prediction records")


def output_names(files: list[Path]) -> dict[Path, Path]:
    """Each input's output name: its path relative to the inputs' common folder, without the suffix.

    ``a/clip.flv``, ``b/clip.flv`` and ``a/clip.mp4`` give ``a/clip.flv``, ``b/clip``, ``a/clip.mp4``: the suffix
    is kept where two inputs of one folder share a stem, so reports and annotated videos never collide. Paths
    are taken as given (made absolute, symlinks not followed), so a link and its target get a name each.
    """
    if not files:
        return {}
    absolute = [Path(os.path.abspath(f)) for f in files]
    common = Path(os.path.commonpath([str(f.parent) for f in absolute]))
    rels = {f: r.relative_to(common) for f, r in zip(files, absolute, strict=True)}
    stems = Counter(r.with_suffix("") for r in rels.values())
    return {f: (r if stems[r.with_suffix("")] > 1 else r.with_suffix("")) for f, r in rels.items()}
