"""The dataset readers under their old name: :mod:`emocontext.data.datasets` (one module per dataset).

Kept so that ``from emocontext.data.adapters import load_dataset, expw, map_labels, ...`` keeps working.
"""

from __future__ import annotations

from .datasets import (
    DATASETS,
    CKSequence,
    FaceEntry,
    afew,
    caer,
    cheavd,
    ckplus,
    ckplus_sequences,
    crema_d,
    expw,
    generic_csv,
    load_dataset,
    map_labels,
    ravdess,
)

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
