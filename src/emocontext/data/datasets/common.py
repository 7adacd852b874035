"""What the dataset readers share: listing media files and class folders, reading CSVs, split names, checks."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ...errors import ManifestError
from ...labels import LabelSet, canonical
from ..manifest import ClipEntry, Manifest, raise_rows

__all__ = [
    "SPLIT_NAMES",
    "class_folders",
    "dataset_dir",
    "finish",
    "media_files",
    "read_csv",
    "split_name",
    "subdirs",
]


def media_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """Files directly in ``folder`` with one of ``suffixes`` (case-insensitive), sorted; hidden files skipped."""
    return sorted(
        f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in suffixes
    )


def subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def class_folders(
    folders: Iterable[Path], label_set: LabelSet, suffixes: set[str], name: str
) -> list[tuple[Path, str, Path, list[Path]]]:
    """``(parent, canonical label, class folder, media files)`` for each sub-folder of each of ``folders``
    that holds media files directly.

    Sub-folders without media files directly inside are ignored (e.g. AFEW's ``AlignedFaces_LBPTOP_Points``).

    Raises:
        ManifestError: sub-folders with media files whose name is not a label of ``label_set``, all listed
            in one error.
    """
    found, unknown = [], []
    for folder in folders:
        for d in subdirs(folder):
            files = media_files(d, suffixes)
            if not files:
                continue
            label = canonical(d.name)
            if label in label_set.names:
                found.append((folder, label, d, files))
            else:
                unknown.append(f"{d} ({len(files)} files)")
    raise_rows(
        name,
        "folders whose name is not an emotion",
        unknown,
        f" of {label_set.name} ({', '.join(label_set.names)}; dataset spellings such as Anger, Sadness are accepted)",
    )
    return found


def finish(
    entries: list[ClipEntry],
    label_set: LabelSet | None,
    name: str,
    *,
    check_files: bool = True,
    lines: list[int] | None = None,
) -> Manifest:
    """Check that clip ids are unique, then build and validate the manifest (``lines``: each entry's CSV line,
    for messages)."""
    counts = Counter(e.clip_id for e in entries)
    dup = [f"{cid} ({n} times)" for cid, n in counts.items() if n > 1]
    raise_rows(name, "duplicate clip ids", dup)
    return Manifest(entries, label_set=label_set, name=name, lines=lines).validate(check_files=check_files)


def dataset_dir(root: str | Path, name: str, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{name}: {root} is not a folder (expected layout: {layout})")
    return root.resolve()


SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def split_name(value: str | None) -> str | None:
    """``"Training"`` -> ``"train"``, ``"validation"``/``"dev"`` -> ``"val"``, ``""`` -> None; KeyError if unknown."""
    if value is None or not value.strip():
        return None
    return SPLIT_NAMES[value.strip().lower()]


def read_csv(path: Path, name: str, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV with a header (column names stripped and lower-cased; a UTF-8 BOM is tolerated).

    Each row also has the key ``"_line"``: its line number in the file (1 = header), for error messages.
    Blank rows are skipped; short rows are padded with ``""``.
    """
    if not path.is_file():
        raise ManifestError(f"{name}: no such file {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ManifestError(
                f"{name}: {path} needs a header with the columns {', '.join(required)}; "
                f"missing {', '.join(missing)} (header: {', '.join(header) or 'none'})"
            )
        rows = []
        for row in reader:
            values = [v.strip() for v in row]
            if any(values):
                row_dict = dict(zip(header, values + [""] * (len(header) - len(values)), strict=False))
                rows.append({**row_dict, "_line": str(reader.line_num)})
        return rows
