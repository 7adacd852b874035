"""Which clips exist, with their labels, splits and groups: one :class:`Manifest` type.

Sits at the bottom of the data flow, above the label sets and the decoder's list of media
suffixes, below the feature layer: it imports neither torch nor the features. The dataset readers
(CAER, AFEW, CHEAVD 2.0, RAVDESS, CREMA-D, CK+, ExpW: :mod:`emocontext.data.datasets`, one module
each) all return a Manifest; :func:`map_labels` moves one to another label set.

The generic CSV format has a header and the columns ``path`` (required, relative
to the CSV's folder or absolute), ``label``, ``split``, ``group`` (e.g. subject),
``start`` and ``end`` (seconds), all optional; a manifest of labelled faces
(``face_id``, ``box`` of :class:`ClipEntry`; ExpW) adds ``face_id, x1, y1, x2, y2, score``, and a manifest of
image sequences (:class:`SequenceEntry`; CK+) adds ``frames`` (the images, joined by ``|``), so writing it with
:meth:`Manifest.to_csv` and reading it back with :meth:`Manifest.from_csv` loses nothing.
Clip ids must be unique: two rows for the same clip (the same face of the same file) are
refused, since they would be one record in a feature store.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from ..errors import ManifestError
from ..labels import LABEL_SETS, LabelSet, canonical, get_label_set, infer_label_set, label_mapping
from ..video.decode import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES

__all__ = [
    "ClipEntry",
    "FaceEntry",
    "SequenceEntry",
    "Manifest",
    "IMAGE_SUFFIXES",
    "MEDIA_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CSV_COLUMNS",
    "FACE_COLUMNS",
    "Inputs",
    "gather_paths",
    "describe_repeated",
    "describe_skipped",
    "map_labels",
    "raise_rows",
]

log = logging.getLogger(__name__)

_MAX_LISTED = 20
CSV_COLUMNS = ["path", "label", "split", "group", "start", "end"]
FACE_COLUMNS = ["face_id", "x1", "y1", "x2", "y2", "score"]


@dataclass(frozen=True)
class ClipEntry:
    """One clip: a media file, optionally a time window of it, optionally one given face of it.

    Attributes:
        path: the video or image file, as given (absolute, or relative to the working directory; a symlink is
            not resolved, so that results join back to the names given).
        label: canonical emotion name (see :func:`emocontext.labels.canonical`), or None if unlabelled.
        split: ``"train"``, ``"val"``, ``"test"`` or None.
        group: subject/actor/source id used for grouped cross-validation, or None.
        start, end: time window in seconds, or None for the whole file.
        face_id: which labelled face of a file that holds several (ExpW), as the dataset numbers them, or None.
        box: ``(x1, y1, x2, y2)`` the dataset's face box, float pixels of the file (xyxy), or None: the
            extractors then read this box in every frame instead of detecting faces.
        score: the dataset's face-detector confidence, or None.

    :meth:`Manifest.to_csv` writes face id, box and score as the columns :data:`FACE_COLUMNS`, and
    :meth:`Manifest.from_csv` reads them back.
    """

    path: str
    label: str | None = None
    split: str | None = None
    group: str | None = None
    start: float | None = None
    end: float | None = None
    face_id: int | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None

    @property
    def clip_id(self) -> str:
        """Unique id of the clip: the path, plus the window if there is one, plus ``#face<face_id>`` if set
        (faces of one image are distinct clips: feature store keys, predictions)."""
        cid = self.path
        if self.start is not None or self.end is not None:
            cid = f"{self.path}#{self.start or 0:.3f}-{'' if self.end is None else f'{self.end:.3f}'}"
        return cid if self.face_id is None else f"{cid}#face{self.face_id}"

    @property
    def files(self) -> tuple[str, ...]:
        """The media files the clip is read from: its ``path`` (the images of a :class:`SequenceEntry`)."""
        return (self.path,)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("path", "label", "split", "group", "start", "end")}


@dataclass(frozen=True)
class FaceEntry(ClipEntry):
    """A :class:`ClipEntry` for one labelled face of an image that may hold several (ExpW): ``face_id``
    defaults to 0, so :attr:`clip_id` is always ``"<path>#face<face_id>"``. The dataset readers and
    :meth:`Manifest.from_csv` give face rows as FaceEntry."""

    face_id: int | None = 0


@dataclass(frozen=True)
class SequenceEntry(ClipEntry):
    """A :class:`ClipEntry` made of still images in order (CK+ sequences): ``frames`` are the image files,
    read as consecutive sampled frames; ``path`` names the sequence (``<folder>/S010_004``, not a file) and
    is its :attr:`clip_id`. :meth:`Manifest.to_csv` writes the frames in a ``frames`` column (paths joined
    by ``|``) that :meth:`Manifest.from_csv` reads back."""

    frames: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return self.frames

    def to_dict(self) -> dict:
        return {**super().to_dict(), "frames": list(self.frames)}


def raise_rows(name: str, what: str, problems: list[str], hint: str = "") -> None:
    """One :class:`ManifestError` ``"<name>: <n> <what><hint>:"`` listing (up to 20 of) ``problems``, one a line;
    does nothing when there are none."""
    if not problems:
        return
    head = "\n  ".join(problems[:_MAX_LISTED])
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise ManifestError(f"{name}: {len(problems)} {what}{hint}:\n  {head}{more}")


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


def duplicate_clip_ids(entries: Iterable[ClipEntry], lines: list[int] | None = None) -> list[str]:
    """``"<clip id> (rows 3, 7)"`` for every clip id that occurs more than once (rows count from 1), or
    ``(lines 4, 8)`` with the entries' CSV ``lines``."""
    rows: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        rows.setdefault(e.clip_id, []).append(lines[i] if lines else i + 1)
    what = "lines" if lines else "rows"
    return [f"{cid} ({what} {', '.join(map(str, r))})" for cid, r in rows.items() if len(r) > 1]


@dataclass
class Manifest:
    """An ordered list of :class:`ClipEntry` with the label set their labels belong to.

    ``lines``: the line of its CSV file each entry was read from (:meth:`from_csv`, the readers of CSV
    datasets), for messages; None otherwise, and messages then number the rows from 1 (:meth:`where`).
    """

    entries: list[ClipEntry]
    label_set: LabelSet | None = None
    name: str = "manifest"
    extra: dict = field(default_factory=dict)
    lines: list[int] | None = None

    def where(self, i: int) -> str:
        """How messages name entry ``i``: ``"line 5"`` (its CSV line) or ``"row 3"`` (counting from 1)."""
        return f"line {self.lines[i]}" if self.lines else f"row {i + 1}"

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ClipEntry]:
        return iter(self.entries)

    def __getitem__(self, i: int) -> ClipEntry:
        return self.entries[i]

    def split(self, name: str) -> Manifest:
        """The entries of one split (``"train"``, ``"val"``, ``"test"``)."""
        keep = [i for i, e in enumerate(self.entries) if e.split == name]
        return replace(
            self, entries=[self.entries[i] for i in keep], lines=[self.lines[i] for i in keep] if self.lines else None
        )

    def label_ids(self) -> list[int]:
        """Class ids of the labels in ``label_set`` order; raises ManifestError on unlabelled entries."""
        if self.label_set is None:
            raise ManifestError(f"{self.name}: no label set")
        missing = [e.path for e in self.entries if e.label is None]
        if missing:
            raise ManifestError(f"{self.name}: {len(missing)} unlabelled entries, e.g. {missing[:3]}")
        return [self.label_set.index(e.label) for e in self.entries]

    def validate(self, *, check_files: bool = True) -> Manifest:
        """Check labels against the label set and that files exist; one error listing every offending row
        (:meth:`where`: CSV lines, or rows counted from 1)."""
        problems = []
        for i, e in enumerate(self.entries):
            if e.label is not None and self.label_set is not None and e.label not in self.label_set.names:
                problems.append(f"{self.where(i)}: unknown label {e.label!r} ({e.path})")
            for f in e.files if check_files else ():
                if not Path(f).is_file():
                    problems.append(f"{self.where(i)}: missing file {f}")
        known = f" (label set {self.label_set.name}: {', '.join(self.label_set.names)})" if self.label_set else ""
        raise_rows(self.name, "bad rows", problems, known)
        return self

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | Path],
        *,
        recursive: bool = True,
        skipped: list[Path] | None = None,
        repeated: list[Path] | None = None,
    ) -> Manifest:
        """Unlabelled manifest of files and folders: every input as given, in the order given.

        A file is listed under the path given (a relative path stays relative; a symlink is not resolved). A
        folder is replaced by the media files in it and in its sub-folders (symlinked ones followed, loops
        skipped; ``recursive=False``: the folder itself only), sorted, each named through the folder as given
        (``videos/a.mp4``). Two names of one file (``b.jpg -> a.jpg``) are two entries. One name given twice
        (an argument repeated, or a file named alone and through its folder) is one entry; the repeats go to
        ``repeated`` if given (:func:`describe_repeated` words them). Missing files are kept: the decoder
        reports them one by one.

        ``skipped``, if given, receives the other files of those folders (audio, text; hidden files aside),
        from the same walk.

        Raises:
            ManifestError: a folder holds no media file.
        """
        entries, seen = [], set()
        for p in map(Path, paths):
            if p.is_dir():
                found, other = _walk(p, recursive)
                if skipped is not None:
                    skipped += other
                if not found:
                    raise ManifestError(f"{p}: no video or image files in this folder")
            else:
                found = [p]
            for f in found:
                if str(f) in seen:
                    if repeated is not None:
                        repeated.append(f)
                    continue
                seen.add(str(f))
                entries.append(ClipEntry(str(f)))
        return cls(entries, name="files")

    @classmethod
    def from_csv(cls, path: str | Path, *, label_set: LabelSet | None = None, check_files: bool = True) -> Manifest:
        """Read the generic CSV format (see module docstring); labels are mapped to canonical names.

        Without ``label_set`` the labels must all belong to one known label set, and the smallest such set is
        taken (:func:`emocontext.labels.infer_label_set`), so a label no set knows (``joy``) is an error here,
        at reading, not when training starts. ``check_files=False`` lets missing files through (their clips
        then fail one by one, the others still run: ``extract --keep-going``).

        Raises:
            ManifestError: every bad row listed with its line: an empty path, a bad number or face box,
                an unknown label, a missing file (``check_files``); clips listed twice.
        """
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"{path}: no such manifest file")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ManifestError(f"{path}: a manifest CSV needs a header with a 'path' column")
            faces = "face_id" in reader.fieldnames
            entries, lines = [], []
            for row in reader:
                n = reader.line_num  # the file's line (line 1 is the header; a quoted field may span lines)
                where = f"{path}, line {n}"
                lines.append(n)
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
                if (row.get("frames") or "").strip():
                    frames = tuple(
                        str(f if f.is_absolute() else path.parent / f) for f in map(Path, row["frames"].split("|"))
                    )
                    entries.append(SequenceEntry(**kw, frames=frames))
                    continue
                if not faces:
                    entries.append(ClipEntry(**kw))
                    continue
                fid = _float(row, "face_id", where)
                if fid is not None and fid != int(fid):
                    raise ManifestError(f"{where}: face_id must be an integer, got {row.get('face_id')!r}")
                coords = [_float(row, k, where) for k in ("x1", "y1", "x2", "y2")]
                box = None
                if any(c is not None for c in coords):
                    if any(c is None for c in coords):
                        raise ManifestError(f"{where}: a face box needs all of x1, y1, x2, y2")
                    box = tuple(coords)
                kw.update(box=box, score=_float(row, "score", where))
                entries.append(FaceEntry(**kw, face_id=int(fid)) if fid is not None else ClipEntry(**kw))
        if label_set is None:
            label_set = _label_set_of(entries, lines, path)
        manifest = cls(entries, label_set=label_set, name=str(path), lines=lines).validate(check_files=check_files)
        dup = duplicate_clip_ids(entries, lines)
        if dup:
            raise ManifestError(
                f"{path}: {len(dup)} clips listed more than once (they would overwrite each other): "
                + "; ".join(dup[:10])
            )
        return manifest

    def to_csv(self, path: str | Path) -> None:
        """Write the generic CSV format (atomically); entries with a face id or box add the :data:`FACE_COLUMNS`.

        :meth:`from_csv` reads the file back into an equal manifest (absolute paths, canonical labels).
        """
        import io

        from ..outputs import atomic_write_text

        faces = any(e.face_id is not None or e.box is not None for e in self.entries)
        sequences = any(isinstance(e, SequenceEntry) for e in self.entries)
        columns = CSV_COLUMNS + (FACE_COLUMNS if faces else []) + (["frames"] if sequences else [])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for e in self.entries:
            row = {k: ("" if v is None else v) for k, v in e.to_dict().items()}
            if isinstance(e, SequenceEntry):
                row["frames"] = "|".join(e.frames)
            if faces:
                row["face_id"] = "" if e.face_id is None else e.face_id
                if e.box is not None:
                    row.update(zip(("x1", "y1", "x2", "y2"), (repr(float(v)) for v in e.box), strict=True))
                row["score"] = "" if e.score is None else repr(float(e.score))
            for k in ("start", "end"):
                if isinstance(row.get(k), float):
                    row[k] = repr(row[k])
            w.writerow(row)
        atomic_write_text(path, buf.getvalue())


def _walk(folder: Path, recursive: bool) -> tuple[list[Path], list[Path]]:
    """``(media files, other files)`` under ``folder``, sorted, named through ``folder`` as given.

    Symlinked sub-folders are followed, except one that leads back to a folder it is in (a loop). Other files
    are those that are not hidden.
    """
    media, other = [], []
    chains = {str(folder): [os.path.realpath(folder)]}  # each folder's real path and its ancestors'
    for root, dirs, files in os.walk(folder, followlinks=True):
        chain = chains.pop(root)
        if recursive:
            for d in list(dirs):
                real = os.path.realpath(os.path.join(root, d))
                if real in chain:
                    dirs.remove(d)  # a link back up: a loop
                else:
                    chains[os.path.join(root, d)] = [*chain, real]
        else:
            dirs.clear()
        for name in files:
            f = Path(root, name)
            if f.suffix.lower() in MEDIA_SUFFIXES:
                media.append(f)
            elif not name.startswith(".") and f.is_file():
                other.append(f)
    return sorted(media), sorted(other)


class Inputs(NamedTuple):
    """The inputs of a command line (:func:`gather_paths`).

    Attributes:
        files: ``(file, argument)`` per media file, in the order given, named as given.
        bad: ``(argument, error)`` per argument that gave no file (a folder without media).
        skipped: the files of the folders that are not video or images (audio, text; hidden files aside).
        repeated: names given more than once (each listed once in ``files``).
    """

    files: list[tuple[Path, Path]]
    bad: list[tuple[Path, str]]
    skipped: list[Path]
    repeated: list[Path]


def _label_set_of(entries: list[ClipEntry], lines: list[int], name: str | Path) -> LabelSet | None:
    """The smallest known label set that holds every label of ``entries`` (None without labels).

    Raises:
        ManifestError: labels no known set has (each row listed with its line), or no one set holds them all.
    """
    labels = {e.label for e in entries if e.label is not None}
    if not labels:
        return None
    known = {n for s in LABEL_SETS.values() for n in s.names}
    unknown = [
        f"line {n}: unknown label {e.label!r} ({e.path})"
        for e, n in zip(entries, lines, strict=True)
        if e.label is not None and e.label not in known
    ]
    raise_rows(
        str(name),
        "rows with a label no known label set has",
        unknown,
        f" (known emotions: {', '.join(sorted(known))}; give your own set as a LabelSet)",
    )
    return infer_label_set(labels)


def gather_paths(paths: Iterable[str | Path]) -> Inputs:
    """Media files of files and folders given on a command line, every one as given (:meth:`Manifest.from_paths`).

    A folder without media is an error of its own (the other arguments still count); one name given twice
    is listed once and reported in ``repeated``; the other files of a folder are returned as ``skipped``, so
    that the caller can say so rather than drop them silently.
    """
    result = Inputs([], [], [], [])
    seen: set[str] = set()
    for arg in map(Path, paths):
        try:
            entries = Manifest.from_paths([arg], skipped=result.skipped)
        except ManifestError as e:
            if str(arg) in seen:
                result.repeated.append(arg)
            else:
                seen.add(str(arg))
                result.bad.append((arg, str(e)))
            continue
        for entry in entries:
            if entry.path in seen:
                result.repeated.append(Path(entry.path))
            else:
                seen.add(entry.path)
                result.files.append((Path(entry.path), arg))
    return result


def describe_repeated(repeated: list[Path]) -> list[str]:
    """One note per name given more than once: ``a.jpg is named 2 times: analysed once``."""
    counts = Counter(str(p) for p in repeated)
    return [f"{name} is named {n + 1} times: analysed once" for name, n in counts.items()]


def describe_skipped(skipped: list[Path]) -> str:
    """One line on the files a folder run did not read: ``3 files are not video or images (.mp3: 2, .csv: 1)``."""
    counts: dict[str, int] = {}
    for f in skipped:
        key = f.suffix.lower() or "no suffix"
        counts[key] = counts.get(key, 0) + 1
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    n = len(skipped)
    return f"skipped {n} file{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not video or images ({kinds})"


def map_labels(
    manifest: Manifest, target_set: LabelSet | str, mapping: dict[str, str | None] | None = None
) -> Manifest:
    """The manifest with its labels moved to ``target_set``; entries mapped to None are dropped.

    The mapping is :func:`emocontext.labels.label_mapping`: names both sets share map to themselves,
    then the documented defaults of :data:`emocontext.labels.DEFAULT_MAPPINGS` (RAVDESS calm -> neutral,
    CK+ contempt -> dropped), then ``mapping`` (e.g. ``{"worried": None, "anxious": "fear"}`` for
    CHEAVD). Unlabelled entries are kept as they are. The result records what was done in
    ``extra["label_mapping"]``: ``{"from", "to", "mapping", "dropped": {label: count}}``.

    Raises:
        ManifestError: labels with no equivalent in ``target_set`` (e.g. CHEAVD worried/anxious to
            Ekman-7 without a mapping): one error naming them, with counts, and listing their rows;
            or mapping values that are not in ``target_set``.
    """
    target = get_label_set(target_set)
    table = label_mapping(manifest.label_set, target, mapping)
    unmapped = [(i, e) for i, e in enumerate(manifest.entries) if e.label is not None and e.label not in table]
    if unmapped:
        counts = Counter(e.label for _, e in unmapped)
        names = ", ".join(f"{k} ({n})" for k, n in counts.most_common())
        example = ", ".join(f"{k!r}: <{target.name} name or None to drop>" for k in counts)
        raise_rows(
            manifest.name,
            f"rows with labels that have no equivalent in {target.name}: {names}; pass mapping={{{example}}}",
            [f"{manifest.where(i)}: {e.label} ({e.path})" for i, e in unmapped],
        )
    entries, lines, dropped = [], [], Counter()
    for i, e in enumerate(manifest.entries):
        if e.label is not None and table[e.label] is None:
            dropped[e.label] += 1
            continue
        entries.append(e if e.label is None else replace(e, label=table[e.label]))
        lines += [manifest.lines[i]] if manifest.lines else []
    if dropped:
        log.info("%s: dropped %s for %s", manifest.name, dict(dropped), target.name)
    source = manifest.label_set.name if manifest.label_set else None
    used = {k: v for k, v in table.items() if k in {e.label for e in manifest.entries}}
    extra = {
        **manifest.extra,
        "label_mapping": {"from": source, "to": target.name, "mapping": used, "dropped": dict(dropped)},
    }
    return Manifest(entries, label_set=target, name=manifest.name, extra=extra, lines=lines or None)
