"""A real ``emocontext serve`` process on 127.0.0.1 for the service tests, and small videos to send it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import encode_video, numbered_frames

httpx = pytest.importorskip("httpx", reason="the serve tests need httpx (the test extra)")
pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

#: Seconds to wait for the workers to load their models (a loaded 2-core machine is slow).
START_TIMEOUT = float(os.environ.get("EMOCONTEXT_SERVE_START_TIMEOUT", "900"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m emocontext serve`` in a subprocess with its own ``TMPDIR`` and data folder (to check what it
    leaves), in a process group of its own (so that :meth:`kill` can crash the whole service at once).

    Args:
        tmp: the server's ``TMPDIR``; its data folder is ``data_dir`` or ``tmp.parent / "data"``.
        args: more command-line options.
        key: the API key the test client sends (None: none).
        env: more environment variables.
    """

    def __init__(self, tmp: Path, *args: str, data_dir: Path | None = None, key: str | None = None, env=None):
        self.tmp = tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.data = data_dir or tmp.parent / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp.parent / f"server-{self.port}.log").open("w")
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1", **(env or {})}
        cmd = [sys.executable, "-m", "emocontext", "serve", "--port", str(self.port), "--log-level", "warning"]
        cmd += ["--data-dir", str(self.data), *args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.url, timeout=600, headers=headers)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.log_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get("/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the server was not ready within {timeout:g} s: {self.log_text()[-3000:]}")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def uploads(self) -> list[Path]:
        """Uploads kept in the data folder (those of queued or running jobs, and uploads being received)."""
        folder = self.data / "uploads"
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def kill(self) -> None:
        """``kill -9`` the server and its workers at once (a crash): nothing is cleaned up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.client.close()
        self.log.close()

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # a worker left behind by a failed stop
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        return self.proc.returncode


@contextlib.contextmanager
def running_server(tmp: Path, *args: str, **kwargs):
    server = Server(tmp, *args, **kwargs)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def wait_job(client, job_id: str, timeout: float = 600) -> dict:
    """Poll ``GET /v1/jobs/{id}`` until the job is done or failed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = client.get(f"/v1/jobs/{job_id}")
        if r.status_code == 429:  # over the key's requests a minute: wait as told
            time.sleep(float(r.headers["retry-after"]))
            continue
        job = r.json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g} s")


def wait_until(client, job_id: str, status: str, timeout: float = 600) -> dict:
    """Poll ``GET /v1/jobs/{id}`` until the job reaches ``status``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        if job["status"] in ("done", "failed", "cancelled"):
            raise AssertionError(f"job {job_id} ended {job['status']} before {status}: {job.get('error')}")
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} not {status} after {timeout:g} s")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve_media")


@pytest.fixture(scope="session")
def tiny_video(media_dir) -> Path:
    """2 s at 10 fps, 96x64, no face."""
    return encode_video(media_dir / "tiny clip.mp4", numbered_frames(20), fps=10)


class _MovingFace:
    """``n`` frames of the shipped clip's first frame, sliding to and fro, made one at a time (no 500 MB array)."""

    def __init__(self, n: int):
        import cv2

        from emocontext.samples import sample_video
        from emocontext.video.decode import read_frames

        self.first = cv2.resize(read_frames(sample_video(), max_duration=0.2).frames[0], (640, 480))
        self.shape = (n, 480, 640, 3)

    def __iter__(self):
        for i in range(self.shape[0]):
            yield np.roll(self.first, abs(i % 120 - 60) - 30, axis=1)  # back and forth, 1 px a frame


@pytest.fixture(scope="session")
def long_video(media_dir) -> Path:
    """60 s at 10 fps, 640x480, a face in every frame: 600 sampled frames with a face to detect and read.

    The job must outlast the time limit of the full-queue test on a fast machine too: with key-frame
    detection a video without faces is mostly skipped, so it has a face (19 s of analysis on a 2-core
    AMD EPYC).
    """
    return encode_video(media_dir / "long.mp4", _MovingFace(600), fps=10)


@pytest.fixture(scope="session")
def truncated_mp4(media_dir, tiny_video) -> Path:
    """The first half of an MP4 whose index (moov) is at the end: nothing can be decoded."""
    data = tiny_video.read_bytes()
    out = media_dir / "truncated.mp4"
    out.write_bytes(data[: len(data) // 2])
    return out
