"""emocontext: context-aware video emotion recognition.

``emocontext.predict(path, options) -> Prediction`` predicts one file; :class:`Predictor` loads the
models once for many; :class:`PredictOptions` says how. The prediction names are imported on first
use (they pull in torch), so ``import emocontext`` and ``emocontext --help`` stay fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .options import OptionError, PredictOptions  # noqa: E402  (light: no torch)

__all__ = [
    "__version__",
    "predict",
    "Prediction",
    "PersonPrediction",
    "Predictor",
    "PredictOptions",
    "OptionError",
]

#: the names that need torch, and the module that holds them (:mod:`emocontext.inference`)
_LAZY = {name: ".inference" for name in ("predict", "Prediction", "PersonPrediction", "Predictor")}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
