"""Streaming video and audio decoding with PyAV.

Frames are sampled at a target frame rate (default 5 fps, as Sun et al., MEC 2017,
section V-B) by **presentation timestamp**: for each target time
``t_k = start + k / fps`` the frame on screen at ``t_k`` is taken (the last frame
whose timestamp is <= ``t_k``). This is correct for variable-frame-rate files,
where counting frames is not. Only the sampled frames are converted to RGB and
nothing but the current and previous decoded frame is held in memory, so a file
of any length streams through :func:`iter_frames`.

Still images (``.jpg``, ``.png``, ...) are read as one-frame videos.

Errors: every failure is a :class:`~emocontext.errors.VideoDecodeError` (or
:class:`~emocontext.errors.AudioDecodeError`) whose message names the file and
the problem: missing, empty, not a media file, no video stream, no decodable
frame. A file that breaks off part-way (truncated download) yields the frames
before the break and sets :attr:`Clip.truncated`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioDecodeError, VideoDecodeError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MEDIA_SUFFIXES",
    "VideoInfo",
    "Frame",
    "Clip",
    "probe",
    "iter_frames",
    "read_frames",
    "read_audio",
    "random_start",
    "is_image",
]

log = logging.getLogger(__name__)

#: The one list of media file suffixes (lower case): still images are read with OpenCV as one-frame videos,
#: videos with PyAV. :mod:`emocontext.data.manifest` and the CLI use these sets.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".flv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp"}
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
DEFAULT_FPS = 5.0


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file. ``duration`` in seconds (None if unknown)."""

    path: str
    width: int
    height: int
    average_fps: float | None
    duration: float | None
    codec: str
    has_audio: bool


@dataclass(frozen=True)
class Frame:
    """One sampled frame: ``image`` RGB uint8 ``(H, W, 3)``, ``timestamp`` in seconds from the file start."""

    image: np.ndarray
    timestamp: float
    index: int


@dataclass
class Clip:
    """Sampled frames of one file: ``frames`` uint8 ``(T, H, W, 3)``, ``timestamps`` float64 ``(T,)`` seconds."""

    frames: np.ndarray
    timestamps: np.ndarray
    info: VideoInfo
    truncated: bool = False


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(f"{path}: no such file")
    if path.is_dir():
        raise VideoDecodeError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")


def _open(path: Path):
    import av

    _check_file(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoDecodeError(f"{path}: not a readable media file ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[0] or type(e).__name__


def _read_image(path: Path) -> np.ndarray:
    import cv2

    _check_file(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise VideoDecodeError(f"{path}: not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _check_codec(vs, path: Path) -> None:
    """A video stream whose codec FFmpeg does not know has no codec context (found by fuzzing)."""
    if vs.codec_context is None:
        raise VideoDecodeError(f"{path}: the video stream's codec is unknown or unsupported")


def _declared_end(container, vs) -> float | None:
    """End time in seconds (the stream's clock) that the header declares for the video stream, or None."""
    tb = vs.time_base
    if vs.duration is not None and tb is not None:
        return float(((vs.start_time or 0) + vs.duration) * tb)
    if container.duration is not None:
        return (container.duration + (container.start_time or 0)) / 1_000_000
    return None


def probe(path: str | Path) -> VideoInfo:
    """Container facts of a video (or image) file without decoding frames.

    Raises:
        VideoDecodeError: missing, empty or unreadable file, or no video stream.
    """
    path = Path(path)
    if is_image(path):
        img = _read_image(path)
        return VideoInfo(str(path), img.shape[1], img.shape[0], None, 0.0, "image", False)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        vs = container.streams.video[0]
        _check_codec(vs, path)
        duration = None
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        rate = vs.average_rate
        return VideoInfo(
            path=str(path),
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            average_fps=float(rate) if rate else None,
            duration=duration,
            codec=vs.codec_context.name,
            has_audio=bool(container.streams.audio),
        )


def iter_frames(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    start: float = 0.0,
    max_duration: float | None = None,
    status: dict | None = None,
) -> Iterator[Frame]:
    """Yield frames sampled at ``fps`` from ``start`` seconds, for at most ``max_duration`` seconds.

    Args:
        path: video file (any container/codec FFmpeg reads) or still image.
        fps: target sampling rate in Hz (> 0). Above the file's own frame rate every decoded frame is
            yielded once (no copies), so fewer frames than ``fps x duration`` come out.
        start: offset in seconds from the first frame (fixed in evaluation, random
            in training: see :func:`random_start`).
        max_duration: stop after this many seconds of video (None = to the end).
        status: if given, ``status["truncated"]`` is set True when decoding broke off, or when the
            file ended more than ``max(0.5 s, 3 frame periods)`` before the duration its header
            declares (a file cut off at a packet boundary, as a partial FLV download). The caller then
            reports it (the details are logged at INFO level); without ``status`` it is logged as a warning,
            so that each break is reported once.

    Yields:
        :class:`Frame` with RGB uint8 ``(H, W, 3)`` images, timestamps relative to
        the first frame of the file.

    Raises:
        VideoDecodeError: the file cannot be opened, has no video stream, or no
            frame could be decoded. A break after some frames ends the iteration
            with a warning instead (the frames before it are kept).
    """
    import av

    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    path = Path(path)
    if is_image(path):
        yield Frame(_read_image(path), 0.0, 0)
        return
    end = math.inf if max_duration is None else start + max_duration
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        vs = container.streams.video[0]
        _check_codec(vs, path)
        vs.thread_type = "AUTO"
        tb = vs.time_base
        rate = float(vs.average_rate) if vs.average_rate else 25.0
        origin = None  # timestamp of the first frame: times are relative to it
        if start > 1.0 and tb is not None:
            base = vs.start_time or 0
            try:
                container.seek(base + int((start - 1.0) / tb), stream=vs, backward=True)
                origin = float(base * tb)
            except av.FFmpegError:
                container.seek(0)
        declared_end = _declared_end(container, vs)
        k = 0  # index of the next target time
        n_out = 0
        prev = None  # (av.VideoFrame, relative timestamp)
        shown = False  # prev was already emitted: a decoded frame is emitted at most once
        decoded = 0
        try:
            for frame in container.decode(vs):
                decoded += 1
                t_abs = frame.time if frame.time is not None else decoded / rate
                if origin is None:
                    origin = t_abs
                t = t_abs - origin
                # emit the previous frame at the first target time it covers (once: asking for more frames
                # per second than the file has gives each decoded frame once, not copies of it)
                while prev is not None and start + k / fps < t:
                    target = start + k / fps
                    if target >= end:
                        return
                    if target >= prev[1] and not shown:
                        yield Frame(prev[0].to_ndarray(format="rgb24"), target, n_out)
                        n_out += 1
                        shown = True
                    k += 1
                prev, shown = (frame, t), False
                if start + k / fps >= end:
                    return
        except av.FFmpegError as e:
            if prev is None and n_out == 0:
                raise VideoDecodeError(f"{path}: no decodable video frame ({_reason(e)})") from None
            log.log(
                _break_level(status),
                "%s: decoding stopped at %.2f s (%s); keeping the frames before it",
                path,
                prev[1],
                _reason(e),
            )
            if status is not None:
                status["truncated"] = True
        if prev is None:
            raise VideoDecodeError(f"{path}: the video stream has no frames")
        # the last frame stays on screen for one frame period
        last_end = prev[1] + 1.0 / rate
        if declared_end is not None and origin is not None and end > declared_end - origin:
            missing = declared_end - origin - last_end
            if missing > max(0.5, 3.0 / rate) and not (status or {}).get("truncated"):
                # the file ends without an error before the duration its header declares (a cut-off FLV)
                log.log(
                    _break_level(status),
                    "%s: the file ends at %.2f s but declares %.2f s (truncated?); keeping the frames before the end",
                    path,
                    last_end,
                    declared_end - origin,
                )
                if status is not None:
                    status["truncated"] = True
        while start + k / fps < min(last_end, end):
            target = start + k / fps
            if target >= prev[1] and not shown:
                yield Frame(prev[0].to_ndarray(format="rgb24"), target, n_out)
                n_out += 1
                shown = True
            k += 1
        if n_out == 0:
            raise VideoDecodeError(f"{path}: no frame at or after start={start:.2f} s (video ends at {prev[1]:.2f} s)")


def _break_level(status: dict | None) -> int:
    """A file that breaks off is the caller's to report when it asked for the ``status``: INFO then, else WARNING."""
    return logging.INFO if status is not None else logging.WARNING


def read_frames(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    start: float = 0.0,
    max_duration: float | None = None,
) -> Clip:
    """All sampled frames of a file as one :class:`Clip` (see :func:`iter_frames` for arguments and errors).

    Memory is ``T x H x W x 3`` bytes for the *sampled* frames only; for long
    files prefer :func:`iter_frames` or set ``max_duration``.
    """
    info = probe(path)
    status: dict = {}
    frames = list(iter_frames(path, fps=fps, start=start, max_duration=max_duration, status=status))
    if status.get("truncated"):
        log.warning("%s: the file breaks off part-way; only the frames before the break were read", path)
    return Clip(
        frames=np.stack([f.image for f in frames]),
        timestamps=np.array([f.timestamp for f in frames], dtype=np.float64),
        info=info,
        truncated=status.get("truncated", False),
    )


def random_start(info: VideoInfo, clip_duration: float, rng: np.random.Generator) -> float:
    """A uniformly random start offset in seconds so that ``clip_duration`` fits (training augmentation).

    Returns 0 when the video is shorter than the clip or its duration is unknown.
    """
    if not info.duration or info.duration <= clip_duration:
        return 0.0
    return float(rng.uniform(0.0, info.duration - clip_duration))


def read_audio(
    path: str | Path,
    *,
    sample_rate: int = 16000,
    start: float = 0.0,
    max_duration: float | None = None,
) -> np.ndarray:
    """Decode the first audio stream as mono float32 in [-1, 1] at ``sample_rate`` Hz, shape ``(N,)``.

    Raises:
        AudioDecodeError: missing or unreadable file, or no audio stream.
    """
    import av

    path = Path(path)
    try:
        container = _open(path)
    except VideoDecodeError as e:
        raise AudioDecodeError(str(e)) from None
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as e:
            if not chunks:
                raise AudioDecodeError(f"{path}: no decodable audio ({_reason(e)})") from None
            log.warning("%s: audio decoding stopped early (%s)", path, _reason(e))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    i0 = int(round(start * sample_rate))
    i1 = len(audio) if max_duration is None else i0 + int(round(max_duration * sample_rate))
    return audio[i0:i1]
