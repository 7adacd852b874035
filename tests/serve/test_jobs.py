"""Admission and the frame estimate, without starting workers (the pool itself runs in test_app.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.serve.errors import ApiError  # noqa: E402
from emocontext.serve.jobs import JobManager, expected_frames  # noqa: E402
from emocontext.serve.media import Media  # noqa: E402
from emocontext.serve.metrics import Metrics  # noqa: E402
from emocontext.serve.settings import ServeSettings  # noqa: E402


def test_expected_frames():
    video = Media("video", ".video", 480, 360, 2.0, "flv")
    assert expected_frames(video, 5.0, None) == 10
    assert expected_frames(video, 5.0, 1.0) == 5
    assert expected_frames(video, 3.0, None) == 6
    assert expected_frames(Media("image", ".png", 4, 4, 0.0, "png_pipe"), 5.0, None) == 1
    assert expected_frames(Media("video", ".video", 4, 4, None, "x"), 5.0, None) is None


def test_slots_bound_uploads_and_jobs(tmp_path):
    manager = JobManager(ServeSettings(workers=2, queue=1, work_dir=str(tmp_path)), Metrics())
    try:
        slots = [manager.reserve() for _ in range(3)]
        with pytest.raises(ApiError) as e:
            manager.reserve()
        assert e.value.status == 503 and e.value.kind == "queue_full"
        assert 1 <= int(e.value.headers["Retry-After"]) <= 300
        slots[0].release()
        slots[0].release()  # a slot is given back once only
        extra = manager.reserve()
        with pytest.raises(ApiError):
            manager.reserve()
        for s in [extra, *slots[1:]]:
            s.release()
        assert manager._inflight == 0
        assert manager.uploads_dir.is_dir() and manager.jobs_dir.is_dir()
    finally:
        manager.stop()
    assert list(tmp_path.iterdir()) == []  # the server's folder is removed at stop


def test_settings_are_checked():
    from emocontext.errors import ConfigError

    for bad in ({"workers": 0}, {"queue": -1}, {"max_upload_mb": 0}, {"job_timeout": 0}, {"threads": 0}):
        with pytest.raises(ConfigError):
            ServeSettings(**bad)
    s = ServeSettings(workers=2, queue=3, max_upload_mb=1.5)
    assert s.capacity == 5 and s.max_upload_bytes == int(1.5 * 1024 * 1024)
