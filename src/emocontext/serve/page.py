"""The page served at ``GET /`` and its icon: self-contained files (inline CSS and JavaScript, no external asset).

The page asks for the API key once when the server wants one (kept in the tab's ``sessionStorage``),
uploads with ``POST /v1/jobs`` (upload progress from the browser; choosing and dropping a file both
start the same upload), polls ``GET /v1/jobs/{id}`` (frames done / expected), then shows each person
with their face thumbnail, emotion and probability bars, and, for a video, the timeline of per-frame
probabilities (SVG drawn from the JSON: the label set is read from it, never listed in the page); the
key frames with every person's box numbered (or the context attention), the fusion weights
lambda_face / lambda_context of the context model, and links to the JSON, the report and the annotated
file. Colours come from the job's ``colors`` (:func:`emocontext.labels.emotion_hex`), the same as the
report's and the annotated video's.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

__all__ = ["page_html", "favicon_svg"]


@lru_cache(maxsize=1)
def page_html() -> str:
    """The page's HTML text (read once from the package)."""
    return files(__package__).joinpath("page.html").read_text("utf-8")


@lru_cache(maxsize=1)
def favicon_svg() -> bytes:
    """The icon (SVG) served at ``/favicon.ico`` and linked by the page and the API docs."""
    return files(__package__).joinpath("favicon.svg").read_bytes()
