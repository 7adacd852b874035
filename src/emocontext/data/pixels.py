"""Deprecated home of the pixel clips: they moved to :mod:`emocontext.training.pixels` (training layer).

``from emocontext.data.pixels import PixelClipDataset`` still works, with a DeprecationWarning.
"""

from __future__ import annotations

from .._compat import moved

__getattr__ = moved(
    __name__,
    ("PixelClip", "PixelClipDataset", "load_pixel_clips", "pixel_stream_config", "average_windows"),
    "emocontext.training.pixels",
)
