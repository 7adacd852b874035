"""The one error type of the HTTP API: a status, a machine-readable kind and a one-line message."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """An answer the client gets as ``{"error": kind, "detail": message}`` with HTTP ``status``.

    Attributes:
        status: HTTP status code (4xx for the client's input, 503 when the queue is full).
        kind: short name of the failure, also the ``kind`` label of the failures metric
            (``empty``, ``not_media``, ``too_large``, ``bad_form``, ``bad_filename``, ``queue_full``, ...).
        detail: one human-readable line.
        headers: extra response headers (``Retry-After`` for 503).
    """

    def __init__(self, status: int, kind: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.kind, "detail": self.detail}
