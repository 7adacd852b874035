"""emocontext: context-aware video emotion recognition."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "predict"]


def predict(path, **kwargs):
    """Predict the emotion of the person in a video or image: ``emocontext.predict(path) -> Prediction``.

    See :func:`emocontext.predict.predict_file` for the options.
    """
    from .predict import predict_file

    return predict_file(path, **kwargs)
