"""What an upload is, found by decoding it: never by its file name or the client's content type.

:func:`inspect_media` opens the file with FFmpeg's content probing (PyAV) and decodes its first
frame; still images are recognised by the demuxer FFmpeg picked (``png_pipe``, ``jpeg_pipe``, ...)
and must also decode with OpenCV, which reads images for the pipeline. The suffix the server then
gives the file only tells the pipeline "image" or "video"; the client's name is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ApiError

__all__ = ["Media", "inspect_media"]

#: FFmpeg demuxers of single images -> the suffix that makes the pipeline read the file as an image.
IMAGE_DEMUXERS = {
    "png_pipe": ".png",
    "jpeg_pipe": ".jpg",
    "jpegls_pipe": ".jpg",
    "bmp_pipe": ".bmp",
    "webp_pipe": ".webp",
    "tiff_pipe": ".tiff",
}
VIDEO_SUFFIX = ".video"


@dataclass(frozen=True)
class Media:
    """A decodable upload.

    Attributes:
        kind: ``"video"`` or ``"image"``.
        suffix: file suffix the server gives it (``.video``, ``.png``, ``.jpg``, ...).
        width, height: frame size in pixels.
        duration: seconds (0 for an image; None when the container does not say).
        format: the FFmpeg demuxer that recognised it (``"flv"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``, ...).
    """

    kind: str
    suffix: str
    width: int
    height: int
    duration: float | None
    format: str


def _cv2_image(path: Path) -> np.ndarray | None:
    import cv2

    return cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)


def inspect_media(path: str | Path) -> Media:
    """Decode the start of ``path`` and say what it is.

    Raises:
        ApiError: 400 ``empty`` (0 bytes); 415 ``not_media`` (no demuxer recognises the content, no
            video stream, or no frame decodes: text, audio only, a truncated MP4 without its index, ...).
    """
    import av

    path = Path(path)
    if path.stat().st_size == 0:
        raise ApiError(400, "empty", "the file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        img = _cv2_image(path)
        if img is not None:
            return Media("image", ".png", img.shape[1], img.shape[0], 0.0, "opencv")
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise ApiError(415, "not_media", f"the file is not a video or image that can be decoded ({reason})") from None
    with container:
        fmt = container.format.name
        if not container.streams.video:
            raise ApiError(415, "not_media", f"the file has no video stream (format {fmt})")
        vs = container.streams.video[0]
        try:
            frame = next(iter(container.decode(vs)), None)
        except (av.FFmpegError, ValueError) as e:
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise ApiError(415, "not_media", f"no frame of the file decodes ({reason})") from None
        if frame is None:
            raise ApiError(415, "not_media", "the video stream has no frame")
        width, height = frame.width, frame.height
        duration = None
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
    if fmt in IMAGE_DEMUXERS and _cv2_image(path) is not None:
        return Media("image", IMAGE_DEMUXERS[fmt], width, height, 0.0, fmt)
    return Media("video", VIDEO_SUFFIX, width, height, duration, fmt)
