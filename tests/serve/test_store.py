"""The SQLite job store: records round-trip whole, owners see their own jobs newest first, expiry, durability."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from emocontext.errors import ConfigError
from emocontext.serve.errors import JobError
from emocontext.serve.store import Job, JobStore


def job(i: int, owner: str = "k1", **kw) -> Job:
    base = dict(
        id=f"{i:032x}",
        owner=owner,
        filename=f"clip {i}.mp4",
        options={"model": "face", "fps": 5.0},
        media={"kind": "video", "suffix": ".video", "width": 96, "height": 64, "duration": 2.0, "format": "mp4"},
        upload=f"{i:032x}.video",
        frames_total=10,
        created=1000.0 + i,
    )
    base.update(kw)
    return Job(**base)


def test_a_record_round_trips_whole(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    done = job(
        1,
        status="done",
        stage="done",
        finished=2000.5,
        result={"label": "happy", "frames": [{"t": 0.0}]},
        key_frames=[{"frame": 0, "timestamp": 0.0, "file": "keyframe-0.png", "persons": [1]}],
        persons=[{"id": 1, "subject": True, "file": "person-1.png"}],
        outputs={"report": "report.html", "annotated": "annotated.mp4"},
        seconds=1.25,
        resumed=2,
    )
    failed = job(2, status="failed", stage="failed", finished=2001.0, error=JobError("decode", "no frame"))
    store.put(done)
    store.put(failed)
    got = store.get(done.id)
    assert got == done
    assert store.get(failed.id).error == JobError("decode", "no frame")
    assert store.get("f" * 32) is None
    store.close()
    # a new connection (a restarted server) reads the same
    again = JobStore(tmp_path / "jobs.sqlite3")
    assert again.get(done.id) == done
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_owner_sees_own_jobs_newest_first_paginated(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    for i in range(7):
        store.put(job(i, owner="k1" if i % 2 == 0 else "k2"))
    page, total = store.owned("k1", limit=3, offset=0)
    assert total == 4 and [j.id for j in page] == [f"{i:032x}" for i in (6, 4, 2)]
    page, total = store.owned("k1", limit=3, offset=3)
    assert [j.id for j in page] == [f"{0:032x}"]
    assert store.owned("nobody", limit=5)[1] == 0


def test_unfinished_expired_and_delete(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.put(job(1, status="queued"))
    store.put(job(2, status="running", stage="detect"))
    store.put(job(3, status="done", finished=100.0))
    store.put(job(4, status="cancelled", finished=300.0))
    assert [j.id[-1] for j in store.unfinished()] == ["1", "2"]
    assert store.expired(before=200.0) == [f"{3:032x}"]
    assert sorted(store.expired(before=400.0)) == [f"{3:032x}", f"{4:032x}"]
    store.delete(f"{3:032x}")
    assert store.get(f"{3:032x}") is None and len(store.ids()) == 3


def test_a_killed_writer_leaves_every_record_whole(tmp_path):
    """A process killed (SIGKILL) in the middle of many writes: the store opens, every row reads back whole."""
    path = tmp_path / "jobs.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path[:0] = {sys.path!r}
        from emocontext.serve.store import Job, JobStore
        store = JobStore({str(path)!r})
        for i in range(100000):
            store.put(Job(id=f"{{i % 50:032x}}", owner="k", filename="f", options={{}}, media={{}},
                          upload="u", frames_total=i, result={{"n": i, "pad": "x" * 2000}}))
            if i == 300:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -9
    store = JobStore(path)
    assert len(store.ids()) == 50
    for job_id in store.ids():
        j = store.get(job_id)
        assert j.result["n"] == j.frames_total and len(j.result["pad"]) == 2000


def test_not_a_store_fails_clearly(tmp_path):
    bad = tmp_path / "jobs.sqlite3"
    bad.write_text("not a database" * 100)
    with pytest.raises(ConfigError, match="cannot open the service's job store"):
        JobStore(bad)
