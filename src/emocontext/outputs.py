"""Atomic output files: every file the library writes appears whole or not at all.

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: the whole content at once.
* :class:`AtomicFile`: a file written line by line (JSON lines, CSV) that appears under its name
  only when it is closed; until then the lines go to a hidden temporary file next to it.
* :func:`atomic_path`: a temporary path for writers that want a file name (a video encoder, a
  download), moved to the target when the ``with`` block ends without an error.

This module is the one place the project writes files atomically: the feature store, the reports,
the annotated videos, the CLI's tables and the weights downloads (:mod:`emocontext.hub`) all use it.

Temporary files live in the target's folder (so :func:`os.replace` is atomic), are fsynced, and
are removed on any error: a full disk, an unwritable folder or a crash never leaves a partial
file under the target's name. Files get the usual permissions (``0o666`` less the umask), not
the ``0o600`` of :func:`tempfile.mkstemp`.

Errors: every :class:`OSError` (no space left, permission denied, a parent that is a file...) is
raised as :class:`~emocontext.errors.OutputError` with a one-line message naming the file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_path",
    "AtomicFile",
    "check_writable_dir",
    "output_error",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_error(path: str | Path, e: OSError) -> OutputError:
    """A one-line :class:`OutputError` for an OS error while writing ``path``."""
    reason = e.strerror or type(e).__name__
    return OutputError(f"{path}: cannot write ({reason})")


def _mkstemp(path: Path, mode: str, suffix: str = ".tmp"):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:
        raise output_error(path, e) from None
    return os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if "b" not in mode else {})), Path(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    Missing parent folders are created. Returns ``path``.

    Raises:
        OutputError: the file or its folder cannot be written (nothing is left behind).
    """
    path = Path(path)
    f, tmp = _mkstemp(path, "wb")
    try:
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A hidden temporary file next to ``path`` for a writer that needs a file name; ``path`` on success.

    The temporary file exists (empty) when the block starts and keeps ``path``'s suffix (``.x.mp4.ab12.tmp.mp4``),
    so writers that choose a format by suffix still work. When the block ends without an exception the file
    is fsynced and renamed to ``path`` (usual permissions, missing folders created); on any exception,
    ``KeyboardInterrupt`` included, it is removed and ``path`` is left as it was.

    Raises:
        OutputError: the temporary file cannot be created, or the rename fails. Errors raised inside the
            block propagate unchanged.
    """
    path = Path(path)
    f, tmp = _mkstemp(path, "wb", suffix=f".tmp{path.suffix}")
    f.close()
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        with open(tmp, "rb+") as done:
            os.fsync(done.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(path, e) from None


class AtomicFile:
    """A text file written piece by piece that appears under ``path`` only on :meth:`commit`.

    Use as a context manager: a normal exit (and ``KeyboardInterrupt``, so that the lines already
    written survive a Ctrl-C) commits; any other exception discards the temporary file.

    Raises:
        OutputError: the temporary file cannot be created or written, or the rename fails.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f, self._tmp = _mkstemp(self.path, "w")

    def write(self, text: str) -> None:
        try:
            self._f.write(text)
            self._f.flush()
        except OSError as e:
            self.discard()
            raise output_error(self.path, e) from None

    @property
    def handle(self):
        """The underlying text handle (for :class:`csv.writer`); writes through it are not checked until commit."""
        return self._f

    def commit(self) -> Path:
        if self._f.closed and not self._tmp.exists():
            return self.path
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self._tmp, self.path)
        except OSError as e:
            self.discard()
            raise output_error(self.path, e) from None
        return self.path

    def discard(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None or issubclass(kind, KeyboardInterrupt):
            self.commit()
        else:
            self.discard()


def check_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises:
        OutputError: it is a file, or cannot be created or written.
    """
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".emocontext-write-check.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise output_error(folder, e) from None
    return folder
