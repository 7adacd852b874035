"""Keys, limits and restarts on a real server: ``serve --data-dir D --api-key-file K``.

Without the key: 401 JSON, ``/healthz`` and ``/readyz`` open, ``/metrics`` closed; a job belongs to its
key (another key gets 404); per-key requests a minute (429 + Retry-After). Then the service is killed
(``kill -9`` of the server and its workers) with one job finished and one running, and started again on
the same folder: the finished job answers the same, the cut one runs again from its kept upload, says
it was resumed, and finishes; no upload is left.
"""

from __future__ import annotations

import time

import pytest

from tests.serve.conftest import Server, running_server, wait_job, wait_until

KEY = "lab-key-0123456789abcdef"
OTHER = "other-key-0123456789abcd"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("keys") / "keys.txt"
    f.write_text(f"# two keys\n{KEY}\n{OTHER}\n")
    return f


def post_job(server: Server, path, key: str = KEY, **fields):
    with open(path, "rb") as fh:
        return server.client.post(
            "/v1/jobs", files={"file": (path.name, fh)}, data=fields, headers={"Authorization": f"Bearer {key}"}
        )


def test_keys_limits_and_ownership(tmp_path, keys_file, tiny_video):
    args = ("--api-key-file", str(keys_file), "--requests-per-minute", "300")
    with running_server(tmp_path / "tmp", *args, key=KEY) as s:
        anon = {"Authorization": ""}
        for method, path in (("GET", "/v1/models"), ("GET", "/v1/jobs"), ("GET", "/metrics"), ("POST", "/v1/jobs")):
            r = s.client.request(method, path, headers=anon)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        wrong = s.client.get("/v1/models", headers={"Authorization": "Bearer " + "x" * 24})
        assert wrong.status_code == 401 and "wrong API key" in wrong.json()["detail"]
        with open(tiny_video, "rb") as fh:  # a refused upload gets its answer, not a broken connection
            r = s.client.post("/v1/predict", files={"file": (tiny_video.name, fh)}, headers=anon)
        assert r.status_code == 401
        for path in ("/healthz", "/readyz", "/", "/favicon.ico", "/docs"):
            assert s.client.get(path, headers=anon).status_code == 200, path
        assert s.client.get("/v1/models").json()["auth"] is True
        assert s.client.get("/metrics").status_code == 200
        # a job belongs to its key
        job = post_job(s, tiny_video, fps="2").json()
        assert wait_job(s.client, job["id"])["status"] == "done"
        other = {"Authorization": f"Bearer {OTHER}"}
        assert s.client.get(f"/v1/jobs/{job['id']}", headers=other).status_code == 404
        assert s.client.get(f"/v1/jobs/{job['id']}/report", headers=other).status_code == 404
        assert s.client.delete(f"/v1/jobs/{job['id']}", headers=other).status_code == 404
        assert s.client.get("/v1/jobs", headers=other).json()["total"] == 0
        assert [j["id"] for j in s.client.get("/v1/jobs").json()["jobs"]] == [job["id"]]
        # requests a minute, per key: the other key goes over its 300, this one is still served
        statuses = [s.client.get("/healthz" if k % 2 else "/v1/jobs", headers=other).status_code for k in range(620)]
        assert statuses.count(429) >= 1 and 200 in statuses
        limited = s.client.get("/v1/jobs", headers=other)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"] == "rate_limited"
        assert s.client.get("/v1/models").status_code == 200
        log = s.log_text()
    assert KEY not in log and OTHER not in log


def test_jobs_survive_kill_9(tmp_path, keys_file, tiny_video, long_video):
    data = tmp_path / "data"
    args = ("--api-key-file", str(keys_file), "--queue", "2")
    first = Server(tmp_path / "tmp1", *args, data_dir=data, key=KEY)
    try:
        first.wait_ready()
        done = post_job(first, tiny_video, fps="2").json()
        done = wait_job(first.client, done["id"])
        assert done["status"] == "done"
        report = first.client.get(done["links"]["report"]).content
        cut = post_job(first, long_video, fps="5").json()
        wait_until(first.client, cut["id"], "running")
        time.sleep(1.0)
    finally:
        first.kill()
    assert len(list((data / "uploads").iterdir())) == 1  # the cut job's upload, kept
    with running_server(tmp_path / "tmp2", *args, data_dir=data, key=KEY) as second:
        again = second.client.get(f"/v1/jobs/{done['id']}")
        assert again.status_code == 200 and again.json() == done
        assert second.client.get(done["links"]["report"]).content == report
        resumed = second.client.get(f"/v1/jobs/{cut['id']}").json()
        assert resumed["resumed"] == 1 and resumed["status"] in ("queued", "running", "done")
        finished = wait_job(second.client, cut["id"])
        assert finished["status"] == "done", finished["error"]
        assert finished["resumed"] == 1 and finished["result"]["num_frames"] == 300
        assert second.uploads() == []
        listed = second.client.get("/v1/jobs").json()
        assert [j["id"] for j in listed["jobs"]] == [cut["id"], done["id"]]
