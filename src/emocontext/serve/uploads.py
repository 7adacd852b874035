"""Receive one multipart upload: the file streams to a temporary file, the size limit is enforced while reading.

The request body is fed chunk by chunk to python-multipart's streaming parser; the bytes of the
``file`` part go straight to a temporary file with a name the server chooses (the client's file
name is kept as a label only, and must be a plain name: no folder, no ``..``). The other parts are
short option fields, each capped at :data:`MAX_FIELD_BYTES`; unknown or repeated fields are refused.
On any error the temporary file is removed; the rest of the body is read and discarded (up to
:data:`DRAIN_LIMIT` bytes) so that the client receives the error instead of a broken connection.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from .errors import ApiError

__all__ = ["Upload", "receive_upload", "discard_body", "check_filename", "MAX_FIELD_BYTES", "DRAIN_LIMIT"]

#: Largest accepted value of an option field, in bytes.
MAX_FIELD_BYTES = 1024
#: After an error, at most this many more bytes of the body are read (and dropped) before answering.
DRAIN_LIMIT = 32 * 1024 * 1024
#: Room for the multipart framing and the option fields on top of the file size limit.
FORM_OVERHEAD = 64 * 1024


@dataclass
class Upload:
    """One received upload.

    Attributes:
        path: the temporary file holding the upload (server-chosen name, in the uploads folder).
        filename: the client's file name (a plain name, never used as a path).
        size: bytes of the file.
        fields: the option fields as sent (name -> string).
    """

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def mib(n: int) -> str:
    """``n`` bytes in MiB for a message: ``0.1``, ``1.5``, ``200``, ``2048`` (3 significant digits below 100)."""
    x = n / (1024 * 1024)
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def check_filename(name: str) -> str:
    """The client's file name if it is a plain name; else :class:`ApiError` 400 (``bad_filename``)."""
    bad = (
        not name
        or name in (".", "..")
        or len(name) > 255
        or any(c in name for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    )
    if bad:
        raise ApiError(
            400, "bad_filename", f"the file name must be a plain name without folders or control characters: {name!r}"
        )
    return name


class _Receiver:
    """python-multipart callbacks: the file part to a file descriptor, option fields to memory."""

    def __init__(self, directory: Path, file_field: str, fields: Collection[str], max_bytes: int):
        self.file_field = file_field
        self.allowed = set(fields)
        self.max_bytes = max_bytes
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=directory)
        self.fd: int | None = fd
        self.path = Path(name)
        self.filename: str | None = None
        self.size = 0
        self.fields: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._part: str | None = None  # "file", a field name, or None between parts
        self._value = bytearray()
        self.parser: MultipartParser | None = None

    def start(self, boundary: bytes) -> None:
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_cb,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as e:
            raise ApiError(400, "bad_form", f"malformed multipart body ({e})") from None

    def finish(self) -> None:
        try:
            self.parser.finalize()
        except FormParserError as e:
            raise ApiError(400, "bad_form", f"malformed multipart body ({e})") from None
        if self.filename is None:
            raise ApiError(422, "bad_form", f"missing the file: send it in the form field {self.file_field!r}")
        os.close(self.fd)
        self.fd = None

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.path.unlink(missing_ok=True)

    # python-multipart callbacks
    def _begin(self) -> None:
        self._disposition = b""
        self._part = None
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == self.file_field:
            if b"filename" not in options:
                raise ApiError(422, "bad_form", f"the form field {name!r} must be a file upload")
            if self.filename is not None:
                raise ApiError(422, "bad_form", "send one file per request")
            self.filename = check_filename(options[b"filename"].decode("utf-8", "replace"))
            self._part = name
            return
        if name not in self.allowed:
            expected = ", ".join([self.file_field, *sorted(self.allowed)])
            raise ApiError(422, "bad_form", f"unknown form field {name!r}; expected: {expected}")
        if b"filename" in options:
            raise ApiError(422, "bad_form", f"the form field {name!r} takes a value, not a file")
        if name in self.fields:
            raise ApiError(422, "bad_form", f"the form field {name!r} is repeated")
        self._part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == self.file_field:
            self.size += end - start
            if self.size > self.max_bytes:
                raise ApiError(
                    413, "too_large", f"the file is larger than the upload limit of {mib(self.max_bytes)} MiB"
                )
            os.write(self.fd, data[start:end])
        elif self._part is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise ApiError(422, "bad_form", f"the form field {self._part!r} is too long")

    def _end(self) -> None:
        if self._part is not None and self._part != self.file_field:
            self.fields[self._part] = self._value.decode("utf-8", "replace").strip()
        self._part = None


async def _drain(stream: AsyncIterator[bytes], limit: int = DRAIN_LIMIT) -> None:
    n = 0
    try:
        async for chunk in stream:
            n += len(chunk)
            if n > limit:
                return
    except Exception:  # the client went away: nothing to answer anyway
        return


async def discard_body(request) -> None:
    """Read and drop the request body (at most :data:`DRAIN_LIMIT` bytes), so an early answer reaches the client."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT:
        return
    await _drain(request.stream())


async def receive_upload(
    request,
    directory: str | Path,
    *,
    max_bytes: int,
    fields: Collection[str] = (),
    file_field: str = "file",
) -> Upload:
    """Read a ``multipart/form-data`` request with one file part into ``directory``.

    Args:
        request: a Starlette/FastAPI ``Request`` whose body has not been read.
        directory: where the temporary file goes (it is created there with a server-chosen name).
        max_bytes: largest accepted file; checked as the bytes arrive.
        fields: names of the option fields allowed beside the file.
        file_field: name of the file part.

    Returns:
        :class:`Upload`; the caller removes ``upload.path`` when done with it.

    Raises:
        ApiError: 415 not multipart; 413 over ``max_bytes``; 400 malformed body, bad file name or
            a broken-off upload; 422 missing file, unknown, repeated or overlong field.
    """
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(415, "not_multipart", f"send the file as multipart/form-data in a form field {file_field!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD + DRAIN_LIMIT:
        raise ApiError(413, "too_large", f"the request is larger than the upload limit of {mib(max_bytes)} MiB")
    receiver = _Receiver(Path(directory), file_field, fields, max_bytes)
    stream = request.stream()
    try:
        receiver.start(params[b"boundary"])
        async for chunk in stream:
            receiver.feed(chunk)
        receiver.finish()
    except ApiError:
        receiver.discard()
        await _drain(stream)
        raise
    except ClientDisconnect:
        receiver.discard()
        raise ApiError(400, "disconnected", "the upload broke off before its end") from None
    except BaseException:
        receiver.discard()
        raise
    return Upload(path=receiver.path, filename=receiver.filename, size=receiver.size, fields=receiver.fields)
