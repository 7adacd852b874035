"""CK+ as image folders (CK+48; Lucey et al., CVPR Workshops 2010): one entry per image, or whole sequences."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from ...errors import ManifestError
from ...labels import CKPLUS7
from ..manifest import IMAGE_SUFFIXES, ClipEntry, Manifest, SequenceEntry, raise_rows
from .common import class_folders, dataset_dir, finish
from .registry import register_dataset

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
    root = dataset_dir(root, "ckplus", _CK_LAYOUT)
    found, bad = [], []
    for _, label, _, files in class_folders([root], CKPLUS7, IMAGE_SUFFIXES, "ckplus"):
        for f in files:
            m = _CK_NAME.match(f.stem)
            if m:
                found.append((label, f, m))
            else:
                bad.append(f"{f}: name is not S<subject>_<sequence>_<frame>")
    raise_rows("ckplus", "badly named files", bad, f" (expected {_CK_LAYOUT})")
    if not found:
        raise ManifestError(f"ckplus: no images in class folders under {root}; expected {_CK_LAYOUT}")
    return found


@register_dataset(
    "ckplus",
    "CK+48: <class>/S<subject>_<seq>_<frame>.png, one entry per image, group = subject; 7 classes",
    aliases=("ck+", "ck+48", "ckplus48"),
)
def ckplus(root: str | Path) -> Manifest:
    """CK+ as image folders (CK+48; Lucey et al., CVPR Workshops 2010): one entry per image.

    Layout ``root/<class>/S<subject>_<seq>_<frame>.png`` with the classes anger, contempt, disgust, fear,
    happy, sadness, surprise. For sequences (one sample per ``S<subject>_<seq>``) use
    :func:`ckplus_sequence_manifest` (the dataset ``ckplus-sequences``) or :func:`ckplus_sequences`.

    Returns:
        A Manifest (label set CKPLUS7, name ``"ckplus"``); ``group`` is the subject (``"S010"``), ``split``
        None (use subject-grouped folds).

    Raises:
        ManifestError: unknown class folders, badly named images (all listed), or no image.
    """
    entries = [ClipEntry(str(f), label, None, f"S{m.group(1)}") for label, f, m in _ckplus_files(root)]
    return finish(entries, CKPLUS7, "ckplus")


@register_dataset(
    "ckplus-sequences",
    "CK+48 as sequences: one clip per S<subject>_<seq> of 3 frames (327 in CK+48), group = subject; 7 classes",
    aliases=("ck+-sequences", "ckplus-seq"),
)
def ckplus_sequence_manifest(root: str | Path) -> Manifest:
    """CK+ as sequences (the README's CK+ table: 327 sequences of 3 frames in CK+48): one clip per sequence.

    Each entry is a :class:`~emocontext.data.manifest.SequenceEntry` whose ``frames`` are the sequence's
    images in frame order, read as consecutive sampled frames (``emocontext extract ROOT --dataset
    ckplus-sequences``; CK+48's images are face crops already, so give ``--detector none``). Its ``path``,
    the clip id, is ``<class folder>/S<subject>_<seq>``.

    Returns:
        A Manifest (label set CKPLUS7, name ``"ckplus-sequences"``); ``group`` is the subject, ``split`` None.

    Raises:
        ManifestError: as :func:`ckplus_sequences`.
    """
    entries = [
        SequenceEntry(str(Path(s.frames[0]).parent / s.sequence_id), s.label, None, s.subject, frames=tuple(s.frames))
        for s in ckplus_sequences(root)
    ]
    return finish(entries, CKPLUS7, "ckplus-sequences")


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
    raise_rows("ckplus", "sequences with frames in several class folders", mixed)
    return [
        CKSequence(f"{s}_{q}", next(iter(labels[(s, q)])), s, [p for _, p in sorted(frames[(s, q)])])
        for s, q in sorted(frames)
    ]
