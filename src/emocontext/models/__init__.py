"""Emotion models, built by name: ``create_model("caca_rnn_a", num_classes=8, face_dim=1280, context_dim=1280)``.

Every model takes a batch dict (``face``, ``context``, ``face_map``, ``mask``, ``face_mask``, ...)
and returns an :class:`Output` (see :mod:`emocontext.models.base`). One file per paper family;
each registers its model classes with :func:`register_model` (one line per name, a variant fixing
some keyword arguments), and :func:`list_models` finds every module of this package on first use.
Every registered name gets the model contract tests of ``tests/models/test_contract.py``.
"""

from __future__ import annotations

from .base import EmotionModel, Output
from .caca_rnn import CNN2D3D, CacaRNN, ConcatRNN, ContextRNN, FaceRNN, ParallelRNN, SingleStreamRNN
from .ensemble import LinearEnsemble, fit_ensemble_weights
from .registry import (
    ModelInfo,
    count_parameters,
    create_model,
    list_models,
    model_info,
    parameter_table,
    register_model,
)

__all__ = [
    "EmotionModel",
    "Output",
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "count_parameters",
    "parameter_table",
    "CacaRNN",
    "SingleStreamRNN",
    "FaceRNN",
    "ContextRNN",
    "ParallelRNN",
    "ConcatRNN",
    "CNN2D3D",
    "LinearEnsemble",
    "fit_ensemble_weights",
]
