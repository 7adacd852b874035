"""Explain a prediction: plots, a self-contained HTML report and an annotated video.

* :func:`explain` -- report, annotated video and key-frame pictures of one prediction, the video decoded once
  (what the command line and the web service call).
* :func:`write_html_report` -- one offline ``.html`` file (embedded images, no external links).
* :func:`write_annotated_video` -- the input video with the face box, labels and probability bars drawn.
* :func:`timeline_figure` -- per-frame emotion probabilities over time (matplotlib ``Figure``).
* :func:`attention_overlay` -- a frame with the context stream's spatial attention as a heat map.
"""

from __future__ import annotations

import importlib

__all__ = ["explain", "write_html_report", "write_annotated_video", "timeline_figure", "attention_overlay"]

#: where each public name lives; imported on first use, so that ``report.tables`` and ``report.console``
#: (which every ``predict`` run uses) do not pull in matplotlib (1.3 s of start-up on a 2-core machine)
_HOME = {
    "explain": ".explanation",
    "write_html_report": ".html",
    "write_annotated_video": ".annotate",
    "timeline_figure": ".plots",
    "attention_overlay": ".plots",
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
