"""Shared test helpers: tiny videos made on the fly, and the real-data location."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOCONTEXT_DATA", REPO.parent / "shared" / "data"))


def data_path(*parts: str) -> Path:
    """A path under the real data folder; skips the test with a reason when it is absent."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found: {p} (set EMOCONTEXT_DATA)")
    return p


def encode_video(
    path: Path,
    frames: np.ndarray,
    *,
    fps: int = 10,
    pts_seconds: list[float] | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    codec: str = "mpeg4",
) -> Path:
    """Write RGB uint8 frames ``(T, H, W, 3)`` to ``path`` with PyAV.

    ``pts_seconds`` gives each frame's presentation time (variable frame rate);
    ``audio`` a mono float32 track.
    """
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=fps)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        tb = Fraction(1, 1000)
        vs.time_base = tb
        if audio is not None:
            aus = c.add_stream("aac", rate=sample_rate, layout="mono")
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            t = pts_seconds[i] if pts_seconds is not None else i / fps
            f.pts = int(round(t * 1000))
            f.time_base = tb
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if audio is not None:
            n = 1024
            for i in range(0, len(audio), n):
                chunk = audio[i : i + n].astype(np.float32)
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = sample_rate
                af.pts = i
                af.time_base = Fraction(1, sample_rate)
                for p in aus.encode(af):
                    c.mux(p)
            for p in aus.encode():
                c.mux(p)
    return path


def numbered_frames(n: int, h: int = 64, w: int = 96) -> np.ndarray:
    """Frames whose brightness encodes their index (evenly spaced grey levels from 10 to 240)."""
    levels = np.linspace(10, 240, n).round()
    return np.broadcast_to(levels[:, None, None, None], (n, h, w, 3)).astype(np.uint8).copy()


def frame_index(img: np.ndarray, n: int) -> int:
    """Inverse of :func:`numbered_frames` for a decoded frame (lossy codec: nearest level)."""
    levels = np.linspace(10, 240, n).round()
    return int(np.argmin(np.abs(levels - img.mean())))


def feature_record(entry, face, context, *, present=None, timestamps=None, map_shape=(2, 1, 1), **extra):
    """A feature-store ``Record`` of synthetic features for ``entry``: ``T = len(face)`` frames of ``face`` and
    ``context`` vectors; zero face probabilities (7), face maps ``(T, *map_shape)`` and boxes; every face
    present and timestamps 0.2 s apart unless given; ``extra`` (audio) passed on."""
    from emocontext.features.store import Record

    t = len(face)
    return Record(
        face=face,
        face_probs=np.zeros((t, 7), np.float32),
        face_map=np.zeros((t, *map_shape), np.float32),
        context=context,
        face_present=np.ones(t, bool) if present is None else present,
        timestamps=np.arange(t) * 0.2 if timestamps is None else timestamps,
        boxes=np.zeros((t, 4), np.float32),
        meta=entry.to_dict(),
        **extra,
    )


def imbalanced_store(root, n=24, t=5, d=6, seed=0):
    """Clips labelled 0 (two thirds), 1 and 2; the label is readable from the context stream."""
    rng = np.random.default_rng(seed)
    from emocontext.data.manifest import ClipEntry
    from emocontext.features.store import FeatureStore
    from emocontext.labels import EKMAN7

    store = FeatureStore(root, {"face": {"name": "synthetic"}, "context": {"name": "synthetic"}})
    entries = []
    for i in range(n):
        y = 0 if i % 3 else 1 + (i // 3) % 2
        ctx = rng.normal(size=(t, d)).astype(np.float32)
        ctx[:, y] += 1.0
        split = "train" if i < 16 else "val"
        e = ClipEntry(f"/synthetic/imb{i}.mp4", EKMAN7.names[y], split, None)
        store.put(e.clip_id, feature_record(e, rng.normal(size=(t, d)).astype(np.float32), ctx, map_shape=(d, 1, 1)))
        entries.append(e)
    return store, entries
