"""Which clips exist, with their labels, splits and groups: one :class:`Manifest` type.

Sits at the bottom of the data flow, above the label sets and the decoder's list of media
suffixes: it imports neither torch nor the feature layer. Dataset adapters (CAER, AFEW, CHEAVD 2.0, RAVDESS,
CREMA-D, ...) live in :mod:`emocontext.data.adapters` and all return a Manifest.

The generic CSV format has a header and the columns ``path`` (required, relative
to the CSV's folder or absolute), ``label``, ``split``, ``group`` (e.g. subject),
``start`` and ``end`` (seconds), all optional; a manifest of labelled faces
(:class:`FaceEntry`, ExpW) adds ``face_id, x1, y1, x2, y2, score``, so writing it with
:meth:`Manifest.to_csv` and reading it back with :meth:`Manifest.from_csv` loses nothing.
Clip ids must be unique: two rows for the same clip (the same face of the same file) are
refused, since they would be one record in a feature store.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ManifestError
from ..labels import LabelSet, canonical
from ..video.decode import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES

__all__ = [
    "ClipEntry",
    "FaceEntry",
    "Manifest",
    "IMAGE_SUFFIXES",
    "MEDIA_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CSV_COLUMNS",
    "FACE_COLUMNS",
]

CSV_COLUMNS = ["path", "label", "split", "group", "start", "end"]
FACE_COLUMNS = ["face_id", "x1", "y1", "x2", "y2", "score"]


@dataclass(frozen=True)
class ClipEntry:
    """One clip: a media file, optionally a time window of it.

    Attributes:
        path: absolute path of the video or image file.
        label: canonical emotion name (see :func:`emocontext.labels.canonical`), or None if unlabelled.
        split: ``"train"``, ``"val"``, ``"test"`` or None.
        group: subject/actor/source id used for grouped cross-validation, or None.
        start, end: time window in seconds, or None for the whole file.
    """

    path: str
    label: str | None = None
    split: str | None = None
    group: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def clip_id(self) -> str:
        """Unique id of the clip: the path, plus the window if there is one."""
        if self.start is None and self.end is None:
            return self.path
        return f"{self.path}#{self.start or 0:.3f}-{'' if self.end is None else f'{self.end:.3f}'}"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("path", "label", "split", "group", "start", "end")}


@dataclass(frozen=True)
class FaceEntry(ClipEntry):
    """A :class:`ClipEntry` for one labelled face of an image that may hold several (ExpW).

    Attributes (besides ClipEntry's):
        face_id: index of the face in its image, as the dataset numbers them.
        box: ``(x1, y1, x2, y2)`` face box, float pixels of the image file (xyxy).
        score: the dataset's face-detector confidence, or None.

    :attr:`clip_id` is ``"<path>#face<face_id>"``, so faces of one image are distinct clips (feature
    store keys, predictions). :meth:`Manifest.to_csv` writes face id, box and score as the columns
    :data:`FACE_COLUMNS`, and :meth:`Manifest.from_csv` reads them back as FaceEntry.
    """

    face_id: int = 0
    box: tuple[float, float, float, float] | None = None
    score: float | None = None

    @property
    def clip_id(self) -> str:
        return f"{super().clip_id}#face{self.face_id}"


def _float(row: dict, key: str, where: str) -> float | None:
    v = (row.get(key) or "").strip()
    if not v:
        return None
    try:
        x = float(v)
    except ValueError:
        raise ManifestError(f"{where}: {key} is not a number: {v!r}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise ManifestError(f"{where}: {key} is not a finite number: {v!r}")
    return x


def duplicate_clip_ids(entries: Iterable[ClipEntry]) -> list[str]:
    """``"<clip id> (rows 3, 7)"`` for every clip id that occurs more than once (rows count from 1)."""
    rows: dict[str, list[int]] = {}
    for i, e in enumerate(entries, 1):
        rows.setdefault(e.clip_id, []).append(i)
    return [f"{cid} (rows {', '.join(map(str, r))})" for cid, r in rows.items() if len(r) > 1]


@dataclass
class Manifest:
    """An ordered list of :class:`ClipEntry` with the label set their labels belong to."""

    entries: list[ClipEntry]
    label_set: LabelSet | None = None
    name: str = "manifest"
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ClipEntry]:
        return iter(self.entries)

    def __getitem__(self, i: int) -> ClipEntry:
        return self.entries[i]

    def split(self, name: str) -> Manifest:
        """The entries of one split (``"train"``, ``"val"``, ``"test"``)."""
        return replace(self, entries=[e for e in self.entries if e.split == name])

    def label_ids(self) -> list[int]:
        """Class ids of the labels in ``label_set`` order; raises ManifestError on unlabelled entries."""
        if self.label_set is None:
            raise ManifestError(f"{self.name}: no label set")
        missing = [e.path for e in self.entries if e.label is None]
        if missing:
            raise ManifestError(f"{self.name}: {len(missing)} unlabelled entries, e.g. {missing[:3]}")
        return [self.label_set.index(e.label) for e in self.entries]

    def validate(self, *, check_files: bool = True) -> Manifest:
        """Check labels against the label set and that files exist; one error listing every offending row."""
        problems = []
        for i, e in enumerate(self.entries):
            if e.label is not None and self.label_set is not None and e.label not in self.label_set.names:
                problems.append(f"row {i}: unknown label {e.label!r} ({e.path})")
            if check_files and not Path(e.path).is_file():
                problems.append(f"row {i}: missing file {e.path}")
        if problems:
            head = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            known = f" (label set {self.label_set.name}: {', '.join(self.label_set.names)})" if self.label_set else ""
            raise ManifestError(f"{self.name}: {len(problems)} bad rows{known}:\n  {head}{more}")
        return self

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], *, recursive: bool = True) -> Manifest:
        """Unlabelled manifest of files; directories are expanded to the media files inside, sorted.

        Raises:
            ManifestError: a path does not exist, or a directory holds no media file.
        """
        entries = []
        for p in map(Path, paths):
            if p.is_dir():
                found = sorted(
                    f for f in (p.rglob("*") if recursive else p.iterdir()) if f.suffix.lower() in MEDIA_SUFFIXES
                )
                if not found:
                    raise ManifestError(f"{p}: no video or image files in this folder")
                entries += [ClipEntry(str(f.resolve())) for f in found]
            else:
                # missing files are kept: the decoder reports them one by one with the others still running
                entries.append(ClipEntry(str(p.resolve()) if p.exists() else str(p)))
        return cls(entries, name="files")

    @classmethod
    def from_csv(cls, path: str | Path, *, label_set: LabelSet | None = None, check_files: bool = True) -> Manifest:
        """Read the generic CSV format (see module docstring); labels are mapped to canonical names."""
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"{path}: no such manifest file")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ManifestError(f"{path}: a manifest CSV needs a header with a 'path' column")
            faces = "face_id" in reader.fieldnames
            entries = []
            for n, row in enumerate(reader, 2):  # line 1 is the header
                where = f"{path}, line {n}"
                if not (row.get("path") or "").strip():
                    raise ManifestError(f"{where}: empty path")
                p = Path(row["path"])
                if not p.is_absolute():
                    p = path.parent / p
                start, end = _float(row, "start", where), _float(row, "end", where)
                if start is not None and end is not None and end <= start:
                    raise ManifestError(f"{where}: end ({end}) must be after start ({start})")
                kw = dict(
                    path=str(p),
                    label=canonical(row["label"]) if row.get("label") else None,
                    split=row.get("split") or None,
                    group=row.get("group") or None,
                    start=start,
                    end=end,
                )
                if faces and (row.get("face_id") or "").strip():
                    fid = _float(row, "face_id", where)
                    if fid is None or fid != int(fid):
                        raise ManifestError(f"{where}: face_id must be an integer, got {row.get('face_id')!r}")
                    coords = [_float(row, k, where) for k in ("x1", "y1", "x2", "y2")]
                    box = None
                    if any(c is not None for c in coords):
                        if any(c is None for c in coords):
                            raise ManifestError(f"{where}: a face box needs all of x1, y1, x2, y2")
                        box = tuple(coords)
                    entries.append(FaceEntry(**kw, face_id=int(fid), box=box, score=_float(row, "score", where)))
                else:
                    entries.append(ClipEntry(**kw))
        manifest = cls(entries, label_set=label_set, name=str(path)).validate(check_files=check_files)
        dup = duplicate_clip_ids(entries)
        if dup:
            raise ManifestError(
                f"{path}: {len(dup)} clips listed more than once (they would overwrite each other): "
                + "; ".join(dup[:10])
            )
        return manifest

    def to_csv(self, path: str | Path) -> None:
        """Write the generic CSV format (atomically); face entries add the :data:`FACE_COLUMNS`.

        :meth:`from_csv` reads the file back into an equal manifest (absolute paths, canonical labels).
        """
        import io

        from ..outputs import atomic_write_text

        faces = any(isinstance(e, FaceEntry) for e in self.entries)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS + (FACE_COLUMNS if faces else []), lineterminator="\n")
        w.writeheader()
        for e in self.entries:
            row = {k: ("" if v is None else v) for k, v in e.to_dict().items()}
            if isinstance(e, FaceEntry):
                row["face_id"] = e.face_id
                if e.box is not None:
                    row.update(zip(("x1", "y1", "x2", "y2"), (repr(float(v)) for v in e.box), strict=True))
                row["score"] = "" if e.score is None else repr(float(e.score))
            for k in ("start", "end"):
                if isinstance(row.get(k), float):
                    row[k] = repr(row[k])
            w.writerow(row)
        atomic_write_text(path, buf.getvalue())
