"""Fixtures for the report tests: a tiny video of a moving "face" and hand-made predictions of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emocontext.inference import FramePrediction, Prediction
from emocontext.labels import EKMAN7
from emocontext.video.streams import centre_square
from tests.conftest import encode_video

#: the synthetic video: 2 s at 10 fps, 64 x 48 px; the predictions sample it at 5 fps
VIDEO_FPS = 10
N_FRAMES = 20
H, W = 48, 64
SAMPLE_FPS = 5.0
N_SAMPLED = 10
#: sampled frames 7..9 have no face (the rectangle is hidden there)
NO_FACE = (7, 8, 9)
LABELS = list(EKMAN7.names)
BG = (20, 40, 90)
RECT = (230, 60, 40)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: renders the HTML report in headless Chromium (skipped without it)")


def rect_box(i: int) -> list[float]:
    """xyxy box of the coloured rectangle in video frame ``i`` (moves 2 px right per frame)."""
    x = 4 + 2 * i
    return [float(x), 16.0, float(x + 16), 32.0]


def make_frames() -> np.ndarray:
    frames = np.empty((N_FRAMES, H, W, 3), np.uint8)
    frames[:] = BG
    for i in range(N_FRAMES):
        if i // 2 in NO_FACE:
            continue
        x1, y1, x2, y2 = (int(v) for v in rect_box(i))
        frames[i, y1:y2, x1:x2] = RECT
    return frames


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("report_video")


@pytest.fixture(scope="session")
def video(video_dir) -> Path:
    """A 2 s, 10 fps, 64x48 mp4 whose file name needs HTML escaping."""
    return encode_video(video_dir / "clip <a&b>.mp4", make_frames(), fps=VIDEO_FPS)


def _probs(k: int, face: bool) -> dict[str, float]:
    """Frame probabilities: happy rises then falls; without a face, neutral leads."""
    logits = np.zeros(len(LABELS))
    if face:
        logits[LABELS.index("happy")] = 1.0 + 0.5 * min(k, 6 - k if k <= 6 else 0)
        logits[LABELS.index("surprise")] = 0.8
    else:
        logits[LABELS.index("neutral")] = 1.5
    p = np.exp(logits) / np.exp(logits).sum()
    return {n: round(float(v), 4) for n, v in zip(LABELS, p, strict=True)}


def _clip(frames: list[FramePrediction]) -> tuple[str | None, float | None, dict[str, float]]:
    ps = [f.probabilities for f in frames if f.probabilities is not None]
    if not ps:
        return None, None, {}
    mean = {n: round(float(np.mean([p[n] for p in ps])), 4) for n in LABELS}
    label = max(mean, key=mean.get)
    return label, mean[label], mean


def one_hot_attention(row: int, col: int, n: int = 7) -> list[list[float]]:
    a = np.zeros((n, n))
    a[row, col] = 1.0
    return a.tolist()


def make_prediction(path: Path, *, context: bool, no_face_everywhere: bool = False) -> Prediction:
    """A prediction of :func:`make_frames` as the face-only or the context-aware model would give it."""
    frames = []
    for k in range(N_SAMPLED):
        face = k not in NO_FACE and not no_face_everywhere
        if context:
            frames.append(
                FramePrediction(
                    timestamp=round(k / SAMPLE_FPS, 4),
                    face_present=face,
                    box=rect_box(2 * k) if face else None,
                    probabilities=_probs(k, face),
                    source="face+context" if face else "context",
                    attention=one_hot_attention(k % 7, (3 * k) % 7),
                    fusion_weights={"face": 0.6, "context": 0.4} if face else {"face": 0.0, "context": 1.0},
                )
            )
        else:
            frames.append(
                FramePrediction(
                    timestamp=round(k / SAMPLE_FPS, 4),
                    face_present=face,
                    box=rect_box(2 * k) if face else None,
                    probabilities=_probs(k, True) if face else None,
                    source="face" if face else None,
                )
            )
    label, conf, probs = _clip(frames)
    x0, y0, s = centre_square((H, W))
    return Prediction(
        path=str(path),
        label=label,
        confidence=conf,
        probabilities=probs,
        num_frames=N_SAMPLED,
        frames_with_face=sum(f.face_present for f in frames),
        frames=frames,
        model="caer_net_expw" if context else "face_cnn_temporal_mean",
        fps=SAMPLE_FPS,
        frame_wh=(W, H),
        context_box=[float(x0), float(y0), float(x0 + s), float(y0 + s)] if context else None,
    )


@pytest.fixture
def context_prediction(video) -> Prediction:
    return make_prediction(video, context=True)


@pytest.fixture
def face_prediction(video) -> Prediction:
    return make_prediction(video, context=False)
