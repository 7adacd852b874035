"""Where a benchmark's results go: its markdown report and, beside it, the same numbers as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from emocontext.outputs import atomic_write_text


def save(out: Path, markdown: str, data: dict | list | None = None) -> None:
    """Write ``out`` (markdown) and, if ``data`` is given, ``out`` with suffix ``.json``; each atomically, so an
    interrupted run leaves the previous results whole."""
    if data is not None:
        atomic_write_text(out.with_suffix(".json"), json.dumps(data, indent=2))
    atomic_write_text(out, markdown)
