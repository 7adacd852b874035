"""Outputs: whole or nothing for files, in place for pipes and devices, links followed, ``-`` is stdout,
lines kept through a kill -9, one-line errors with the system's reason, no temporary file left behind."""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from emocontext.data.manifest import ClipEntry
from emocontext.errors import OutputError
from emocontext.features.store import FeatureStore
from emocontext.outputs import (
    LineWriter,
    atomic_path,
    atomic_write_text,
    check_writable_dir,
    make_dir,
    read_lines,
)
from tests.conftest import feature_record


def _tree(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_files_get_the_usual_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with LineWriter(tmp_path / "b.jsonl") as f:
            f.write("{}\n")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_store_records_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        store = FeatureStore(tmp_path / "s", {"face": {"name": "x"}})
        z = np.zeros((2, 3), np.float32)
        store.put("clip", feature_record(ClipEntry("clip"), z, z))
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "s").rglob("*") if p.is_file()}
    assert modes == {0o644}


def test_full_disk_leaves_nothing_and_says_so_in_one_line(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as e:
        atomic_write_text(tmp_path / "r.html", "x" * 1000)
    assert str(e.value) == f"{tmp_path / 'r.html'}: cannot write (No space left on device)"
    with pytest.raises(OutputError, match="No space left"), LineWriter(tmp_path / "o.jsonl") as f:
        f.write("line\n")
    monkeypatch.undo()
    assert _tree(tmp_path) == []  # no partial file, no temporary file
    with LineWriter(tmp_path / "o.jsonl") as f:
        f.write("line\n")
        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(OutputError, match="No space left"):
            f.close()
    monkeypatch.undo()
    assert (tmp_path / "o.jsonl").read_text() == "line\n"  # a line writer keeps the lines it wrote


def test_a_failure_inside_atomic_path_leaves_the_target_as_it_was(tmp_path):
    (tmp_path / "v.mp4").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "v.mp4") as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert _tree(tmp_path) == ["v.mp4"] and (tmp_path / "v.mp4").read_text() == "old"
    with atomic_path(tmp_path / "v.mp4") as tmp:
        assert tmp.name.endswith(".mp4")
        tmp.write_text("new")
    assert _tree(tmp_path) == ["v.mp4"] and (tmp_path / "v.mp4").read_text() == "new"


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_writable_dir(blocker)
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(blocker / "a.txt", "x")


def test_read_only_location_gives_the_systems_reason(tmp_path, monkeypatch):
    """A folder that cannot be made on a read-only file system says so (not the "No such file" of the first try)."""
    real_mkdir = os.mkdir
    ro = tmp_path / "ro"
    ro.mkdir()  # the mount point of a read-only file system

    def read_only(path, *a, **kw):
        if not os.path.isdir(os.path.dirname(path)):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if str(path).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "mkdir", read_only)
    for make, folder in (
        (lambda: make_dir(ro / "a" / "b"), ro / "a"),
        (lambda: atomic_write_text(ro / "a" / "out.json", "{}"), ro / "a"),
        (lambda: FeatureStore(ro / "store", {"face": {"name": "x"}}), ro / "store"),
    ):
        with pytest.raises(OutputError) as e:
            make()
        assert str(e.value) == f"{folder}: cannot write (Read-only file system)"


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    (tmp_path / "real.json").write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    atomic_write_text(link, '{"a": 1}')
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert (tmp_path / "real.json").read_text() == '{"a": 1}'
    with LineWriter(link, ["header\n"]) as f:
        f.write("row\n")
    assert link.is_symlink() and (tmp_path / "real.json").read_text() == "header\nrow\n"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "sub" / "new.json")
    atomic_write_text(dangling, "x")  # the link's target is created, the link kept
    assert dangling.is_symlink() and (tmp_path / "sub" / "new.json").read_text() == "x"
    assert _tree(tmp_path) == ["dangling.json", "link.json", "real.json", "sub"]


def _read_fifo(fifo: Path, got: list) -> threading.Thread:
    def read():
        with open(fifo, "rb") as f:
            got.append(f.read())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def test_a_named_pipe_is_written_in_place_never_replaced(tmp_path):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    for write in (
        lambda: atomic_write_text(fifo, '{"a": 1}\n'),
        lambda: _lines(fifo, ["h\n"], ['{"a": 1}\n']),
        lambda: _encode_via_atomic_path(fifo, b'{"a": 1}\n'),
    ):
        got: list = []
        reader = _read_fifo(fifo, got)
        write()
        reader.join(10)
        assert not reader.is_alive() and got and got[0].endswith(b'{"a": 1}\n')
        assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the pipe its reader opened
    assert _tree(tmp_path) == ["out.json"]


def _lines(path, start, rows):
    with LineWriter(path, start) as f:
        for r in rows:
            f.write(r)


def _encode_via_atomic_path(path, data: bytes):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def test_a_socket_a_folder_are_refused_in_one_line(tmp_path):
    sock_path = tmp_path / "s.json"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        for write in (lambda: atomic_write_text(sock_path, "x"), lambda: LineWriter(sock_path)):
            with pytest.raises(OutputError) as e:
                write()
            assert str(e.value) == f"{sock_path}: is a socket; name a file (or - for standard output)"
        assert stat.S_ISSOCK(sock_path.lstat().st_mode)
    finally:
        server.close()
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        atomic_write_text(tmp_path / "d", "x")


def _device(path: Path, minor: int) -> Path:
    """A character device node like /dev/null (minor 3) or /dev/full (minor 7), made in a test folder (never
    the real ones); skips where this process may not make device nodes."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e.strerror}): needs CAP_MKNOD")
    return path


def test_a_device_is_written_in_place_and_a_full_one_gives_a_one_line_error(tmp_path):
    full = _device(tmp_path / "full", 7)
    null = _device(tmp_path / "null", 3)
    for write in (
        lambda p: atomic_write_text(p, "x" * 10),
        lambda p: _lines(p, ["h\n"], ["x\n"]),
        lambda p: _encode_via_atomic_path(p, b"x"),
    ):
        write(null)
        with pytest.raises(OutputError) as e:
            write(full)
        assert str(e.value) == f"{full}: cannot write (No space left on device)"
    for node in (full, null):
        assert stat.S_ISCHR(node.lstat().st_mode), node  # still the device, not a file
    assert _tree(tmp_path) == ["full", "null"]


def test_dash_is_standard_output(tmp_path, capfd):
    atomic_write_text("-", '[{"a": 1}]\n')
    with LineWriter("-", ["h\n"]) as f:
        f.write("ünïcode\n")
    with atomic_path("-") as tmp:
        tmp.write_bytes(b"bytes\n")
    assert capfd.readouterr().out == '[{"a": 1}]\nh\nünïcode\nbytes\n'
    assert not Path("-").exists()
    with pytest.raises(OutputError, match="standard output"):
        read_lines("-")


def test_read_lines_drops_a_cut_off_line_and_the_writer_resumes_without_copying(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    inode = out.stat().st_ino
    lines = read_lines(out)
    assert lines == ['{"a": 1}\n', '{"b": 2}\n']
    with LineWriter(out, lines) as f:
        f.write('{"c": 3}\n')
    assert out.read_text() == '{"a": 1}\n{"b": 2}\n{"c": 3}\n' and out.stat().st_ino == inode  # cut in place
    with LineWriter(out, [lines[1]]) as f:  # a line from the middle dropped: the file is rewritten atomically
        f.write('{"d": 4}\n')
    assert out.read_text() == '{"b": 2}\n{"d": 4}\n'
    assert read_lines(tmp_path / "missing.jsonl") == []
    (tmp_path / "latin1.csv").write_bytes(b"caf\xe9\n")  # not UTF-8: written back unchanged
    with LineWriter(tmp_path / "latin1.csv", read_lines(tmp_path / "latin1.csv")) as f:
        f.write("ok\n")
    assert (tmp_path / "latin1.csv").read_bytes() == b"caf\xe9\nok\n"
    assert _tree(tmp_path) == ["latin1.csv", "o.jsonl"]


_WRITER = """
import sys, time
from emocontext.outputs import LineWriter
with LineWriter(sys.argv[1], ["header\\n"]) as f:
    for i in range(100000):
        f.write(f"line {i} " + "x" * (i % 5000) + "\\n")
        time.sleep(0.001)
"""


def test_kill_9_keeps_every_complete_line(tmp_path):
    out = tmp_path / "o.txt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)], env=env)
    try:
        deadline = time.monotonic() + 300  # importing emocontext imports torch: slow on a busy machine
        while (
            time.monotonic() < deadline and proc.poll() is None and (not out.exists() or out.stat().st_size < 200_000)
        ):
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "the writer ended before it was killed"
    lines = read_lines(out)
    assert lines[0] == "header\n" and len(lines) > 10
    for i, line in enumerate(lines[1:]):
        assert line == f"line {i} " + "x" * (i % 5000) + "\n"
    assert _tree(tmp_path) == ["o.txt"]


def test_a_killed_runs_temporary_files_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    leftovers = [f".out.csv.{dead_pid}.ab12cd34.tmp", ".out.csv.zz98yy76.tmp"]  # ours, and an earlier version's
    for name in leftovers:
        (tmp_path / name).write_text("half")
    old = time.time() - 7200
    os.utime(tmp_path / leftovers[1], (old, old))
    live = tmp_path / f".out.csv.{os.getpid()}.ef56gh78.tmp"  # a write in progress (this process): kept
    live.write_text("running")
    other = tmp_path / f".other.csv.{dead_pid}.ab12cd34.tmp"  # another target's: not this write's business
    other.write_text("x")
    atomic_write_text(tmp_path / "out.csv", "a\n")
    assert _tree(tmp_path) == sorted([live.name, other.name, "out.csv"])
    folder = tmp_path / "resumed"  # a line writer resuming a file cleans up too
    folder.mkdir()
    (folder / "out.jsonl").write_text("{}\n")
    (folder / f".out.jsonl.{dead_pid}.ab12cd34.tmp").write_text("half")
    with LineWriter(folder / "out.jsonl", read_lines(folder / "out.jsonl")):
        pass
    assert _tree(folder) == ["out.jsonl"]
