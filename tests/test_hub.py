"""hub: resolution order, checksums of cached files, atomic downloads; never the network."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import urllib.error
import urllib.request

import pytest

from emocontext import hub
from emocontext.errors import WeightsError
from emocontext.weights import FACE_CNN_WEIGHTS, MTCNN_KERAS_WEIGHTS, MTCNN_WEIGHTS, YUNET_WEIGHTS, Weights


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOCONTEXT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _record(payload: bytes, **kw) -> Weights:
    """A downloadable single-file record whose checksum is the one of ``payload``."""
    return Weights(
        name="test",
        title="test weights",
        files=("w.bin",),
        source="a test",
        licence="MIT",
        sha256={"w.bin": hashlib.sha256(payload).hexdigest()},
        url="https://example.invalid/w.bin",
        **kw,
    )


def test_cache_dir_follows_the_environment(cache):
    assert hub.cache_dir() == cache


def test_sha256_is_the_file_digest_and_sees_changes(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"one")
    assert hub.sha256(f) == hashlib.sha256(b"one").hexdigest()
    f.write_bytes(b"other bytes")  # another size: not the remembered digest
    assert hub.sha256(f) == hashlib.sha256(b"other bytes").hexdigest()


def test_order_path_then_env_then_package(tmp_path, monkeypatch):
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"x")
    monkeypatch.delenv("EMOCONTEXT_FACE_WEIGHTS", raising=False)
    shipped = hub.resolve(FACE_CNN_WEIGHTS)
    assert shipped.name == FACE_CNN_WEIGHTS.filename and shipped.is_file()
    assert hub.default_path(FACE_CNN_WEIGHTS) == shipped
    monkeypatch.setenv("EMOCONTEXT_FACE_WEIGHTS", str(mine))
    assert hub.resolve(FACE_CNN_WEIGHTS) == mine == hub.default_path(FACE_CNN_WEIGHTS)
    other = tmp_path / "other.pt"
    other.write_bytes(b"y")
    assert hub.resolve(FACE_CNN_WEIGHTS, other) == other  # an explicit path beats the variable
    monkeypatch.setenv("EMOCONTEXT_FACE_WEIGHTS", str(tmp_path / "gone.pt"))
    with pytest.raises(WeightsError, match=r"not found at \$EMOCONTEXT_FACE_WEIGHTS=.*gone\.pt; train them"):
        hub.resolve(FACE_CNN_WEIGHTS)


def test_several_files_resolve_to_their_folder(tmp_path):
    for name in MTCNN_WEIGHTS.files[:2]:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"missing mtcnn_onet\.onnx"):
        hub.resolve(MTCNN_WEIGHTS, tmp_path)
    (tmp_path / "mtcnn_onet.onnx").write_bytes(b"x")
    assert hub.resolve(MTCNN_WEIGHTS, tmp_path) == tmp_path
    packaged = hub.packaged_path(MTCNN_WEIGHTS)  # the graphs shipped in emocontext.weights
    assert packaged is not None and all((packaged / f).is_file() for f in MTCNN_WEIGHTS.files)


def test_missing_distribution_is_not_found_with_the_hint():
    """A record whose files are data files of another distribution (MTCNN's Keras arrays, the mtcnn package)."""
    gone = dataclasses.replace(MTCNN_KERAS_WEIGHTS, distribution="no-such-distribution-xyz")
    assert hub.packaged_path(gone) is None
    with pytest.raises(WeightsError, match=r"pip install 'emocontext\[export\]'"):
        hub.resolve(gone)


def test_cached_file_must_match_its_checksum(cache):
    w = _record(b"good")
    with pytest.raises(WeightsError, match="download=True") as e:
        hub.resolve(w)
    assert w.url in str(e.value)
    cache.mkdir()
    (cache / "w.bin").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="SHA-256"):
        hub.resolve(w)
    (cache / "w.bin").write_bytes(b"good")
    assert hub.resolve(w) == cache / "w.bin"


def test_download_is_checked_and_atomic(cache, monkeypatch):
    w = _record(b"the real bytes")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"other bytes"))
    with pytest.raises(WeightsError, match="SHA-256"):
        hub.resolve(w, download=True)
    assert list(cache.iterdir()) == []  # nothing saved, no temporary file left
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"the real bytes"))
    assert hub.resolve(w, download=True).read_bytes() == b"the real bytes"
    assert [p.name for p in cache.iterdir()] == ["w.bin"]


def test_download_network_error_leaves_nothing(cache, monkeypatch):
    def fail(url, timeout):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    with pytest.raises(WeightsError, match="cannot download") as e:
        hub.resolve(_record(b"x"), download=True)
    assert not cache.exists() or not any(cache.iterdir())
    assert f"put the file at {cache / 'w.bin'}" in str(e.value)  # where to put it by hand
    yunet = dataclasses.replace(YUNET_WEIGHTS, package=None, distribution=None)
    monkeypatch.delenv("EMOCONTEXT_YUNET", raising=False)
    with pytest.raises(WeightsError) as e:
        hub.resolve(yunet, download=True)
    assert "set EMOCONTEXT_YUNET to its path" in str(e.value) and YUNET_WEIGHTS.sha256[yunet.filename] in str(e.value)


def test_yunet_record_is_downloadable_and_pinned():
    assert YUNET_WEIGHTS.url.endswith(YUNET_WEIGHTS.filename)
    assert len(YUNET_WEIGHTS.sha256[YUNET_WEIGHTS.filename]) == 64
