"""RAVDESS (Livingstone and Russo, PLoS ONE 2018): labels and actors from the file names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ...errors import ManifestError
from ...labels import RAVDESS8
from ..manifest import VIDEO_SUFFIXES, ClipEntry, Manifest, raise_rows
from .common import dataset_dir, finish
from .registry import register_dataset

_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_RAVDESS_LAYOUT = "root/Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4 (e.g. 01-01-03-01-02-01-12.mp4) or such files in root"


@register_dataset("ravdess", "RAVDESS: Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4, label and actor from the name; 8 classes")
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
    root = dataset_dir(root, "ravdess", _RAVDESS_LAYOUT)
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
    raise_rows("ravdess", "badly named files", bad, f" (expected {_RAVDESS_LAYOUT})")
    if not entries:
        kept = "" if keep is None else f" with modality {' or '.join(sorted(keep))}"
        raise ManifestError(f"ravdess: no RAVDESS file{kept} under {root}; expected {_RAVDESS_LAYOUT}")
    return finish(entries, RAVDESS8, "ravdess")
