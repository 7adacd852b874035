"""One module per dataset: each reads a dataset's own layout and returns a validated :class:`Manifest`.

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

:func:`load_dataset` picks a reader by name from the registry (:mod:`.registry`; every module registers
its reader with :func:`register_dataset`); :func:`~emocontext.data.manifest.map_labels` moves a manifest to
another label set with explicit, documented mappings (:data:`emocontext.labels.DEFAULT_MAPPINGS`).
"""

from __future__ import annotations

from ..manifest import FaceEntry, map_labels
from .registry import (
    DATASETS,
    DatasetInfo,
    dataset_info,
    list_datasets,
    load_dataset,
    read_manifest,
    register_dataset,
)

# isort: off
# Each module registers its reader on import: this order is the order of list_datasets() and DATASETS.
from .caer import caer
from .afew import afew
from .cheavd import cheavd
from .ravdess import ravdess
from .crema_d import crema_d
from .ckplus import CKSequence, ckplus, ckplus_sequence_manifest, ckplus_sequences
from .expw import expw
from .generic_csv import generic_csv

# isort: on

__all__ = [
    "DATASETS",
    "CKSequence",
    "DatasetInfo",
    "FaceEntry",
    "afew",
    "caer",
    "cheavd",
    "ckplus",
    "ckplus_sequence_manifest",
    "ckplus_sequences",
    "crema_d",
    "dataset_info",
    "expw",
    "generic_csv",
    "list_datasets",
    "load_dataset",
    "map_labels",
    "ravdess",
    "read_manifest",
    "register_dataset",
]
