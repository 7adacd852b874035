"""Explain a prediction: plots, a self-contained HTML report and an annotated video.

* :func:`write_html_report` -- one offline ``.html`` file (embedded images, no external links).
* :func:`write_annotated_video` -- the input video with the face box, labels and probability bars drawn.
* :func:`timeline_figure` -- per-frame emotion probabilities over time (matplotlib ``Figure``).
* :func:`attention_overlay` -- a frame with the context stream's spatial attention as a heat map.
"""

from __future__ import annotations

from .annotate import write_annotated_video
from .html import write_html_report
from .plots import attention_overlay, timeline_figure

__all__ = ["write_html_report", "write_annotated_video", "timeline_figure", "attention_overlay"]
