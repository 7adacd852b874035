"""One adapter per dataset: each reads a dataset's own layout and returns a validated :class:`Manifest`.

Every adapter gives canonical labels (:func:`emocontext.labels.canonical`), the dataset's label set,
its official splits where it has some (``"train"``, ``"val"``, ``"test"``, else None) and a group per
entry for grouped cross-validation (the actor/subject, or the source image; None where the dataset
names none). Paths are absolute. Problems raise :class:`~emocontext.errors.ManifestError`: one error
listing every unknown label, badly named or missing file, or, for an empty or misnamed folder, the
layout that was expected.

==========  ==================================================================  ============
name        layout                                                              label set
==========  ==================================================================  ============
caer        ``root/{train,validation,test}/<Emotion>/*.avi`` (CAER-S: images)   EKMAN7
afew        ``root/{Train_AFEW,Val_AFEW}/<Emotion>/*.avi``                      EKMAN7
cheavd      a CSV ``clip,label[,split][,subject]`` + a video folder             CHEAVD8
ravdess     ``root/Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4`` (or files in root)       RAVDESS8
crema-d     ``root/VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv`` (or root)  CREMAD6
ckplus      ``root/<class>/S<subject>_<seq>_<frame>.png`` (CK+48)               CKPLUS7
expw        ``root/images/*.jpg`` + ``labels.csv`` + ``splits.csv``             EKMAN7
csv         the generic manifest CSV (:meth:`Manifest.from_csv`)                any
==========  ==================================================================  ============

:func:`load_dataset` picks an adapter by name; :func:`map_labels` moves a manifest to another label
set with explicit, documented mappings (:data:`emocontext.labels.DEFAULT_MAPPINGS`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError, ManifestError
from ..labels import CHEAVD8, CKPLUS7, CREMAD6, EKMAN7, RAVDESS8, LabelSet, canonical, get_label_set, label_mapping
from .manifest import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES, ClipEntry, FaceEntry, Manifest

__all__ = [
    "DATASETS",
    "CKSequence",
    "FaceEntry",
    "afew",
    "caer",
    "cheavd",
    "ckplus",
    "ckplus_sequences",
    "crema_d",
    "expw",
    "generic_csv",
    "load_dataset",
    "map_labels",
    "ravdess",
]

log = logging.getLogger(__name__)

_MAX_LISTED = 20


# ----------------------------------------------------------------------------------------------- helpers


def _raise_rows(name: str, what: str, problems: list[str], hint: str = "") -> None:
    """One ManifestError listing (up to 20 of) ``problems``; does nothing when there are none."""
    if not problems:
        return
    head = "\n  ".join(problems[:_MAX_LISTED])
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise ManifestError(f"{name}: {len(problems)} {what}{hint}:\n  {head}{more}")


def _media_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """Files directly in ``folder`` with one of ``suffixes`` (case-insensitive), sorted; hidden files skipped."""
    return sorted(
        f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in suffixes
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _class_folders(
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
        for d in _subdirs(folder):
            files = _media_files(d, suffixes)
            if not files:
                continue
            label = canonical(d.name)
            if label in label_set.names:
                found.append((folder, label, d, files))
            else:
                unknown.append(f"{d} ({len(files)} files)")
    _raise_rows(
        name,
        "folders whose name is not an emotion",
        unknown,
        f" of {label_set.name} ({', '.join(label_set.names)}; dataset spellings such as Anger, Sadness are accepted)",
    )
    return found


def _finish(entries: list[ClipEntry], label_set: LabelSet | None, name: str, *, check_files: bool = True) -> Manifest:
    """Check that clip ids are unique, then build and validate the manifest."""
    counts = Counter(e.clip_id for e in entries)
    dup = [f"{cid} ({n} times)" for cid, n in counts.items() if n > 1]
    _raise_rows(name, "duplicate clip ids", dup)
    return Manifest(entries, label_set=label_set, name=name).validate(check_files=check_files)


def _dir(root: str | Path, name: str, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{name}: {root} is not a folder (expected layout: {layout})")
    return root.resolve()


_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def _split_name(value: str | None) -> str | None:
    """``"Training"`` -> ``"train"``, ``"validation"``/``"dev"`` -> ``"val"``, ``""`` -> None; KeyError if unknown."""
    if value is None or not value.strip():
        return None
    return _SPLIT_NAMES[value.strip().lower()]


def _read_csv(path: Path, name: str, required: Iterable[str]) -> list[dict[str, str]]:
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


# ------------------------------------------------------------------------------------------- CAER, AFEW

_CAER_SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}
_CAER_LAYOUT = (
    "root/{train,validation,test}/<Emotion>/*.avi for CAER, or root/{train,test}/<Emotion>/*.png|*.jpg for CAER-S, "
    "with the emotions Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise"
)


def caer(root: str | Path) -> Manifest:
    """CAER (videos) or CAER-S (images): Lee et al., "Context-Aware Emotion Recognition Networks", ICCV 2019.

    Layout: ``root/{train,validation,test}/<Emotion>/*.avi`` (CAER) or ``root/{train,test}/<Emotion>/*.png``
    (CAER-S; ``.jpg`` too), with the emotion folders Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise.
    Split folder names are case-insensitive; ``validation`` (or ``val``) becomes split ``"val"``.

    Groups: CAER names neither the TV show nor the actor of a clip, so ``group`` is None, except for
    files named ``<clip>_<frame>`` (frames extracted from one clip, as CAER-S-style exports often are):
    their group is ``"<split>/<Emotion folder>/<clip>"`` so that frames of one clip stay together in a
    grouped split.

    Returns:
        A Manifest (label set EKMAN7, name ``"caer"``).

    Raises:
        ManifestError: no split folder, no media file, or an emotion folder that is not an Ekman-7 emotion.
    """
    root = _dir(root, "caer", _CAER_LAYOUT)
    split_dirs = [(d, _CAER_SPLITS[d.name.lower()]) for d in _subdirs(root) if d.name.lower() in _CAER_SPLITS]
    if not split_dirs:
        looks_like_split = any(canonical(d.name) in EKMAN7.names for d in _subdirs(root))
        hint = " (this folder holds emotion folders: pass its parent, the folder above the split folders)"
        raise ManifestError(
            f"caer: no train/validation/test folder in {root}{hint if looks_like_split else ''}; "
            f"expected {_CAER_LAYOUT}"
        )
    split_of = dict(split_dirs)
    entries = []
    for split_dir, label, folder, files in _class_folders(split_of, EKMAN7, MEDIA_SUFFIXES, "caer"):
        for f in files:
            clip, sep, _ = f.stem.rpartition("_")
            group = f"{split_dir.name}/{folder.name}/{clip}" if sep and clip else None
            entries.append(ClipEntry(str(f), label, split_of[split_dir], group))
    if not entries:
        raise ManifestError(f"caer: no video or image files under {root}; expected {_CAER_LAYOUT}")
    return _finish(entries, EKMAN7, "caer")


_AFEW_SPLITS = {"train_afew": "train", "val_afew": "val"}
_AFEW_LAYOUT = (
    "root/Train_AFEW/<Emotion>/*.avi and root/Val_AFEW/<Emotion>/*.avi "
    "with the emotions Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise"
)


def afew(root: str | Path) -> Manifest:
    """AFEW (Acted Facial Expressions in the Wild; Dhall et al., EmotiW): the labelled train and val sets.

    Layout: ``root/Train_AFEW/<Emotion>/*.avi`` -> split ``"train"``, ``root/Val_AFEW/<Emotion>/*.avi`` ->
    ``"val"`` (folder names case-insensitive), emotions Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise.
    Sub-folders without video files directly inside (e.g. ``AlignedFaces_LBPTOP_Points``) are ignored;
    the unlabelled ``Test_AFEW`` is not read. AFEW names no actor: ``group`` is None.

    Returns:
        A Manifest (label set EKMAN7, name ``"afew"``).

    Raises:
        ManifestError: neither split folder, no video, or an emotion folder outside Ekman-7.
    """
    root = _dir(root, "afew", _AFEW_LAYOUT)
    split_dirs = [(d, _AFEW_SPLITS[d.name.lower()]) for d in _subdirs(root) if d.name.lower() in _AFEW_SPLITS]
    if not split_dirs:
        raise ManifestError(f"afew: no Train_AFEW or Val_AFEW folder in {root}; expected {_AFEW_LAYOUT}")
    split_of = dict(split_dirs)
    entries = [
        ClipEntry(str(f), label, split_of[split_dir])
        for split_dir, label, _, files in _class_folders(split_of, EKMAN7, VIDEO_SUFFIXES, "afew")
        for f in files
    ]
    if not entries:
        raise ManifestError(f"afew: no video files under {root}; expected {_AFEW_LAYOUT}")
    return _finish(entries, EKMAN7, "afew")


# ------------------------------------------------------------------------------------------------ CHEAVD


def cheavd(csv_path: str | Path, video_root: str | Path | None = None, *, check_files: bool = True) -> Manifest:
    """CHEAVD 2.0, the MEC 2017 data (Li et al., "MEC 2017: Multimodal Emotion Recognition Challenge", ACII Asia 2018).

    The release's own label files vary, so this adapter reads one documented CSV (UTF-8, header row,
    column names case-insensitive):

    - ``clip`` (required): file name or path relative to ``video_root`` (absolute paths are kept);
    - ``label`` (required column): one of the 8 CHEAVD emotions in **English** -- happy, sad, angry,
      surprise, disgust, worried, anxious, neutral (synonyms such as Happiness, Anger, Worry, Anxiety are
      accepted; Chinese names are not). An empty cell means unlabelled (e.g. the MEC test set);
    - ``split`` (optional): train / val / test (also training, validation, dev, testing; empty = None);
    - ``subject`` (optional): speaker id, used as ``group``.

    Args:
        csv_path: the CSV file.
        video_root: folder the ``clip`` paths are relative to; default the CSV's folder.
        check_files: also report clips whose file does not exist.

    Returns:
        A Manifest (label set CHEAVD8, name ``"cheavd"``).

    Raises:
        ManifestError: missing columns; unknown split values; unknown labels and missing files
            (one error listing every offending row).
    """
    csv_path = Path(csv_path)
    rows = _read_csv(csv_path, "cheavd", ["clip", "label"])
    base = Path(video_root) if video_root is not None else csv_path.parent
    entries, bad = [], []
    for row in rows:
        if not row.get("clip"):
            bad.append(f"line {row['_line']}: empty clip")
            continue
        p = Path(row["clip"])
        p = p if p.is_absolute() else base / p
        try:
            split = _split_name(row.get("split"))
        except KeyError:
            bad.append(f"line {row['_line']}: unknown split {row['split']!r} ({row['clip']})")
            continue
        label = canonical(row["label"]) if row.get("label") else None
        entries.append(ClipEntry(str(p.absolute()), label, split, row.get("subject") or None))
    _raise_rows("cheavd", "bad rows", bad, f" in {csv_path} (splits: train, val, test)")
    if not entries:
        raise ManifestError(f"cheavd: {csv_path} has no rows")
    return _finish(entries, CHEAVD8, "cheavd", check_files=check_files)


# ------------------------------------------------------------------------------------------------ RAVDESS

_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_RAVDESS_LAYOUT = "root/Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4 (e.g. 01-01-03-01-02-01-12.mp4) or such files in root"


def ravdess(root: str | Path, *, modalities: Iterable[str] | None = ("01", "02")) -> Manifest:
    """RAVDESS (Livingstone & Russo, PLoS ONE 2018): labels from the file names.

    File names code ``modality-channel-emotion-intensity-statement-repetition-actor``: modality 01 full AV,
    02 video-only, 03 audio-only; channel 01 speech, 02 song; emotion 01 neutral, 02 calm, 03 happy,
    04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised; actor 01..24. Files are found recursively
    under ``root`` (``Actor_XX/`` folders, files directly in root, or the download's nested folders);
    ``.wav`` files count too when modality 03 is kept.

    Args:
        root: the dataset folder.
        modalities: modality codes to keep; default the two video ones, ``("01", "02")``. Note that 01
            and 02 are the same recordings with and without sound: keep ``("01",)`` to count each
            performance once. None keeps all.

    Returns:
        A Manifest (label set RAVDESS8, name ``"ravdess"``); ``group`` is the actor code (``"12"``),
        ``split`` None (RAVDESS has no official split: split by actor).

    Raises:
        ManifestError: media files whose name is not a RAVDESS code or has an unknown emotion code
            (all listed), or no file at all.
    """
    root = _dir(root, "ravdess", _RAVDESS_LAYOUT)
    keep = None if modalities is None else {str(m).zfill(2) for m in modalities}
    files = sorted(
        f
        for f in root.rglob("*")
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in VIDEO_SUFFIXES | {".wav"}
    )
    entries, bad = [], []
    for f in files:
        m = _RAVDESS_NAME.match(f.stem)
        if not m:
            bad.append(f"{f}: name is not MM-VV-EE-II-SS-RR-AA")
            continue
        modality, _, emotion, *_, actor = m.groups()
        if not 1 <= int(emotion) <= len(RAVDESS8):
            bad.append(f"{f}: unknown emotion code {emotion} (01..08)")
            continue
        if keep is not None and modality not in keep:
            continue
        entries.append(ClipEntry(str(f), RAVDESS8.names[int(emotion) - 1], None, actor))
    _raise_rows("ravdess", "badly named files", bad, f" (expected {_RAVDESS_LAYOUT})")
    if not entries:
        kept = "" if keep is None else f" with modality {' or '.join(sorted(keep))}"
        raise ManifestError(f"ravdess: no RAVDESS file{kept} under {root}; expected {_RAVDESS_LAYOUT}")
    return _finish(entries, RAVDESS8, "ravdess")


# ------------------------------------------------------------------------------------------------ CREMA-D

_CREMAD_NAME = re.compile(r"^(\d+)_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})$")
_CREMAD_LAYOUT = (
    "root/VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv (e.g. 1001_DFA_ANG_XX.flv; EMO one of "
    "ANG DIS FEA HAP NEU SAD) or such files directly in root"
)


def crema_d(root: str | Path) -> Manifest:
    """CREMA-D (Cao et al., IEEE Trans. Affective Computing 2014): labels from the file names.

    Reads the video files of ``root/VideoFlash/`` if that folder exists, else those directly in ``root``
    (any video container, e.g. ``.flv`` or converted ``.mp4``). Names are
    ``<actor>_<sentence>_<EMO>_<level>`` with EMO in ANG DIS FEA HAP NEU SAD and level LO MD HI XX.

    Returns:
        A Manifest (label set CREMAD6, name ``"crema-d"``); ``group`` is the actor (``"1001"``), ``split``
        None (no official split: split by actor).

    Raises:
        ManifestError: video files with another name pattern or emotion code (all listed), or no video.
    """
    root = _dir(root, "crema-d", _CREMAD_LAYOUT)
    folder = root / "VideoFlash" if (root / "VideoFlash").is_dir() else root
    entries, bad = [], []
    for f in _media_files(folder, VIDEO_SUFFIXES):
        m = _CREMAD_NAME.match(f.stem)
        if not m:
            bad.append(f"{f}: name is not <actor>_<sentence>_<EMO>_<level>")
            continue
        actor, _, emo, _ = m.groups()
        label = canonical(emo)
        if label not in CREMAD6.names:
            bad.append(f"{f}: unknown emotion code {emo!r}")
            continue
        entries.append(ClipEntry(str(f), label, None, actor))
    _raise_rows("crema-d", "badly named files", bad, f" (expected {_CREMAD_LAYOUT})")
    if not entries:
        raise ManifestError(f"crema-d: no video files in {folder}; expected {_CREMAD_LAYOUT}")
    return _finish(entries, CREMAD6, "crema-d")


# ------------------------------------------------------------------------------------------------ CK+

_CK_NAME = re.compile(r"^S(\d+)_(\d+)_(\d+)$")
_CK_LAYOUT = (
    "root/<class>/S<subject>_<sequence>_<frame>.png (CK+48), classes anger, contempt, disgust, fear, happy, "
    "sadness, surprise"
)


class CKSequence(NamedTuple):
    """One CK+ sequence: ``sequence_id`` ``"S010_004"``, canonical ``label``, ``subject`` ``"S010"``, and the
    absolute frame paths sorted by frame number."""

    sequence_id: str
    label: str
    subject: str
    frames: list[str]


def _ckplus_files(root: str | Path) -> list[tuple[str, Path, re.Match]]:
    root = _dir(root, "ckplus", _CK_LAYOUT)
    found, bad = [], []
    for _, label, _, files in _class_folders([root], CKPLUS7, IMAGE_SUFFIXES, "ckplus"):
        for f in files:
            m = _CK_NAME.match(f.stem)
            if m:
                found.append((label, f, m))
            else:
                bad.append(f"{f}: name is not S<subject>_<sequence>_<frame>")
    _raise_rows("ckplus", "badly named files", bad, f" (expected {_CK_LAYOUT})")
    if not found:
        raise ManifestError(f"ckplus: no images in class folders under {root}; expected {_CK_LAYOUT}")
    return found


def ckplus(root: str | Path) -> Manifest:
    """CK+ as image folders (CK+48; Lucey et al., CVPR Workshops 2010): one entry per image.

    Layout ``root/<class>/S<subject>_<seq>_<frame>.png`` with the classes anger, contempt, disgust, fear,
    happy, sadness, surprise. For sequences (one sample per ``S<subject>_<seq>``) use
    :func:`ckplus_sequences`.

    Returns:
        A Manifest (label set CKPLUS7, name ``"ckplus"``); ``group`` is the subject (``"S010"``), ``split``
        None (use subject-grouped folds).

    Raises:
        ManifestError: unknown class folders, badly named images (all listed), or no image.
    """
    entries = [ClipEntry(str(f), label, None, f"S{m.group(1)}") for label, f, m in _ckplus_files(root)]
    return _finish(entries, CKPLUS7, "ckplus")


def ckplus_sequences(root: str | Path) -> list[CKSequence]:
    """The CK+ sequences of :func:`ckplus`'s layout, sorted by sequence id, each with its frames in order.

    Raises:
        ManifestError: as :func:`ckplus`, and when one sequence's frames sit in folders of different classes.
    """
    frames: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    labels: dict[tuple[str, str], set[str]] = defaultdict(set)
    for label, f, m in _ckplus_files(root):
        key = (f"S{m.group(1)}", m.group(2))
        frames[key].append((int(m.group(3)), str(f)))
        labels[key].add(label)
    mixed = [f"{s}_{q}: {', '.join(sorted(labels[(s, q)]))}" for s, q in sorted(labels) if len(labels[(s, q)]) > 1]
    _raise_rows("ckplus", "sequences with frames in several class folders", mixed)
    return [
        CKSequence(f"{s}_{q}", next(iter(labels[(s, q)])), s, [p for _, p in sorted(frames[(s, q)])])
        for s, q in sorted(frames)
    ]


# ------------------------------------------------------------------------------------------------ ExpW


_EXPW_LAYOUT = (
    "root/images/*.jpg, root/labels.csv (image,face_id,x1,y1,x2,y2,label,face_confidence) "
    "and optionally root/splits.csv (image,split)"
)


def expw(root: str | Path, *, check_files: bool = True) -> Manifest:
    """ExpW, Expression in-the-Wild (Zhang, Luo, Loy, Tang, IJCV 2018), in the CSV form of ``../shared/data/expw``.

    Layout: ``root/images/*.jpg``; ``root/labels.csv`` with the columns ``image, face_id, x1, y1, x2, y2,
    label, face_confidence`` (box in pixels of the image file; label an Ekman-7 name); ``root/splits.csv``
    with ``image, split`` (train/val/test; optional: without it ``split`` is None).

    An image can hold several labelled faces: **each face is its own entry**, a :class:`FaceEntry`
    (a ClipEntry subclass) that carries ``face_id``, ``box`` and ``score``, with the clip id
    ``"<image path>#face<face_id>"`` so ids stay unique. ``group`` is the image file name: faces of one
    photo share their scene, so grouped splits must keep them together (as ``splits.csv`` does). The
    boxes by ``(image, face_id)``: ``{(Path(e.path).name, e.face_id): e.box for e in manifest}``.

    Returns:
        A Manifest of FaceEntry (label set EKMAN7, name ``"expw"``), in ``labels.csv`` order.

    Raises:
        ManifestError: missing columns or files; malformed numbers, duplicate faces, images without
            a split (one error listing the rows); unknown labels and missing images (one error).
    """
    root = _dir(root, "expw", _EXPW_LAYOUT)
    rows = _read_csv(root / "labels.csv", "expw", ["image", "face_id", "x1", "y1", "x2", "y2", "label"])
    splits: dict[str, str | None] | None = None
    bad = []
    if (root / "splits.csv").is_file():
        splits = {}
        for row in _read_csv(root / "splits.csv", "expw", ["image", "split"]):
            try:
                splits[row["image"]] = _split_name(row["split"])
            except KeyError:
                bad.append(f"splits.csv line {row['_line']}: unknown split {row['split']!r} ({row['image']})")
    entries, seen = [], set()
    for row in rows:
        image = row["image"]
        try:
            face_id = int(row["face_id"])
            box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            score = float(row["face_confidence"]) if row.get("face_confidence") else None
        except ValueError as e:
            bad.append(f"labels.csv line {row['_line']}: {e} ({image})")
            continue
        if (image, face_id) in seen:
            bad.append(f"labels.csv line {row['_line']}: face {face_id} of {image} is listed twice")
            continue
        seen.add((image, face_id))
        if splits is not None and image not in splits:
            bad.append(f"labels.csv line {row['_line']}: {image} has no row in splits.csv")
            continue
        entries.append(
            FaceEntry(
                path=str(root / "images" / image),
                label=canonical(row["label"]) if row.get("label") else None,
                split=None if splits is None else splits[image],
                group=image,
                face_id=face_id,
                box=box,
                score=score,
            )
        )
    _raise_rows("expw", "bad rows", bad, f" in {root}")
    if not entries:
        raise ManifestError(f"expw: {root / 'labels.csv'} has no rows; expected {_EXPW_LAYOUT}")
    return _finish(entries, EKMAN7, "expw", check_files=check_files)


# ------------------------------------------------------------------------------------------------ generic


def generic_csv(path: str | Path, label_set: LabelSet | str | None = None, *, check_files: bool = True) -> Manifest:
    """The generic manifest CSV (``path,label,split,group,start,end``): :meth:`Manifest.from_csv`.

    ``label_set`` may be a LabelSet or its name (``"ekman7"``, ...).
    """
    label_set = None if label_set is None else get_label_set(label_set)
    return Manifest.from_csv(path, label_set=label_set, check_files=check_files)


#: Dataset names accepted by :func:`load_dataset`, with a one-line description each.
DATASETS: dict[str, str] = {
    "caer": "CAER / CAER-S videos or images: root/{train,validation,test}/<Emotion>/*; Ekman-7",
    "afew": "AFEW (EmotiW): root/{Train_AFEW,Val_AFEW}/<Emotion>/*.avi; Ekman-7",
    "cheavd": "CHEAVD 2.0 / MEC 2017: a CSV clip,label[,split][,subject] (English labels); 8 classes",
    "ravdess": "RAVDESS: Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4, label and actor from the name; 8 classes",
    "crema-d": "CREMA-D: VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv, label and actor from the name; 6 classes",
    "ckplus": "CK+48: <class>/S<subject>_<seq>_<frame>.png, one entry per image, group = subject; 7 classes",
    "expw": "ExpW: images/ + labels.csv (one entry per face, with its box) + splits.csv; Ekman-7",
    "csv": "generic manifest CSV: path,label,split,group,start,end",
}

_ADAPTERS: dict[str, Callable[..., Manifest]] = {
    "caer": caer,
    "afew": afew,
    "cheavd": cheavd,
    "ravdess": ravdess,
    "crema-d": crema_d,
    "ckplus": ckplus,
    "expw": expw,
    "csv": generic_csv,
}
_ALIASES = {"caer-s": "caer", "cremad": "crema-d", "ck+": "ckplus", "ck+48": "ckplus", "ckplus48": "ckplus"}


def load_dataset(name: str, root: str | Path, **kw) -> Manifest:
    """The manifest of dataset ``name`` (see :data:`DATASETS`) at ``root`` (for cheavd and csv: the CSV file).

    ``name`` is case-insensitive, ``_`` equals ``-`` and a few aliases are known (``caer-s``, ``cremad``,
    ``ck+``). Keyword arguments go to the adapter.

    Raises:
        ConfigError: unknown dataset name.
        ManifestError: from the adapter.
    """
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _ADAPTERS:
        raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return _ADAPTERS[key](root, **kw)


# ------------------------------------------------------------------------------------------------ mapping


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
        _raise_rows(
            manifest.name,
            f"rows with labels that have no equivalent in {target.name}: {names}; pass mapping={{{example}}}",
            [f"row {i}: {e.label} ({e.path})" for i, e in unmapped],
        )
    entries, dropped = [], Counter()
    for e in manifest.entries:
        if e.label is None:
            entries.append(e)
        elif table[e.label] is None:
            dropped[e.label] += 1
        else:
            entries.append(replace(e, label=table[e.label]))
    if dropped:
        log.info("%s: dropped %s for %s", manifest.name, dict(dropped), target.name)
    source = manifest.label_set.name if manifest.label_set else None
    used = {k: v for k, v in table.items() if k in {e.label for e in manifest.entries}}
    extra = {
        **manifest.extra,
        "label_mapping": {"from": source, "to": target.name, "mapping": used, "dropped": dict(dropped)},
    }
    return Manifest(entries, label_set=target, name=manifest.name, extra=extra)
