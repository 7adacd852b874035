"""CHEAVD 2.0, the MEC 2017 data: one documented CSV (clip, label, split, subject) and a video folder."""

from __future__ import annotations

from pathlib import Path

from ...errors import ManifestError
from ...labels import CHEAVD8, canonical
from ..manifest import ClipEntry, Manifest, raise_rows
from .common import finish, read_csv, split_name
from .registry import register_dataset


@register_dataset("cheavd", "CHEAVD 2.0 / MEC 2017: a CSV clip,label[,split][,subject] (English labels); 8 classes")
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
    rows = read_csv(csv_path, "cheavd", ["clip", "label"])
    base = Path(video_root) if video_root is not None else csv_path.parent
    entries, lines, bad = [], [], []
    for row in rows:
        if not row.get("clip"):
            bad.append(f"line {row['_line']}: empty clip")
            continue
        p = Path(row["clip"])
        p = p if p.is_absolute() else base / p
        try:
            split = split_name(row.get("split"))
        except KeyError:
            bad.append(f"line {row['_line']}: unknown split {row['split']!r} ({row['clip']})")
            continue
        label = canonical(row["label"]) if row.get("label") else None
        entries.append(ClipEntry(str(p.absolute()), label, split, row.get("subject") or None))
        lines.append(int(row["_line"]))
    raise_rows("cheavd", "bad rows", bad, f" in {csv_path} (splits: train, val, test)")
    if not entries:
        raise ManifestError(f"cheavd: {csv_path} has no rows")
    return finish(entries, CHEAVD8, "cheavd", check_files=check_files, lines=lines)
