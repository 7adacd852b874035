"""Output files: nothing replaced that is not a file, nothing partial under a file's name, nothing lost in a crash.

Where a write to ``path`` lands, for every writer below:

* ``"-"``: standard output.
* a symbolic link: its target (followed to the end; a dangling link's target is created), written as
  below. The link stays a link.
* an existing named pipe (FIFO) or character device (a terminal, ``/dev/null``): written in place, as the
  shell's ``>`` does, never replaced by a file. A pipe blocks until a reader opens it.
* a socket, a block device or a folder: refused with a one-line :class:`~emocontext.errors.OutputError`.
* anything else: a regular file, written atomically or line by line as below.

Writers:

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: the whole content at once; a regular file
  appears whole or not at all (temporary file in the same folder, fsync, :func:`os.replace`).
* :func:`atomic_path`: a temporary path for writers that want a file name (a video encoder, a
  download), moved to the target when the ``with`` block ends without an error.
* :class:`LineWriter`: a file written line by line (JSON lines, CSV) for long batch runs; each line is
  in the file, whole, as soon as it is written, so a crash or a ``kill -9`` keeps every line before it.
  With :func:`read_lines` it resumes a file an interrupted run left (a line cut off part-way is dropped).

This module is the one place the project writes files: the feature store, the reports, the annotated
videos, the prediction tables and the weights downloads (:mod:`emocontext.hub`) all use it.

Temporary files are named ``.<name>.<pid>.<random>.tmp``, live in the target's folder (so the rename is
atomic), and are removed on any error; the leftovers of a process that was killed are removed by the
next write to the same target (those whose process no longer runs on this machine). Files get the usual
permissions (``0o666`` less the umask), not the ``0o600`` of :func:`tempfile.mkstemp`.

Errors: every :class:`OSError` (no space left, permission denied, read-only file system, a parent that
is a file...) is raised as :class:`~emocontext.errors.OutputError` with a one-line message naming the
file and the system's reason.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError

__all__ = [
    "STDOUT",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_path",
    "LineWriter",
    "read_lines",
    "check_writable_dir",
    "make_dir",
    "output_error",
]

#: The path that means standard output.
STDOUT = "-"

_STREAM, _FILE, _STDOUT = "stream", "file", "stdout"
_OURS = re.compile(r"(\d+)\.[A-Za-z0-9_]{8}\.tmp(\.[^.]*)?")  # .<name>.<pid>.<random>.tmp[.suffix]
_BEFORE_PIDS = re.compile(r"[A-Za-z0-9_]{8}\.tmp(\.[^.]*)?")  # the names of earlier versions, without the pid
_STALE_S = 3600.0  # such a name untouched this long is a crashed run's leftover


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_error(path: str | Path, e: OSError) -> OutputError:
    """A one-line :class:`OutputError` for an OS error while writing ``path``: the system's own reason
    (``Read-only file system``, ``No space left on device``...)."""
    reason = e.strerror or str(e) or type(e).__name__
    name = "standard output" if str(path) == STDOUT else path
    return OutputError(f"{name}: cannot write ({reason})")


def _landing(path: str | Path) -> tuple[str, Path | None]:
    """Where a write to ``path`` lands: ``("stdout", None)``, ``("stream", p)`` (written in place) or
    ``("file", p)``, ``p`` being a symlink's target.

    Raises:
        OutputError: ``path`` is a folder, a socket or a block device (or cannot be inspected).
    """
    if str(path) == STDOUT:
        return _STDOUT, None
    p = Path(path)
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        return _FILE, p
    except OSError as e:
        raise output_error(path, e) from None
    if stat.S_ISREG(mode):
        return _FILE, p
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return _STREAM, p
    what = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise OutputError(f"{path}: is {what}; name a file (or - for standard output)")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no permission to ask: alive
        return True
    return True


#: folder -> target name -> names of temporary files there that may be leftovers (one scan per folder and
#: process: a store's folder of thousands of records is listed once, not at every write)
_CANDIDATES: dict[str, dict[str, list[str]]] = {}


def _scan(folder: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".") and ".tmp" in e.name]
    except OSError:
        return found
    for name in names:
        for pattern in (_OURS, _BEFORE_PIDS):  # ".a.2024.ab12cd34.tmp" may be either: both are looked at
            m = re.fullmatch(rf"\.(.+)\.({pattern.pattern})", name)
            if m:
                found.setdefault(m.group(1), []).append(name)
    return found


def _remove_leftovers(path: Path) -> None:
    """Remove the temporary files that killed processes left next to ``path`` (found when this process first
    writes into that folder)."""
    folder = str(path.parent)
    if folder not in _CANDIDATES:
        _CANDIDATES[folder] = _scan(path.parent)
    now = time.time()
    for name in _CANDIDATES[folder].pop(path.name, []):
        rest = name[len(path.name) + 2 :]
        ours = _OURS.fullmatch(rest)
        full = os.path.join(folder, name)
        try:
            if ours:
                stale = not _alive(int(ours.group(1)))
            else:
                stale = bool(_BEFORE_PIDS.fullmatch(rest)) and now - os.lstat(full).st_mtime > _STALE_S
            if stale and os.path.isfile(full) and not os.path.islink(full):
                os.unlink(full)
        except OSError:
            pass  # gone already, or not ours to remove


def make_dir(folder: str | Path) -> Path:
    """Create ``folder`` and its parents if needed.

    Raises:
        OutputError: it cannot be created; the message gives the system's reason for the folder that
            failed (``Read-only file system``, ``Permission denied``), never a follow-on error.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(Path(e.filename) if e.filename else folder, e) from None
    return folder


def _mkstemp(path: Path, mode: str, suffix: str = ".tmp"):
    make_dir(path.parent)
    _remove_leftovers(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:
        raise output_error(path, e) from None
    return os.fdopen(fd, mode), Path(tmp)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_stdout(data: bytes) -> None:
    try:
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            sys.stdout.write(data.decode("utf-8"))
            sys.stdout.flush()
    except OSError as e:
        raise output_error(STDOUT, e) from None


def _write_in_place(target: Path, data: bytes, name: str | Path) -> None:
    """Write ``data`` into a pipe or a device as it is (no temporary file, no rename)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NOCTTY)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        raise output_error(name, e) from None


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path``: atomically for a file (temporary file in the same folder, fsync, rename),
    in place for a pipe or a device, to standard output for ``"-"`` (see the module docstring).

    Missing parent folders are created. Returns ``path``.

    Raises:
        OutputError: the file or its folder cannot be written, or ``path`` is a folder, a socket or a block
            device (nothing is left behind).
    """
    kind, target = _landing(path)
    if kind == _STDOUT:
        _write_stdout(data)
        return Path(path)
    if kind == _STREAM:
        _write_in_place(target, data, path)
        return Path(path)
    f, tmp = _mkstemp(target, "wb")
    try:
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A hidden temporary file for a writer that needs a file name; its content goes to ``path`` on success.

    The temporary file exists (empty) when the block starts and keeps ``path``'s suffix
    (``.x.mp4.<pid>.ab12cd34.tmp.mp4``), so writers that choose a format by suffix still work. When the
    block ends without an exception, a file target gets it by rename (fsynced, usual permissions, missing
    folders created); a pipe, a device or standard output gets its bytes copied in. On any exception,
    ``KeyboardInterrupt`` included, it is removed and ``path`` is left as it was. The temporary file lives
    next to a file target, in the system's temporary folder for the others.

    Raises:
        OutputError: the temporary file cannot be created, or the rename or the copy fails. Errors raised inside
            the block propagate unchanged.
    """
    kind, target = _landing(path)
    suffix = f".tmp{Path(str(path)).suffix}"
    if kind == _FILE:
        f, tmp = _mkstemp(target, "wb", suffix=suffix)
        f.close()
    else:
        try:
            fd, name = tempfile.mkstemp(prefix=".emocontext-output.", suffix=suffix)
        except OSError as e:
            raise output_error(path, e) from None
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        if kind == _FILE:
            with open(tmp, "rb+") as done:
                os.fsync(done.fileno())
            os.replace(tmp, target)
        else:
            data = tmp.read_bytes()
            tmp.unlink()
            atomic_write_bytes(path, data)
    except OSError as e:
        raise output_error(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def read_lines(path: str | Path) -> list[str]:
    """The complete lines of an output file an earlier run wrote, each with its newline; ``[]`` without a file.

    A last line without its newline (a write cut off by a crash) is left out: :class:`LineWriter` given the
    lines to keep then cuts it off the file. Bytes that are not UTF-8 are kept as they are (surrogate
    escapes), so the lines can be written back unchanged.

    Raises:
        OutputError: ``path`` is standard output, a pipe or a device (nothing to read back), or cannot be read.
    """
    kind, target = _landing(path)
    if kind != _FILE:
        raise OutputError(f"{path}: is standard output, a pipe or a device: there is no earlier run to read back")
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise OutputError(f"{path}: cannot read ({e.strerror or e})") from None
    *lines, _cut = data.decode("utf-8", "surrogateescape").split("\n")  # only \n ends a line (not U+2028...)
    return [line + "\n" for line in lines]


def _encode(lines: Iterable[str]) -> bytes:
    return "".join(lines).encode("utf-8", "surrogateescape")


class LineWriter:
    """A text file written line by line, each :meth:`write` in the file at once and whole.

    Each :meth:`write` is one ``write`` system call in append mode (no buffer in this process), so a crash
    or a ``kill -9`` keeps everything written before it; at most the piece being written is cut off, and
    :func:`read_lines` leaves such a piece out. :meth:`close` fsyncs the file. For long batch runs: the
    JSON lines and per-frame CSV of ``emocontext predict``.

    Args:
        path: the file, ``"-"`` for standard output, or a pipe or device (written in place).
        lines: what the file starts with (UTF-8 text, complete lines): a header, or the lines an earlier
            run wrote that are to be kept (from :func:`read_lines`). When the file already begins with
            exactly these lines it is cut after them in place (resuming copies nothing); otherwise it is
            replaced by them atomically. Either way the lines after them are gone (a new run's file replaces
            an old run's).

    Use as a context manager, or call :meth:`close`; the lines stay in the file whatever ends the block.

    Raises:
        OutputError: the file cannot be created or written (the system's reason), or ``path`` is a folder,
            a socket or a block device.
    """

    def __init__(self, path: str | Path, lines: Iterable[str] = ()):
        self.path = Path(path)
        self._kind, target = _landing(path)
        start = _encode(lines)
        self._fd: int | None = None
        if self._kind == _STDOUT:
            _write_stdout(start)
            return
        try:
            if self._kind == _STREAM:
                self._fd = os.open(target, os.O_WRONLY | os.O_NOCTTY)
                _write_all(self._fd, start)
                return
            if not self._starts_with(target, start):
                atomic_write_bytes(path, start)
            else:
                _remove_leftovers(target)
                os.truncate(target, len(start))
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            self.close()
            raise output_error(path, e) from None

    @staticmethod
    def _starts_with(target: Path, start: bytes) -> bool:
        try:
            with open(target, "rb") as f:
                return f.read(len(start)) == start
        except FileNotFoundError:
            return False

    def write(self, text: str) -> None:
        """Append ``text`` (UTF-8; complete lines) to the file in one system call."""
        data = text.encode("utf-8", "surrogateescape")
        if self._kind == _STDOUT:
            _write_stdout(data)
            return
        if self._fd is None:
            raise OutputError(f"{self.path}: written after close")
        try:
            _write_all(self._fd, data)
        except OSError as e:
            raise output_error(self.path, e) from None

    def close(self) -> None:
        """fsync (for a file) and close; the lines written stay. Closing twice is harmless."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._kind == _FILE:
                os.fsync(fd)
        except OSError as e:
            raise output_error(self.path, e) from None
        finally:
            os.close(fd)

    def __enter__(self) -> LineWriter:
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close()


def check_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises:
        OutputError: it is a file, or cannot be created or written (the system's reason).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a folder")
    make_dir(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".emocontext-write-check.{os.getpid()}.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise output_error(folder, e) from None
    return folder
