"""Writing video: H.264 in an MP4 / MOV / MKV container (:class:`VideoWriter`), and a source's audio track
carried over into it (:func:`add_audio`).

The container format comes from the output suffix (:data:`~.decode.CONTAINER_FORMATS`). Frames are
RGB uint8 arrays with their presentation times in seconds, so variable-frame-rate timing is kept;
odd frame sizes are padded by one replicated pixel row / column (``yuv420p`` needs even sizes).
Reading (the source's audio, the encoded video) goes through :func:`~.decode.open_container`.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import VideoDecodeError
from .decode import open_container

__all__ = ["VideoWriter", "add_audio"]

log = logging.getLogger(__name__)

#: Audio codecs each container can hold as they are (others are re-encoded as AAC).
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus"},
    "mov": {"aac", "mp3", "ac3", "alac", "pcm_s16le"},
}


def _even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return img
    return cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


class VideoWriter:
    """H.264 writer (``libx264``, ``yuv420p``, CRF 20): RGB frames with times in seconds -> ``path``.

    Args:
        path: the file to write (the caller makes it atomic).
        fmt: FFmpeg container format (``"mp4"``, ``"mov"``, ``"matroska"``).
        rate: nominal frame rate in Hz; each frame keeps its own time (90 kHz clock).
    """

    def __init__(self, path: str | Path, fmt: str, rate: Fraction):
        import av

        self.container = av.open(str(path), "w", format=fmt)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": "20"}
        self.time_base = Fraction(1, 90000)
        self.stream.codec_context.time_base = self.time_base
        self.size: tuple[int, int] | None = None
        self.last_pts = -1
        self.count = 0

    def add(self, image_rgb: np.ndarray, t: float) -> None:
        """Encode one RGB uint8 frame shown at ``t`` seconds (a size change mid-stream: resized to the first)."""
        import av

        img = _even(image_rgb)
        if self.size is None:
            self.size = img.shape[:2]
            self.stream.height, self.stream.width = self.size
        elif img.shape[:2] != self.size:
            img = cv2.resize(img, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        pts = max(int(round(t / self.time_base)), self.last_pts + 1)
        f.pts, f.time_base = pts, self.time_base
        self.last_pts = pts
        for p in self.stream.encode(f):
            self.container.mux(p)
        self.count += 1

    def close(self, flush: bool = True) -> None:
        """Flush the encoder (unless ``flush`` is False: after an error) and close the file."""
        try:
            if flush and self.count:
                for p in self.stream.encode():
                    self.container.mux(p)
        finally:
            self.container.close()


def add_audio(video: Path, src: Path, fmt: str) -> bool:
    """Put the first audio track of ``src`` into ``video`` (in place): copied, or re-encoded as AAC.

    Returns False (with a logged warning) when ``src`` has no audio or it cannot be carried over; ``video``
    is then left as it was.
    """
    import av

    try:
        with open_container(src) as a_in:
            if not a_in.streams.audio:
                return False
    except (VideoDecodeError, av.FFmpegError):
        return False
    merged = video.with_name(video.name + ".av" + video.suffix)
    try:
        with (
            open_container(src) as a_in,
            open_container(video) as v_in,
            av.open(str(merged), "w", format=fmt) as o,
        ):
            a_src, v_src = a_in.streams.audio[0], v_in.streams.video[0]
            v_out = o.add_stream_from_template(v_src)
            copy = a_src.codec_context.name in _COPYABLE_AUDIO.get(fmt, {"aac", "mp3", "opus", "vorbis", "flac"})
            if copy:
                a_out = o.add_stream_from_template(a_src)
            else:
                a_out = o.add_stream("aac", rate=a_src.codec_context.sample_rate or 44100)
            for packet in v_in.demux(v_src):
                if packet.dts is not None:
                    packet.stream = v_out
                    o.mux(packet)
            if copy:
                for packet in a_in.demux(a_src):
                    if packet.dts is not None:
                        packet.stream = a_out
                        o.mux(packet)
            else:
                for frame in a_in.decode(a_src):
                    frame.pts = None
                    for packet in a_out.encode(frame):
                        o.mux(packet)
                for packet in a_out.encode():
                    o.mux(packet)
        os.replace(merged, video)
        return True
    except (av.FFmpegError, VideoDecodeError, ValueError, TypeError) as e:
        log.warning("%s: the audio track could not be carried over (%s); the annotated video has none", src, e)
        merged.unlink(missing_ok=True)
        return False
