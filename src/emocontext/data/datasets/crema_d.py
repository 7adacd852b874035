"""CREMA-D (Cao et al., IEEE Trans. Affective Computing 2014): labels and actors from the file names."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import ManifestError
from ...labels import CREMAD6, canonical
from ..manifest import VIDEO_SUFFIXES, ClipEntry, Manifest, raise_rows
from .common import dataset_dir, finish, media_files
from .registry import register_dataset

_CREMAD_NAME = re.compile(r"^(\d+)_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})$")
_CREMAD_LAYOUT = (
    "root/VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv (e.g. 1001_DFA_ANG_XX.flv; EMO one of "
    "ANG DIS FEA HAP NEU SAD) or such files directly in root"
)


@register_dataset(
    "crema-d",
    "CREMA-D: VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv, label and actor from the name; 6 classes",
    aliases=("cremad",),
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
    root = dataset_dir(root, "crema-d", _CREMAD_LAYOUT)
    folder = root / "VideoFlash" if (root / "VideoFlash").is_dir() else root
    entries, bad = [], []
    for f in media_files(folder, VIDEO_SUFFIXES):
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
    raise_rows("crema-d", "badly named files", bad, f" (expected {_CREMAD_LAYOUT})")
    if not entries:
        raise ManifestError(f"crema-d: no video files in {folder}; expected {_CREMAD_LAYOUT}")
    return finish(entries, CREMAD6, "crema-d")
