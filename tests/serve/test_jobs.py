"""The job manager without worker processes: admission per service and per key, the frame estimate, and durable
jobs (restart recovery, outcomes, cancel, removal) on a pool that records what it is given."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.options import PredictOptions  # noqa: E402
from emocontext.serve.errors import ApiError, JobError  # noqa: E402
from emocontext.serve.jobs import JobManager, expected_frames  # noqa: E402
from emocontext.serve.metrics import Metrics  # noqa: E402
from emocontext.serve.settings import ServeSettings  # noqa: E402
from emocontext.serve.store import Job  # noqa: E402
from emocontext.serve.uploads import Upload  # noqa: E402
from emocontext.video.decode import MediaContent  # noqa: E402

VIDEO = MediaContent("video", ".video", 96, 64, 2.0, "mp4")
OPTIONS = PredictOptions(model="face", fps=5.0)


class RecordingPool:
    """Stands in for pebble's pool: keeps each scheduled call with its future, to be answered by the test."""

    def __init__(self):
        self.calls: list[tuple[dict, Future]] = []

    def schedule(self, fn, args=(), timeout=None):
        f = Future()
        self.calls.append((args[0], f))
        return f

    def stop(self):
        for _, f in self.calls:
            f.cancel()

    def join(self, timeout=None):
        pass


def manager(tmp_path, **kw) -> JobManager:
    m = JobManager(ServeSettings(data_dir=tmp_path / "data", **kw), Metrics())
    m._pool = RecordingPool()
    return m


def upload(m: JobManager, name: str = "clip.mp4") -> Upload:
    p = m.uploads_dir / f"upload-{time.monotonic_ns()}.part"
    p.write_bytes(b"video bytes")
    return Upload(path=p, filename=name, size=11)


def test_expected_frames():
    assert expected_frames(VIDEO, 5.0, None) == 10
    assert expected_frames(VIDEO, 5.0, 1.0) == 5
    assert expected_frames(VIDEO, 3.0, None) == 6
    assert expected_frames(MediaContent("image", ".png", 4, 4, 0.0, "png_pipe"), 5.0, None) == 1
    assert expected_frames(MediaContent("video", ".video", 4, 4, None, "x"), 5.0, None) is None
    assert expected_frames({"kind": "video", "duration": 2.0}, 5.0, None) == 10


def test_slots_bound_uploads_and_jobs_per_service_and_per_key(tmp_path):
    m = manager(tmp_path, workers=2, queue=2, jobs_per_key=2)
    try:
        a = [m.reserve("k1") for _ in range(2)]
        with pytest.raises(ApiError) as e:
            m.reserve("k1")
        assert e.value.status == 429 and e.value.kind == "too_many_jobs"
        assert 1 <= int(e.value.headers["Retry-After"]) <= 300
        b = [m.reserve("k2") for _ in range(2)]
        with pytest.raises(ApiError) as e:
            m.reserve("k3")
        assert e.value.status == 503 and e.value.kind == "queue_full"
        a[0].release()
        a[0].release()  # a slot is given back once only
        extra = m.reserve("k3")
        for s in [extra, a[1], *b]:
            s.release()
        assert m._inflight == 0 and not m._per_owner
    finally:
        m.stop()


def test_a_job_runs_to_done_and_is_kept(tmp_path):
    m = manager(tmp_path)
    job = m.submit(m.reserve("k1"), upload(m), VIDEO, OPTIONS, durable=True)
    ((spec, future),) = m._pool.calls
    assert spec["path"] == str(m.uploads_dir / f"{job.id}.video") and spec["out_dir"] == str(m.jobs_dir / job.id)
    assert m.store.get(job.id).status == "queued"
    result = {"label": "happy", "num_frames": 10}
    out = {"result": result, "key_frames": [], "persons": [], "outputs": {"report": "report.html"}, "seconds": 1.0}
    future.set_result(out)
    kept = m.store.get(job.id)
    assert kept.status == "done" and kept.result == result and kept.outputs == {"report": "report.html"}
    assert list(m.uploads_dir.iterdir()) == [] and m._inflight == 0
    assert m.get(job.id, "k1").result == result
    with pytest.raises(ApiError) as e:
        m.get(job.id, "k2")  # another key's job does not exist for it
    assert e.value.status == 404
    m.stop()


def test_worker_error_and_predict_jobs_are_not_stored(tmp_path):
    m = manager(tmp_path)
    job = m.submit(m.reserve(""), upload(m), VIDEO, OPTIONS, durable=False)
    m._pool.calls[0][1].set_result({"error": JobError("decode", "clip.mp4: no frame")})
    assert job.status == "failed" and job.error.to_api().status == 422
    assert m.store.get(job.id) is None and list(m.uploads_dir.iterdir()) == []
    m.stop()


def test_restart_resumes_unfinished_jobs_and_fails_lost_ones(tmp_path):
    first = manager(tmp_path)
    running = first.submit(first.reserve("k1"), upload(first), VIDEO, OPTIONS, durable=True)
    done = first.submit(first.reserve("k1"), upload(first), VIDEO, OPTIONS, durable=True)
    lost = first.submit(first.reserve("k2"), upload(first), VIDEO, OPTIONS, durable=True)
    first._on_event(("start", running.id, 1234))
    first._pool.calls[1][1].set_result({"result": {"num_frames": 10}, "outputs": {}})
    (first.uploads_dir / lost.upload).unlink()
    (first.jobs_dir / running.id / "report.html").write_text("half written")
    stray = first.uploads_dir / "upload-x.part"
    stray.write_bytes(b"an upload cut by the crash")
    (first.jobs_dir / ("0" * 32)).mkdir()
    # the process dies here: nothing is stopped, the store is opened again by a new manager
    second = manager(tmp_path)
    second._recover()
    ((spec, future),) = second._pool.calls
    assert spec["id"] == running.id
    again = second.get(running.id, "k1")
    assert again.status == "queued" and again.resumed == 1 and second.store.get(running.id).resumed == 1
    assert list((second.jobs_dir / running.id).iterdir()) == []  # its half-written outputs are gone
    assert second.get(done.id, "k1").status == "done" and second.get(done.id, "k1").resumed == 0
    gone = second.get(lost.id, "k2")
    assert gone.status == "failed" and gone.error.kind == "lost" and gone.error.to_api().status == 410
    assert sorted(p.name for p in second.uploads_dir.iterdir()) == [running.upload]
    assert sorted(p.name for p in second.jobs_dir.iterdir()) == sorted([running.id, done.id])
    future.set_result({"result": {"num_frames": 10}, "outputs": {}})
    assert second.get(running.id, "k1").status == "done" and list(second.uploads_dir.iterdir()) == []
    second.stop()


def test_cancel_a_queued_job_then_remove_it(tmp_path):
    m = manager(tmp_path)
    job = m.submit(m.reserve("k1"), upload(m), VIDEO, OPTIONS, durable=True)
    cancelled = m.cancel_or_remove(job.id, "k1")
    assert cancelled.status == "cancelled" and m.store.get(job.id).error.kind == "cancelled"
    assert list(m.uploads_dir.iterdir()) == [] and not (m.jobs_dir / job.id).exists() and m._inflight == 0
    with pytest.raises(ApiError):
        m.cancel_or_remove(job.id, "k2")
    assert m.cancel_or_remove(job.id, "k1") is None
    assert m.store.get(job.id) is None
    m.stop()


def test_finished_jobs_are_removed_after_keep_hours(tmp_path):
    m = manager(tmp_path, keep_hours=1.0)

    def done(letter: str, ago: float) -> Job:
        return Job(
            id=letter * 32,
            owner="",
            filename="f",
            options={},
            media={},
            upload="u",
            frames_total=1,
            status="done",
            finished=time.time() - ago,
        )

    old, new = done("a", 3601), done("b", 60)
    for j in (old, new):
        m.store.put(j)
        (m.jobs_dir / j.id).mkdir()
        (m.jobs_dir / j.id / "report.html").write_text("x")
    assert m.evict() == 1
    assert m.store.get(old.id) is None and not (m.jobs_dir / old.id).exists()
    assert m.store.get(new.id) is not None and (m.jobs_dir / new.id / "report.html").exists()
    m.stop()


def test_settings_are_checked():
    from emocontext.errors import ConfigError

    bad_values = (
        {"workers": 0},
        {"queue": -1},
        {"max_upload_mb": 0},
        {"job_timeout": 0},
        {"threads": 0},
        {"keep_hours": 0},
        {"requests_per_minute": -1},
        {"jobs_per_key": 0},
    )
    for bad in bad_values:
        with pytest.raises(ConfigError):
            ServeSettings(**bad)
    s = ServeSettings(workers=2, queue=3, max_upload_mb=1.5)
    assert s.capacity == 5 == s.key_capacity and s.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert ServeSettings(jobs_per_key=2).key_capacity == 2
    assert str(ServeSettings().root).endswith("serve")
