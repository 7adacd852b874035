"""The inference runtime: sessions, their errors, the one thread count."""

from __future__ import annotations

import pytest

from emocontext import runtime
from emocontext.errors import WeightsError


def test_a_missing_or_broken_graph_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        runtime.session(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(WeightsError, match="cannot load"):
        runtime.session(bad)
    with pytest.raises(WeightsError, match="R-Net"):
        runtime.session_from_bytes(b"\x00\x01", "R-Net")


def test_thread_count_reaches_new_sessions_and_torch(monkeypatch):
    monkeypatch.setattr(runtime, "_threads", None)
    assert 1 <= runtime.threads() <= 4
    with pytest.raises(ValueError):
        runtime.set_threads(0)
    runtime.set_threads(None)  # leaves the default
    assert runtime._threads is None
    runtime.set_threads(1)
    assert runtime.threads() == 1
    assert runtime.import_torch().get_num_threads() == 1


def test_onnx_runtime_telemetry_is_off_and_leaves_no_file(tmp_path):
    """ONNX Runtime uploads usage telemetry by default on Linux and writes a session file into TMPDIR."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["TMPDIR"] = str(tmp_path)
    pnet = "hub.resolve(weights.MTCNN_WEIGHTS) / 'mtcnn_pnet.onnx'"
    code = f"from emocontext import hub, runtime, weights\nruntime.session({pnet})"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert list(tmp_path.iterdir()) == []
