"""What an upload is, for HTTP: :func:`~emocontext.video.decode.identify_media` decodes its start (never its
name or the client's content type); its refusals become 400 ``empty`` and 415 ``not_media``.

The suffix the server then gives the file (:attr:`~emocontext.video.decode.MediaContent.suffix`) only tells
the pipeline "image" or "video"; the client's name is not used.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NotMediaError
from ..video.decode import MediaContent, identify_media
from .errors import ApiError

__all__ = ["inspect_media"]


def inspect_media(path: str | Path) -> MediaContent:
    """Decode the start of ``path`` and say what it is.

    Raises:
        ApiError: 400 ``empty`` (0 bytes); 415 ``not_media`` (no demuxer recognises the content, no
            video stream, or no frame decodes: text, audio only, a truncated MP4 without its index, ...).
    """
    try:
        return identify_media(path)
    except NotMediaError as e:
        if e.empty:
            raise ApiError(400, "empty", e.detail) from None
        raise ApiError(415, "not_media", e.detail) from None
