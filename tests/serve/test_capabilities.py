"""What the server can run, and messages for web users without server paths."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.errors import ConfigError, WeightsError  # noqa: E402
from emocontext.options import PredictOptions  # noqa: E402
from emocontext.serve import capabilities  # noqa: E402
from emocontext.serve.errors import JobError, public_message  # noqa: E402
from emocontext.serve.options import read_options  # noqa: E402


def test_public_message_drops_server_paths_keeps_urls():
    text = (
        "YuNet weights not found. Put the file at /root/.cache/emocontext/face.onnx, or download it from "
        "https://github.com/opencv/opencv_zoo/raw/main/x.onnx (see ~/notes)\n/tmp/emocontext-serve-1/upload-x.video"
    )
    got = public_message(text)
    assert "/root" not in got and "/tmp" not in got and "\n" not in got
    assert "<server path>" in got and "https://github.com/opencv/opencv_zoo/raw/main/x.onnx" in got
    assert JobError.of("decode", "/srv/data/uploads/abc.video: no frame").detail == "<server path>: no frame"


def test_missing_detectors_are_listed_with_reason_and_fix(monkeypatch):
    import emocontext.video.faces as faces

    real = faces.create_detector

    def create(name, **kw):
        if name == "yunet":
            raise WeightsError("YuNet weights not found at /root/.cache/emocontext/y.onnx (download=True)")
        if name == "dlib":
            raise ConfigError("the 'dlib' face detector needs dlib: pip install 'emocontext[dlib]'")
        return real(name, **kw)

    monkeypatch.setattr(faces, "create_detector", create)
    monkeypatch.setattr(capabilities.importlib.util, "find_spec", lambda name: None)
    caps = capabilities.check_capabilities()
    assert "yunet" not in caps.detectors and "dlib" not in caps.detectors and "mtcnn" in caps.detectors
    yunet = caps.why_not("detector", "yunet")
    assert yunet.reason == "the yunet model file is not on the server"
    assert yunet.fix == "on the server, run: emocontext weights download yunet"
    dlib = caps.why_not("detector", "dlib")
    assert "not installed" in dlib.reason and "emocontext[dlib]" in dlib.fix
    for m in caps.missing:
        assert "/root" not in m.reason + m.fix and "download=True" not in m.reason + m.fix
    assert set(caps.models) == {"face", "context"}  # their files ship with the package


def test_a_missing_model_file_is_not_offered(monkeypatch):
    from emocontext import hub

    real = hub.resolve

    def resolve(w, *a, **kw):
        if w.name == "context_model":
            raise WeightsError(f"{w.name}: not found at /opt/models/x.pt")
        return real(w, *a, **kw)

    monkeypatch.setattr(hub, "resolve", resolve)
    caps = capabilities.check_capabilities()
    assert caps.models == ("face",)
    missing = caps.why_not("model", "context")
    assert missing.reason == "its model file context_model is not on the server" and "/opt" not in missing.fix
    from emocontext.serve.errors import ApiError

    base = PredictOptions(model="face")
    with pytest.raises(ApiError) as e:
        read_options({"model": "context"}, base=base, capabilities=caps)
    assert e.value.status == 422 and e.value.kind == "unavailable"
    assert "not available on this server (its model file context_model is not on the server)" in e.value.detail
    assert read_options({}, base=base, capabilities=caps).model == "face"
