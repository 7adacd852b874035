"""emocontext: context-aware video emotion recognition."""

from __future__ import annotations

__version__ = "0.1.0"

# Imported eagerly, then shadowed: the submodule ``emocontext.predict`` would otherwise replace the
# function ``emocontext.predict`` on the package as soon as anything imports the submodule.
from .predict import Prediction, Predictor, predict_file  # noqa: E402

__all__ = ["__version__", "predict", "Prediction", "Predictor"]


def predict(path, **kwargs) -> Prediction:
    """Predict the emotion of the person in a video or image: ``emocontext.predict(path) -> Prediction``.

    See :func:`emocontext.predict.predict_file` for the options.
    """
    return predict_file(path, **kwargs)
