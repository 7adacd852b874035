"""ExpW, Expression in-the-Wild (Zhang, Luo, Loy, Tang, IJCV 2018): one entry per labelled face, with its box."""

from __future__ import annotations

from pathlib import Path

from ...errors import ManifestError
from ...labels import EKMAN7, canonical
from ..manifest import FaceEntry, Manifest, raise_rows
from .common import dataset_dir, finish, read_csv, split_name
from .registry import register_dataset

_EXPW_LAYOUT = (
    "root/images/*.jpg, root/labels.csv (image,face_id,x1,y1,x2,y2,label,face_confidence) "
    "and optionally root/splits.csv (image,split)"
)


@register_dataset("expw", "ExpW: images/ + labels.csv (one entry per face, with its box) + splits.csv; Ekman-7")
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
    root = dataset_dir(root, "expw", _EXPW_LAYOUT)
    rows = read_csv(root / "labels.csv", "expw", ["image", "face_id", "x1", "y1", "x2", "y2", "label"])
    splits: dict[str, str | None] | None = None
    bad = []
    if (root / "splits.csv").is_file():
        splits = {}
        for row in read_csv(root / "splits.csv", "expw", ["image", "split"]):
            try:
                splits[row["image"]] = split_name(row["split"])
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
    raise_rows("expw", "bad rows", bad, f" in {root}")
    if not entries:
        raise ManifestError(f"expw: {root / 'labels.csv'} has no rows; expected {_EXPW_LAYOUT}")
    return finish(entries, EKMAN7, "expw", check_files=check_files)
