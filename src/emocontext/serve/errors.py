"""The service's two error records: :class:`ApiError` (an HTTP answer) and :class:`JobError` (why a job failed).

A job's failure is one :class:`JobError` from the worker that made it to the HTTP answer: the worker
returns it, the job store keeps it (:meth:`JobError.to_dict`), ``GET /v1/jobs/{id}`` shows it and
``POST /v1/predict`` answers it as :meth:`JobError.to_api`. Messages shown to web users never carry
a server path (:func:`public_message`). This module imports nothing of FastAPI: the workers use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ApiError", "JobError", "JOB_ERROR_STATUS", "public_message"]

#: An absolute path (``/root/.cache/x.onnx``), not the host part of a URL (``https://host/x``).
_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+~-]+/)*[\w.@+~-]+")


def public_message(text: str) -> str:
    """``text`` with every absolute file path replaced by ``<server path>``, on one line."""
    return " ".join(_PATH.sub("<server path>", text).split())


class ApiError(Exception):
    """An answer the client gets as ``{"error": kind, "detail": message}`` with HTTP ``status``.

    Attributes:
        status: HTTP status code (4xx for the client's input, 429 over a per-key limit, 503 when the
            queue is full, 500 for a server fault).
        kind: short name of the failure, also the ``kind`` label of the failures metric
            (``empty``, ``not_media``, ``too_large``, ``bad_form``, ``bad_filename``, ``queue_full``,
            ``unauthorized``, ``rate_limited``, ...).
        detail: one human-readable line.
        headers: extra response headers (``Retry-After`` for 429 and 503, ``WWW-Authenticate`` for 401).
        counted: already in the failures metric (a failed job's error, counted once when the job failed).
    """

    def __init__(
        self, status: int, kind: str, detail: str, headers: dict[str, str] | None = None, *, counted: bool = False
    ):
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}
        self.counted = counted

    def body(self) -> dict:
        return {"error": self.kind, "detail": self.detail}


#: HTTP status of a failed job by its kind: the file's fault is 422, a cancelled job 409, the server's 500.
JOB_ERROR_STATUS = {"decode": 422, "bad_option": 422, "time_limit": 422, "cancelled": 409, "lost": 410}


@dataclass(frozen=True)
class JobError:
    """Why a job failed: made once (in the worker, or by the job manager), kept, and answered as is.

    Attributes:
        kind: ``decode`` (the file does not decode), ``bad_option`` (an option the library refuses),
            ``time_limit``, ``worker_crash``, ``cancelled``, ``lost`` (the upload was gone after a
            restart) or ``internal`` (a bug: the traceback is in the server log).
        detail: one line for a person, without server paths.
    """

    kind: str
    detail: str

    @classmethod
    def of(cls, kind: str, detail: str) -> JobError:
        """A JobError whose detail is made public (:func:`public_message`)."""
        return cls(kind, public_message(detail))

    @property
    def status(self) -> int:
        """HTTP status of the answer (422 the file's fault, 409 cancelled, 410 lost, else 500)."""
        return JOB_ERROR_STATUS.get(self.kind, 500)

    def to_dict(self) -> dict:
        """The JSON of the API (``{"error": kind, "detail": message}``), also what the store keeps."""
        return {"error": self.kind, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict) -> JobError:
        return cls(str(d["error"]), str(d["detail"]))

    def to_api(self) -> ApiError:
        """The HTTP answer (not counted again in the failures metric: the job's failure was)."""
        return ApiError(self.status, self.kind, self.detail, counted=True)
