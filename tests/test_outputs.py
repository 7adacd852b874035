"""Atomic outputs: whole or nothing, usual permissions, one-line errors on a full disk or an unwritable folder."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from emocontext.errors import OutputError
from emocontext.features.store import FeatureStore, Record
from emocontext.outputs import AtomicFile, atomic_write_text, check_writable_dir


def test_files_get_the_usual_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with AtomicFile(tmp_path / "b.jsonl") as f:
            f.write("{}\n")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_store_records_are_readable_by_others(tmp_path):
    import numpy as np

    old = os.umask(0o022)
    try:
        store = FeatureStore(tmp_path / "s", {"face": {"name": "x"}})
        z = np.zeros((2, 3), np.float32)
        store.put("clip", Record(z, z, z, z, np.ones(2, bool), np.arange(2.0), np.zeros((2, 4), np.float32), {}))
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "s").rglob("*") if p.is_file()}
    assert modes == {0o644}


def test_full_disk_leaves_nothing_and_says_so_in_one_line(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as e:
        atomic_write_text(tmp_path / "r.html", "x" * 1000)
    assert str(e.value) == f"{tmp_path / 'r.html'}: cannot write (No space left on device)"
    with pytest.raises(OutputError, match="No space left"), AtomicFile(tmp_path / "o.jsonl") as f:
        f.write("line\n")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary file


def test_a_failure_inside_the_block_discards_and_ctrl_c_keeps(tmp_path):
    with pytest.raises(RuntimeError), AtomicFile(tmp_path / "o.jsonl") as f:
        f.write("a\n")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), AtomicFile(tmp_path / "o.jsonl") as f:
        f.write("a\n")
        raise KeyboardInterrupt
    assert (tmp_path / "o.jsonl").read_text() == "a\n"


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_writable_dir(blocker)
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(blocker / "a.txt", "x")
