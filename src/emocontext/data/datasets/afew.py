"""AFEW (Dhall et al., EmotiW): the labelled Train_AFEW and Val_AFEW emotion folders."""

from __future__ import annotations

from pathlib import Path

from ...errors import ManifestError
from ...labels import EKMAN7
from ..manifest import VIDEO_SUFFIXES, ClipEntry, Manifest
from .common import class_folders, dataset_dir, finish, subdirs
from .registry import register_dataset

_AFEW_SPLITS = {"train_afew": "train", "val_afew": "val"}
_AFEW_LAYOUT = (
    "root/Train_AFEW/<Emotion>/*.avi and root/Val_AFEW/<Emotion>/*.avi "
    "with the emotions Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise"
)


@register_dataset("afew", "AFEW (EmotiW): root/{Train_AFEW,Val_AFEW}/<Emotion>/*.avi; Ekman-7")
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
    root = dataset_dir(root, "afew", _AFEW_LAYOUT)
    split_dirs = [(d, _AFEW_SPLITS[d.name.lower()]) for d in subdirs(root) if d.name.lower() in _AFEW_SPLITS]
    if not split_dirs:
        raise ManifestError(f"afew: no Train_AFEW or Val_AFEW folder in {root}; expected {_AFEW_LAYOUT}")
    split_of = dict(split_dirs)
    entries = [
        ClipEntry(str(f), label, split_of[split_dir])
        for split_dir, label, _, files in class_folders(split_of, EKMAN7, VIDEO_SUFFIXES, "afew")
        for f in files
    ]
    if not entries:
        raise ManifestError(f"afew: no video files under {root}; expected {_AFEW_LAYOUT}")
    return finish(entries, EKMAN7, "afew")
