"""Streaming multipart: the file goes to a server-named temporary file, the size limit holds while reading."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from emocontext.serve.errors import ApiError  # noqa: E402
from emocontext.serve.uploads import check_filename, receive_upload  # noqa: E402

LIMIT = 100_000


@pytest.fixture
def client(tmp_path):
    app = FastAPI()

    @app.post("/up")
    async def up(request: Request):
        try:
            u = await receive_upload(request, tmp_path, max_bytes=LIMIT, fields=("fps",))
        except ApiError as e:
            return JSONResponse(e.body(), e.status)
        data = u.path.read_bytes()
        return {"name": u.filename, "size": u.size, "fields": u.fields, "data": data.decode(), "path": u.path.name}

    return TestClient(app)


def test_file_and_fields_are_received(client, tmp_path):
    r = client.post("/up", files={"file": ("clip one.mp4", b"abc" * 1000)}, data={"fps": " 5 "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "clip one.mp4" and body["size"] == 3000 and body["data"] == "abc" * 1000
    assert body["fields"] == {"fps": "5"}
    assert body["path"].startswith("upload-") and "clip" not in body["path"]  # the server names the file


def test_limit_is_enforced_while_reading_and_nothing_is_left(client, tmp_path):
    def chunks():  # no Content-Length: only counting the bytes can stop it
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        for _ in range(30):
            yield b"z" * 10_000
        yield b"\r\n--x--\r\n"

    r = client.post("/up", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "status", "kind"),
    [
        ({"files": {"video": ("a.mp4", b"x")}}, 422, "bad_form"),
        ({"files": {"file": ("a.mp4", b"x")}, "data": {"path": "/etc/passwd"}}, 422, "bad_form"),
        ({"files": {"file": ("a.mp4", b"x")}, "data": {"fps": "9" * 2000}}, 422, "bad_form"),
        ({"files": [("file", ("a.mp4", b"x")), ("file", ("b.mp4", b"y"))]}, 422, "bad_form"),
        ({"files": {"file": ("../../etc/passwd", b"x")}}, 400, "bad_filename"),
        ({"data": {"fps": "5"}, "files": {"fps2": (None, "1")}}, 422, "bad_form"),
        ({"json": {"file": "/etc/passwd"}}, 415, "not_multipart"),
    ],
)
def test_bad_forms_are_refused_without_leftovers(client, tmp_path, kwargs, status, kind):
    r = client.post("/up", **kwargs)
    assert r.status_code == status and r.json()["error"] == kind, r.text
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["clip.mp4", "été 2024.flv", "a..b.mov"])
def test_plain_file_names_pass(name):
    assert check_filename(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "../x.mp4", "a/b.mp4", "C:\\x\\y.mp4", "a\x00.mp4", "x" * 256])
def test_path_like_file_names_are_refused(name):
    with pytest.raises(ApiError) as e:
        check_filename(name)
    assert e.value.status == 400 and e.value.kind == "bad_filename"
