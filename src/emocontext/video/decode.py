"""Streaming video and audio decoding with PyAV.

Frames are sampled at a target frame rate (default 5 fps, as Sun et al., MEC 2017,
section V-B) by **presentation timestamp**: for each target time
``t_k = start + k / fps`` the frame on screen at ``t_k`` is taken (the last frame
whose timestamp is <= ``t_k``). This is correct for variable-frame-rate files,
where counting frames is not. Only the sampled frames are converted to RGB and
nothing but the current and previous decoded frame is held in memory, so a file
of any length streams through :func:`iter_frames`.

Still images (``.jpg``, ``.png``, ...) are read as one-frame videos.

This module is the one place that opens media files (the layer test forbids PyAV elsewhere): it
holds the suffix tables, the checks (missing, empty, no video stream, unknown codec), the readers
(:class:`VideoReader`: every decoded frame at the file's own rate; :func:`iter_frames`: frames
sampled at a target rate, by :class:`FrameSampler`), the container facts (:func:`probe`,
:func:`stream_origins`), what a file is by its content (:func:`identify_media`: the service's upload check)
and the audio (:func:`read_audio`). Writing video is
:mod:`.encode`'s.

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
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import AudioDecodeError, NotMediaError, VideoDecodeError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MEDIA_SUFFIXES",
    "CONTAINER_FORMATS",
    "IMAGE_DEMUXERS",
    "VIDEO_SUFFIX",
    "VideoInfo",
    "MediaContent",
    "Frame",
    "Clip",
    "DecodedFrame",
    "VideoReader",
    "FrameSampler",
    "probe",
    "identify_media",
    "iter_frames",
    "read_frames",
    "read_audio",
    "random_start",
    "is_image",
    "open_container",
    "stream_origins",
]

log = logging.getLogger(__name__)

#: The one list of media file suffixes (lower case): still images are read with OpenCV as one-frame videos,
#: videos with PyAV. :mod:`emocontext.data.manifest` and the CLI use these sets.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".flv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp"}
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
#: Video files :mod:`.encode` writes, by suffix: the FFmpeg container format of each.
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
DEFAULT_FPS = 5.0
#: FFmpeg demuxers of single images -> the suffix that makes the pipeline read the file as an image
#: (:func:`identify_media`).
IMAGE_DEMUXERS = {
    "png_pipe": ".png",
    "jpeg_pipe": ".jpg",
    "jpegls_pipe": ".jpg",
    "bmp_pipe": ".bmp",
    "webp_pipe": ".webp",
    "tiff_pipe": ".tiff",
}
#: The suffix :func:`identify_media` gives a video: any suffix outside :data:`IMAGE_SUFFIXES` is read as one.
VIDEO_SUFFIX = ".video"


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
class MediaContent:
    """What a file is, found by decoding its start (:func:`identify_media`), never by its name.

    Attributes:
        kind: ``"video"`` or ``"image"``.
        suffix: the suffix that makes the pipeline read the file as what it is (:data:`VIDEO_SUFFIX`,
            ``.png``, ``.jpg``, ...).
        width, height: frame size in pixels.
        duration: seconds (0 for an image; None when the container does not say).
        format: the FFmpeg demuxer that recognised it (``"flv"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``, ...;
            ``"opencv"``: an image only OpenCV reads).
    """

    kind: str
    suffix: str
    width: int
    height: int
    duration: float | None
    format: str


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


def open_container(path: str | Path):
    """The file opened with PyAV for reading (a context manager), after the checks every reader makes.

    Raises:
        VideoDecodeError: missing, a folder, empty (0 bytes), or no demuxer recognises it.
    """
    import av

    path = Path(path)
    _check_file(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoDecodeError(f"{path}: not a readable media file ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[0] or type(e).__name__


def _opencv_image(path: Path) -> np.ndarray | None:
    """The picture OpenCV decodes from the file's bytes (BGR), or None."""
    import cv2

    return cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)


def _read_image(path: Path) -> np.ndarray:
    import cv2

    _check_file(path)
    img = _opencv_image(path)
    if img is None:
        raise VideoDecodeError(f"{path}: not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _video_stream(container, path: Path):
    """The first video stream of an open container.

    Raises:
        VideoDecodeError: no video stream, or a codec FFmpeg does not know (no codec context: found by fuzzing).
    """
    if not container.streams.video:
        raise VideoDecodeError(f"{path}: no video stream")
    vs = container.streams.video[0]
    if vs.codec_context is None:
        raise VideoDecodeError(f"{path}: the video stream's codec is unknown or unsupported")
    return vs


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
    with open_container(path) as container:
        vs = _video_stream(container, path)
        rate = vs.average_rate
        return VideoInfo(
            path=str(path),
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            average_fps=float(rate) if rate else None,
            duration=_duration(container, vs),
            codec=vs.codec_context.name,
            has_audio=bool(container.streams.audio),
        )


def _duration(container, vs) -> float | None:
    """Seconds of the video stream, else of the container; None when neither says."""
    if vs.duration is not None and vs.time_base is not None:
        return float(vs.duration * vs.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _why(e: Exception) -> str:
    return getattr(e, "strerror", None) or type(e).__name__


def identify_media(path: str | Path) -> MediaContent:
    """Decode the start of ``path`` and say what it is, by its content (FFmpeg's probing), never by its name.

    The first frame of the first video stream must decode. Still images are recognised by the demuxer
    FFmpeg picks (:data:`IMAGE_DEMUXERS`: ``png_pipe``, ``jpeg_pipe``, ...) and must also decode with
    OpenCV, which reads images for the pipeline; a file FFmpeg does not recognise is an image if OpenCV
    reads it.

    Raises:
        NotMediaError: ``empty`` (0 bytes); or no demuxer recognises the content, it has no video stream,
            or no frame decodes (text, audio only, a truncated MP4 without its index, ...). Its ``detail``
            says which without the file's name.
    """
    import av

    path = Path(path)
    if path.stat().st_size == 0:
        raise NotMediaError(path, "the file is empty (0 bytes)", empty=True)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        img = _opencv_image(path)
        if img is not None:
            return MediaContent("image", ".png", img.shape[1], img.shape[0], 0.0, "opencv")
        raise NotMediaError(path, f"the file is not a video or image that can be decoded ({_why(e)})") from None
    with container:
        fmt = container.format.name
        if not container.streams.video:
            raise NotMediaError(path, f"the file has no video stream (format {fmt})")
        vs = container.streams.video[0]
        try:
            frame = next(iter(container.decode(vs)), None)
        except (av.FFmpegError, ValueError) as e:
            raise NotMediaError(path, f"no frame of the file decodes ({_why(e)})") from None
        if frame is None:
            raise NotMediaError(path, "the video stream has no frame")
        width, height, duration = frame.width, frame.height, _duration(container, vs)
    if fmt in IMAGE_DEMUXERS and _opencv_image(path) is not None:
        return MediaContent("image", IMAGE_DEMUXERS[fmt], width, height, 0.0, fmt)
    return MediaContent("video", VIDEO_SUFFIX, width, height, duration, fmt)


@dataclass(eq=False)
class DecodedFrame:
    """One decoded frame at the file's own rate: ``timestamp`` in seconds from the file's first frame.

    ``image`` (RGB uint8 ``(H, W, 3)``) is converted from the decoder's frame on first use and kept.
    """

    frame: object = field(repr=False)
    timestamp: float
    index: int
    _image: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self.frame.to_ndarray(format="rgb24")
        return self._image


class VideoReader:
    """The first video stream of a file, decoded frame by frame at its own rate (a context manager).

    Times are presentation timestamps relative to the first decoded frame (after a :meth:`seek`,
    to the stream's start), so variable-frame-rate files keep their timing.

    Attributes:
        rate: the stream's average frame rate in Hz (25 when the container does not say); a frame
            without a timestamp is placed at ``n / rate``, and the last frame stays on screen for
            ``1 / rate``.
        native_rate: the frame rate to write a copy at (a Fraction: the average, else the guessed rate).
        declared_end: end time in seconds (the stream's clock) that the header declares, or None.
        truncated: decoding broke off after some frames (set once :meth:`frames` ends).
        last_time: timestamp of the last decoded frame (None before the first).

    Raises:
        VideoDecodeError: missing, empty or unreadable file, no video stream, unknown codec.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.container = open_container(self.path)
        try:
            self.stream = vs = _video_stream(self.container, self.path)
        except VideoDecodeError:
            self.container.close()
            raise
        vs.thread_type = "AUTO"
        self.rate = float(vs.average_rate) if vs.average_rate else 25.0
        self.native_rate = Fraction(vs.average_rate or vs.guessed_rate or 25)
        self.declared_end = _declared_end(self.container, vs)
        self.origin: float | None = None  # timestamp of the first frame: times are relative to it
        self.truncated = False
        self.last_time: float | None = None
        self.decoded = 0

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    def seek(self, start: float) -> None:
        """Start decoding about a second before ``start`` seconds (only worth it past 1 s; times stay file-relative)."""
        import av

        vs = self.stream
        if start > 1.0 and vs.time_base is not None:
            base = vs.start_time or 0
            try:
                self.container.seek(base + int((start - 1.0) / vs.time_base), stream=vs, backward=True)
                self.origin = float(base * vs.time_base)
            except av.FFmpegError:
                self.container.seek(0)

    def expected_samples(self, fps: float, start: float = 0.0, end: float = math.inf) -> int | None:
        """How many frames sampling at ``fps`` from ``start`` to ``end`` seconds should give, from the duration the
        header declares (an estimate for progress: a truncated file gives fewer); None when it declares none."""
        vs = self.stream
        if self.declared_end is None:
            return None
        first = float((vs.start_time or 0) * vs.time_base) if vs.time_base is not None else 0.0
        return max(0, math.ceil((min(self.declared_end - first, end) - start) * fps))

    def frames(self) -> Iterator[DecodedFrame]:
        """Every decoded frame, in presentation order.

        A break after some frames (a truncated download) ends the iteration with a warning and sets
        :attr:`truncated`.

        Raises:
            VideoDecodeError: no frame decodes, or the stream has none.
        """
        import av

        try:
            for frame in self.container.decode(self.stream):
                self.decoded += 1
                t_abs = frame.time if frame.time is not None else self.decoded / self.rate
                if self.origin is None:
                    self.origin = t_abs
                self.last_time = t_abs - self.origin
                yield DecodedFrame(frame, self.last_time, self.decoded - 1)
        except av.FFmpegError as e:
            if self.last_time is None:
                raise VideoDecodeError(f"{self.path}: no decodable video frame ({_reason(e)})") from None
            log.info(  # the caller reports the break once (iter_frames, Streams.truncated)
                "%s: decoding stopped at %.2f s (%s); keeping the frames before it",
                self.path,
                self.last_time,
                _reason(e),
            )
            self.truncated = True
        if self.last_time is None:
            raise VideoDecodeError(f"{self.path}: the video stream has no frames")


class FrameSampler:
    """The sampling rule of :func:`iter_frames`, fed one decoded frame at a time.

    For each target time ``t_k = start + k / fps`` the frame on screen at ``t_k`` is taken (the last
    frame whose timestamp is <= ``t_k``), each decoded frame at most once (no copies when ``fps`` is
    above the file's rate). :meth:`push` gives the sampled frames a new decoded frame closes;
    :meth:`finish` those the last frame covers. Used by :func:`iter_frames` and by a pass that also
    needs every native frame (the annotated video, whose key frames come from the same decoding).

    Attributes:
        done: the end time was reached; later frames give nothing.
        count: frames sampled so far.
    """

    def __init__(self, fps: float = DEFAULT_FPS, start: float = 0.0, end: float = math.inf):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.fps, self.start, self.end = fps, start, end
        self.k = 0  # index of the next target time
        self.count = 0
        self.prev: DecodedFrame | None = None
        self.shown = False  # prev was already emitted: a decoded frame is emitted at most once
        self.done = False

    def _target(self) -> float:
        return self.start + self.k / self.fps

    def _emit(self, target: float, out: list[Frame]) -> None:
        if target >= self.prev.timestamp and not self.shown:
            out.append(Frame(self.prev.image, target, self.count))
            self.count += 1
            self.shown = True
        self.k += 1

    def push(self, frame: DecodedFrame) -> list[Frame]:
        """The sampled frames that ``frame`` (the next decoded one) closes: the previous frame, at each target
        time it covers."""
        out: list[Frame] = []
        if self.done:
            return out
        while self.prev is not None and self._target() < frame.timestamp:
            if self._target() >= self.end:
                self.done = True
                return out
            self._emit(self._target(), out)
        self.prev, self.shown = frame, False
        self.done = self._target() >= self.end
        return out

    def finish(self, frame_period: float) -> list[Frame]:
        """The sampled frames of the last decoded frame, on screen for ``frame_period`` seconds."""
        out: list[Frame] = []
        if self.done or self.prev is None:
            return out
        last_end = self.prev.timestamp + frame_period
        while self._target() < min(last_end, self.end):
            self._emit(self._target(), out)
        self.done = True
        return out


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
            declares (a file cut off at a packet boundary, as a partial FLV download); and
            ``status["expected"]``, before the first frame, to the number of frames the header's
            duration promises (:meth:`VideoReader.expected_samples`; 1 for an image).

    Yields:
        :class:`Frame` with RGB uint8 ``(H, W, 3)`` images, timestamps relative to
        the first frame of the file.

    Raises:
        VideoDecodeError: the file cannot be opened, has no video stream, or no
            frame could be decoded. A break after some frames ends the iteration
            with a warning instead (the frames before it are kept).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    path = Path(path)
    if is_image(path):
        if status is not None:
            status["expected"] = 1
        yield Frame(_read_image(path), 0.0, 0)
        return
    end = math.inf if max_duration is None else start + max_duration
    sampler = FrameSampler(fps, start, end)
    with VideoReader(path) as video:
        video.seek(start)
        if status is not None:
            status["expected"] = video.expected_samples(fps, start, end)
        for frame in video.frames():
            yield from sampler.push(frame)
            if sampler.done:
                return
        if video.truncated:
            if status is not None:
                status["truncated"] = True
            else:
                log.warning("%s: decoding broke off part-way; keeping the frames before the break", path)
        last_end = video.last_time + 1.0 / video.rate
        declared_end, origin = video.declared_end, video.origin
        if declared_end is not None and origin is not None and end > declared_end - origin:
            missing = declared_end - origin - last_end
            if missing > max(0.5, 3.0 / video.rate) and not video.truncated:
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
        yield from sampler.finish(1.0 / video.rate)
        if sampler.count == 0:
            raise VideoDecodeError(
                f"{path}: no frame at or after start={start:.2f} s (video ends at {video.last_time:.2f} s)"
            )


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
        container = open_container(path)
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


def stream_origins(path: str | Path) -> tuple[float, float]:
    """Start times in seconds of the first video and the first audio stream on the container clock.

    0 for a stream that is missing or does not say, and for a file that does not open (the caller's
    decoding reports that). CREMA-D's video starts 27 ms after its audio; some phone videos start their
    audio seconds late (:func:`emocontext.features.extract.clip_audio` aligns the two with these).
    """

    def start(stream) -> float:
        if stream is None or stream.start_time is None or stream.time_base is None:
            return 0.0
        return float(stream.start_time * stream.time_base)

    import av

    try:
        with open_container(path) as c:
            return start(c.streams.video[0] if c.streams.video else None), start(
                c.streams.audio[0] if c.streams.audio else None
            )
    except (VideoDecodeError, av.FFmpegError):
        return 0.0, 0.0
