"""The HTTP service end to end: a real ``emocontext serve`` on 127.0.0.1 (one worker, 1 MiB upload limit).

Covers predict (same JSON as the library), jobs with progress and their outputs, the job list and
delete, models (only what can run here), health, readiness, metrics, OpenAPI, the offline API docs, the
page and its icon, every kind of bad input (one clear 4xx JSON error each, the server keeps serving),
uploads removed, and -- on a second server -- a full queue (503 with Retry-After), cancelling a running
job and the per-job time limit. Keys, limits and restarts: ``test_durable.py``.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time

import cv2
import numpy as np
import pytest

from tests.conftest import data_path
from tests.serve.conftest import Server, running_server, wait_job, wait_until

CREMA_HAPPY = ("videos", "crema-d", "1001_DFA_HAP_XX.flv")
#: the time limit of the full-queue test: the long job (19 s on an AMD EPYC 2-core; a 10 s limit once failed on
#: a faster CI machine) must exceed it, a 4-frame job must not (raise it on a machine slowed by other work)
JOB_TIMEOUT = os.environ.get("EMOCONTEXT_SERVE_TEST_JOB_TIMEOUT", "2")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("serve") / "tmp", "--max-upload-mb", "1", "--queue", "2") as s:
        yield s


@pytest.fixture(scope="module")
def predictor():
    from emocontext.inference import Predictor

    return Predictor(fps=2)


def same(a, b, tol: float = 1e-3, where: str = "") -> None:
    """Equal JSON, floats within ``tol`` (torch thread counts may differ in the last bits)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), where
        assert math.isclose(a, b, abs_tol=tol), f"{where}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, tol, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def library_json(predictor, path) -> dict:
    """What ``emocontext predict --json`` writes for ``path``, with ``path`` the bare file name (as the service)."""
    import json

    d = json.loads(json.dumps(predictor.predict(path).to_dict()))
    d["path"] = path.name
    return d


def upload(server: Server, path, endpoint: str = "/v1/predict", name: str | None = None, **fields):
    with open(path, "rb") as fh:
        return server.client.post(endpoint, files={"file": (name or path.name, fh)}, data=fields)


def test_health_readiness_and_models(server):
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "workers": 1, "workers_ready": 1}
    models = server.client.get("/v1/models").json()
    assert set(models["models"]) == {"face", "context"} and models["default_model"] == "face"
    assert "mtcnn" in models["detectors"] and models["max_upload_mb"] == 1
    (loaded,) = models["loaded"]
    assert loaded["model"] == "face" and len(loaded["labels"]) >= 7 and "happy" in loaded["labels"]
    assert set(models["colors"]) == set(loaded["labels"]) and re.fullmatch(r"#[0-9a-f]{6}", models["colors"]["happy"])
    assert models["auth"] is False


def test_models_offer_only_what_runs_here(server, tiny_video):
    """A detector whose file or package is missing is not offered; choosing it says why, with no server path."""
    from emocontext.serve.capabilities import check_capabilities

    here = check_capabilities()
    models = server.client.get("/v1/models").json()
    assert models["detectors"] == list(here.detectors) and models["models"] == list(here.models)
    assert {m["name"] for m in models["unavailable"]} == {m.name for m in here.missing}
    assert not set(models["detectors"]) & {m["name"] for m in models["unavailable"]}
    for m in models["unavailable"]:
        assert m["reason"] and m["fix"].startswith("on the server") and "/" not in m["reason"]
        r = upload(server, tiny_video, detector=m["name"]) if m["kind"] == "detector" else None
        if r is not None:
            assert r.status_code == 422 and r.json()["error"] == "unavailable", r.text
            assert "not available on this server" in r.json()["detail"] and "/root" not in r.text
            assert "download=True" not in r.text


def test_openapi_documents_the_upload_and_the_versioned_schema(server):
    doc = server.client.get("/openapi.json").json()
    body = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and body["properties"]["file"]["format"] == "binary"
    assert "/v1/jobs" in doc["paths"] and "/v1/jobs/{job_id}/annotated" in doc["paths"]
    ok = doc["paths"]["/v1/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    name = ok["$ref"].rsplit("/", 1)[-1]
    schema = doc["components"]["schemas"][name]
    assert "schema 1" in schema["title"]
    assert {"label", "probabilities", "frames", "no_face"} <= set(schema["properties"])
    assert "schema version 1" in doc["info"]["description"]
    assert {"413", "415", "422", "503"} <= set(doc["paths"]["/v1/predict"]["post"]["responses"])


def _external(html: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
    return [u for u in refs if re.match(r"(?i)(https?:)?//", u)]


def test_page_is_served_self_contained(server):
    r = server.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert 'id="file"' in html and 'type="file"' in html and "/v1/jobs" in html
    assert not _external(html)  # no external asset: every src / href is relative or a fragment
    assert "<script src" not in html
    icon = server.client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg") and b"<svg" in icon.content


def test_api_docs_are_served_offline(server):
    for path in ("/docs", "/redoc"):
        r = server.client.get(path)
        assert r.status_code == 200 and not _external(r.text), _external(r.text)
        for ref in re.findall(r"""(?:src|href)\s*=\s*["'](/[^"']+)""", r.text):
            assert server.client.get(ref).status_code == 200, ref


def test_predict_answers_the_library_json(server, tiny_video, predictor):
    r = upload(server, tiny_video, fps="2")
    assert r.status_code == 200, r.text
    assert r.headers["x-emocontext-schema"] == "1"
    got = r.json()
    assert got["path"] == "tiny clip.mp4" and got["num_frames"] == 4 and got["no_face"] is True
    same(got, library_json(predictor, tiny_video))


@pytest.mark.realdata
def test_predict_real_clip_equals_library(server, predictor):
    clip = data_path(*CREMA_HAPPY)
    r = upload(server, clip, fps="2")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["label"] is not None and got["frames_with_face"] == got["num_frames"] > 0
    same(got, library_json(predictor, clip))


def test_job_reports_progress_and_serves_its_outputs(server, tiny_video, predictor):
    r = upload(server, tiny_video, "/v1/jobs", fps="2")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}" and re.fullmatch(r"[0-9a-f]{32}", job["id"])
    assert job["status"] in ("queued", "running") and job["progress"]["frames_total"] == 4
    job = wait_job(server.client, job["id"])
    assert job["status"] == "done", job["error"]
    assert job["progress"] == {"frames_done": 4, "frames_total": 4}
    same(job["result"], library_json(predictor, tiny_video))
    # the JSON download
    res = server.client.get(job["links"]["result"])
    assert res.status_code == 200 and 'filename="tiny clip.json"' in res.headers["content-disposition"]
    assert res.json() == job["result"]
    # the report names the upload, never the server's temporary file
    report = server.client.get(job["links"]["report"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "tiny clip.mp4" in report.text and "emocontext-serve" not in report.text and "upload-" not in report.text
    # the annotated video decodes
    ann = server.client.get(job["links"]["annotated"])
    assert ann.status_code == 200 and ann.headers["content-type"] == "video/mp4"
    out = server.tmp.parent / "annotated.mp4"
    out.write_bytes(ann.content)
    from emocontext.video.decode import probe

    info = probe(out)
    assert (info.width, info.height) == (96, 64) and info.duration == pytest.approx(2.0, abs=0.2)
    # key frames are PNG pictures of the video's size; their frame indexes point into result.frames
    assert 1 <= len(job["key_frames"]) <= 4
    assert [k["url"].rsplit("/", 1)[1] for k in job["key_frames"]] == [str(n) for n in range(len(job["key_frames"]))]
    for k in job["key_frames"]:
        assert job["result"]["frames"][k["frame"]]["timestamp"] == k["timestamp"]
    png = server.client.get(job["key_frames"][0]["url"])
    assert png.headers["content-type"] == "image/png"
    img = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (64, 96, 3)
    missing = server.client.get(f"/v1/jobs/{job['id']}/keyframes/{len(job['key_frames'])}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert job["persons"] == [] and job["resumed"] == 0 and job["media"]["kind"] == "video"  # no face: no thumbnail
    assert set(job["colors"]) == set(job["result"]["probabilities"])


def test_job_list_newest_first_and_delete(server, tiny_video):
    ids = []
    for _ in range(2):
        r = upload(server, tiny_video, "/v1/jobs", fps="2")
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        wait_job(server.client, ids[-1])
    listed = server.client.get("/v1/jobs", params={"limit": 1}).json()
    assert listed["limit"] == 1 and listed["total"] >= 2 and [j["id"] for j in listed["jobs"]] == [ids[-1]]
    second = server.client.get("/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert [j["id"] for j in second["jobs"]] == [ids[0]]
    assert server.client.get("/v1/jobs", params={"limit": 0}).status_code == 422
    gone = server.client.delete(f"/v1/jobs/{ids[0]}")
    assert gone.status_code == 204
    assert server.client.get(f"/v1/jobs/{ids[0]}").status_code == 404
    assert not (server.data / "jobs" / ids[0]).exists()
    assert server.client.delete(f"/v1/jobs/{ids[0]}").status_code == 404


def _text_as_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is a text file, not a video\n" * 40)
    return p


BAD_INPUTS = {
    # case: (status, error kind)
    "empty": (400, "empty"),
    "text_as_video": (415, "not_media"),
    "truncated_mp4": (415, "not_media"),
    "over_the_limit": (413, "too_large"),
    "over_the_limit_chunked": (413, "too_large"),
    "wrong_file_field": (422, "bad_form"),
    "unknown_field_naming_a_path": (422, "bad_form"),
    "bad_fps": (422, "bad_option"),
    "unknown_model": (422, "bad_option"),
    "path_like_filename": (400, "bad_filename"),
    "no_file": (422, "bad_form"),
    "not_multipart": (415, "not_multipart"),
    "malformed_multipart": (400, "bad_form"),
}


def _send_bad(server: Server, case: str, tmp_path, tiny_video, truncated_mp4, endpoint: str):
    c = server.client
    text = _text_as_video(tmp_path)
    video = {"file": (tiny_video.name, tiny_video.read_bytes())}
    if case == "empty":
        return c.post(endpoint, files={"file": ("clip.mp4", b"", "video/mp4")})
    if case == "text_as_video":
        return c.post(endpoint, files={"file": (text.name, text.read_bytes(), "video/mp4")})
    if case == "truncated_mp4":
        return c.post(endpoint, files={"file": ("clip.mp4", truncated_mp4.read_bytes(), "video/mp4")})
    if case == "over_the_limit":
        return c.post(endpoint, files={"file": ("big.mp4", b"\0" * (1024 * 1024 + 10), "video/mp4")})
    if case == "over_the_limit_chunked":  # no Content-Length: the limit is enforced while reading
        boundary = "b0undary"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'.encode()

        def body():
            yield head
            for _ in range(20):
                yield b"\1" * 65536  # 1.25 MiB in all
            yield f"\r\n--{boundary}--\r\n".encode()

        return c.post(endpoint, content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    if case == "wrong_file_field":
        return c.post(endpoint, files={"video": (tiny_video.name, tiny_video.read_bytes())})
    if case == "unknown_field_naming_a_path":
        return c.post(endpoint, files=video, data={"path": "/etc/passwd"})
    if case == "bad_fps":
        return c.post(endpoint, files=video, data={"fps": "fast"})
    if case == "unknown_model":
        return c.post(endpoint, files=video, data={"model": "../x"})
    if case == "path_like_filename":
        return c.post(endpoint, files={"file": ("../../etc/passwd", tiny_video.read_bytes())})
    if case == "no_file":
        return c.post(endpoint, files={"fps": (None, "5")})
    if case == "not_multipart":
        return c.post(endpoint, json={"path": "/etc/passwd"})
    if case == "malformed_multipart":
        return c.post(endpoint, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zzz"})
    raise AssertionError(case)


@pytest.mark.parametrize("endpoint", ["/v1/predict", "/v1/jobs"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_one_clear_4xx_json_error(server, case, endpoint, tmp_path, tiny_video, truncated_mp4):
    status, kind = BAD_INPUTS[case]
    r = _send_bad(server, case, tmp_path, tiny_video, truncated_mp4, endpoint)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == kind
    assert body["detail"] and "\n" not in body["detail"]
    assert "root:" not in r.text  # nothing of /etc/passwd comes back
    assert server.uploads() == []  # a refused upload leaves no file
    assert server.client.get("/healthz").status_code == 200


def test_server_keeps_serving_after_bad_input(server, tiny_video):
    r = upload(server, tiny_video, fps="2")
    assert r.status_code == 200 and r.json()["num_frames"] == 4


def test_unknown_job_and_route_are_json_404(server):
    for path in ("/v1/jobs/0123456789abcdef", "/v1/nothing"):
        r = server.client.get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_metrics_count_requests_latency_queue_and_failures(server):
    text = server.client.get("/metrics").text

    def value(sample: str) -> float:
        m = re.search(r"^" + re.escape(sample) + r" ([0-9.e+]+)$", text, re.M)
        assert m, f"{sample} not in /metrics"
        return float(m.group(1))

    assert value('emocontext_http_requests_total{method="POST",route="/v1/predict",status="200"}') >= 2
    assert value('emocontext_http_requests_total{method="POST",route="/v1/jobs",status="202"}') >= 1
    assert value('emocontext_http_request_duration_seconds_count{route="/v1/predict"}') >= 2
    assert 'emocontext_http_request_duration_seconds_bucket{le="0.5",route="/v1/predict"}' in text
    assert value("emocontext_queue_depth") == 0 and value("emocontext_jobs_running") == 0
    assert value("emocontext_slots_in_use") == 0 and value("emocontext_workers_ready") == 1
    assert value('emocontext_failures_total{kind="too_large"}') >= 4
    assert value('emocontext_failures_total{kind="not_media"}') >= 4
    assert value('emocontext_job_duration_seconds_count{outcome="done"}') >= 3


def test_uploads_are_removed_when_jobs_end(server):
    assert (server.data / "jobs.sqlite3").is_file()
    assert server.uploads() == []
    assert list(server.tmp.iterdir()) == []  # nothing in the temporary folder either


@pytest.mark.slow
def test_full_queue_time_limit_and_clean_stop(tmp_path, tiny_video, long_video):
    """One worker, no queue, 2 s per job: a second request gets 503; the long job is stopped, the next one runs."""
    tmp = tmp_path / "tmp"
    with running_server(tmp, "--queue", "0", "--job-timeout", JOB_TIMEOUT) as s:
        r = upload(s, long_video, "/v1/jobs", fps="30")
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        busy = upload(s, tiny_video, fps="2")
        assert busy.status_code == 503 and busy.json()["error"] == "queue_full"
        assert int(busy.headers["retry-after"]) >= 1
        job = wait_job(s.client, job_id)
        assert job["status"] == "failed" and job["error"]["error"] == "time_limit", job
        assert f"{float(JOB_TIMEOUT):g} s" in job["error"]["detail"]
        assert s.client.get(f"/v1/jobs/{job_id}/result").status_code == 422
        # the worker was replaced: once its models are loaded again the service answers
        s.wait_ready()
        ok = upload(s, tiny_video, fps="2")
        assert ok.status_code == 200 and ok.json()["num_frames"] == 4, ok.text
        assert s.uploads() == []
        metrics = s.client.get("/metrics").text
        assert re.search(r'^emocontext_failures_total\{kind="queue_full"\} 1\.0$', metrics, re.M)
        assert re.search(r'^emocontext_failures_total\{kind="time_limit"\} 1\.0$', metrics, re.M)
        start = time.monotonic()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: -15 is its normal exit status
    assert s.proc.returncode in (0, -signal.SIGTERM) and time.monotonic() - start < 120
    assert list(tmp.iterdir()) == [] and s.uploads() == []  # no upload left at shutdown


@pytest.mark.slow
def test_cancel_a_running_job(tmp_path, long_video, tiny_video):
    """DELETE on a running job: cancelled at once, its worker replaced, its files gone, the next job runs."""
    with running_server(tmp_path / "tmp", "--queue", "1") as s:
        r = upload(s, long_video, "/v1/jobs", fps="30")
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        wait_until(s.client, job_id, "running")
        d = s.client.delete(f"/v1/jobs/{job_id}")
        assert d.status_code == 200 and d.json()["status"] == "cancelled" and d.json()["error"]["error"] == "cancelled"
        assert s.client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        assert s.uploads() == [] and not (s.data / "jobs" / job_id).exists()
        s.wait_ready()
        ok = upload(s, tiny_video, fps="2")
        assert ok.status_code == 200 and ok.json()["num_frames"] == 4, ok.text
