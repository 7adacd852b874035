"""Training: torch datasets over feature stores and decoded pixels, one run, runs over seeds, comparisons.

Layer: above the models, the features and the data (it reads feature stores, manifests and model
registries); below prediction, reports and the command line.

- :mod:`.datasets`: :class:`FeatureSequenceDataset` and its ``collate`` (feature stores -> batches);
- :mod:`.pixels`: decoded clips for the models that learn from pixels (:class:`PixelClipDataset`);
- :mod:`.fit`: one training run (:func:`fit`, :class:`TrainConfig`), checkpoints, :func:`load_model`;
- :mod:`.seeds`: the store's manifest and splits, runs over several seeds with median metrics;
- :mod:`.compare`: several models on one store, the fitted ensemble, the comparison table, evaluation.
"""

from __future__ import annotations

from .compare import compare_models, compare_table, ensemble_summary, evaluate_checkpoint, write_evaluation
from .datasets import FeatureSequenceDataset, collate, fit_audio_whitening
from .fit import (
    TrainConfig,
    TrainResult,
    check_features,
    clip_probs,
    describe_config,
    fit,
    load_model,
    predict_probs,
    resolve_config,
)
from .pixels import PixelClip, PixelClipDataset, load_pixel_clips
from .seeds import (
    infer_label_set,
    labelled_manifest,
    manifest_from_store,
    split_train_val,
    split_train_val_test,
    store_splits,
    train_pixel_seeds,
    train_seeds,
)

__all__ = [
    "FeatureSequenceDataset",
    "PixelClip",
    "PixelClipDataset",
    "TrainConfig",
    "TrainResult",
    "check_features",
    "clip_probs",
    "collate",
    "compare_models",
    "compare_table",
    "ensemble_summary",
    "evaluate_checkpoint",
    "fit",
    "fit_audio_whitening",
    "infer_label_set",
    "labelled_manifest",
    "load_model",
    "load_pixel_clips",
    "manifest_from_store",
    "predict_probs",
    "describe_config",
    "resolve_config",
    "split_train_val",
    "split_train_val_test",
    "store_splits",
    "train_pixel_seeds",
    "train_seeds",
    "write_evaluation",
]
