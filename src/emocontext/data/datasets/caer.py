"""CAER and CAER-S (Lee et al., ICCV 2019): split folders of emotion folders of videos or images."""

from __future__ import annotations

from pathlib import Path

from ...errors import ManifestError
from ...labels import EKMAN7, canonical
from ..manifest import MEDIA_SUFFIXES, ClipEntry, Manifest
from .common import class_folders, dataset_dir, finish, subdirs
from .registry import register_dataset

_CAER_SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}
_CAER_LAYOUT = (
    "root/{train,validation,test}/<Emotion>/*.avi for CAER, or root/{train,test}/<Emotion>/*.png|*.jpg for CAER-S, "
    "with the emotions Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise"
)


@register_dataset(
    "caer",
    "CAER / CAER-S videos or images: root/{train,validation,test}/<Emotion>/*; Ekman-7",
    aliases=("caer-s",),
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
    root = dataset_dir(root, "caer", _CAER_LAYOUT)
    split_dirs = [(d, _CAER_SPLITS[d.name.lower()]) for d in subdirs(root) if d.name.lower() in _CAER_SPLITS]
    if not split_dirs:
        looks_like_split = any(canonical(d.name) in EKMAN7.names for d in subdirs(root))
        hint = " (this folder holds emotion folders: pass its parent, the folder above the split folders)"
        raise ManifestError(
            f"caer: no train/validation/test folder in {root}{hint if looks_like_split else ''}; "
            f"expected {_CAER_LAYOUT}"
        )
    split_of = dict(split_dirs)
    entries = []
    for split_dir, label, folder, files in class_folders(split_of, EKMAN7, MEDIA_SUFFIXES, "caer"):
        for f in files:
            clip, sep, _ = f.stem.rpartition("_")
            group = f"{split_dir.name}/{folder.name}/{clip}" if sep and clip else None
            entries.append(ClipEntry(str(f), label, split_of[split_dir], group))
    if not entries:
        raise ManifestError(f"caer: no video or image files under {root}; expected {_CAER_LAYOUT}")
    return finish(entries, EKMAN7, "caer")
