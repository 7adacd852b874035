"""emocontext: context-aware video emotion recognition.

``emocontext.predict(path, **kwargs) -> Prediction`` predicts one file; ``emocontext.predict`` is
also the module :mod:`emocontext.predict` (``from emocontext.predict import Predictor``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import predict  # a callable module: emocontext.predict("clip.mp4")
from .options import OptionError, PredictOptions
from .predict import PersonPrediction, Prediction, Predictor, predict_file

__all__ = [
    "__version__",
    "predict",
    "predict_file",
    "Prediction",
    "PersonPrediction",
    "Predictor",
    "PredictOptions",
    "OptionError",
]
