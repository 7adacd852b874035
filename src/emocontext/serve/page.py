"""The page served at ``GET /``: one self-contained HTML file (inline CSS and JavaScript, no external asset).

It uploads with ``POST /v1/jobs`` (upload progress from the browser), polls ``GET /v1/jobs/{id}``
(frames done / expected), then shows the clip emotion with its confidence, the probability bars,
the timeline of per-frame probabilities per person (SVG drawn from the JSON: the label set is
read from it, never listed in the page), the key frames (face box or context attention), the
fusion weights lambda_face / lambda_context of the context model, and links to the JSON, the
report and the annotated video.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

__all__ = ["page_html"]


@lru_cache(maxsize=1)
def page_html() -> str:
    """The page's HTML text (read once from the package)."""
    return files(__package__).joinpath("page.html").read_text("utf-8")
