"""Training of the feature-sequence models under its old name; the code is in :mod:`emocontext.training`.

A package (not a ``train.py``) so that version control follows the old module to
:mod:`emocontext.training.fit`, where its code now lives.

``emocontext.train.fit``, ``TrainConfig``, ``train_seeds``, ... are the same objects as in
:mod:`emocontext.training.fit` and :mod:`emocontext.training.seeds`.
"""

from __future__ import annotations

from ..training.fit import (
    TrainConfig,
    TrainResult,
    check_features,
    clip_probs,
    fit,
    load_model,
    predict_probs,
    resolve_config,
)
from ..training.seeds import (
    infer_label_set,
    manifest_from_store,
    split_train_val,
    split_train_val_test,
    store_splits,
    train_pixel_seeds,
    train_seeds,
)

__all__ = [
    "TrainConfig",
    "TrainResult",
    "fit",
    "predict_probs",
    "load_model",
    "manifest_from_store",
    "infer_label_set",
    "split_train_val",
    "split_train_val_test",
    "resolve_config",
    "check_features",
    "train_seeds",
    "train_pixel_seeds",
    "clip_probs",
    "store_splits",
]
