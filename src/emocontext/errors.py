"""One exception hierarchy for the whole library.

The command line maps every :class:`EmoContextError` to a one-line message and a
non-zero exit status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EmoContextError(Exception):
    """Base class of every error the library raises on purpose."""


class VideoDecodeError(EmoContextError):
    """A file cannot be opened or decoded as video (missing, empty, corrupt, no video stream)."""


class NotMediaError(VideoDecodeError):
    """A file's content is not a video or image that decodes (:func:`emocontext.video.decode.identify_media`).

    Attributes:
        detail: why, in words without the file's name (a service shows it to the uploader).
        empty: the file has 0 bytes.
    """

    def __init__(self, path, detail: str, *, empty: bool = False):
        super().__init__(f"{path}: {detail}")
        self.detail = detail
        self.empty = empty


class AudioDecodeError(EmoContextError):
    """A file has no decodable audio stream."""


class NoFaceError(EmoContextError):
    """No face was found where one is required."""


class IncompatibleFeaturesError(EmoContextError):
    """A feature store was made by other extractors than the ones asked for."""


class WeightsError(EmoContextError):
    """Model weights are missing, corrupt, or fail their checksum."""


class ManifestError(EmoContextError):
    """A dataset manifest has unknown labels, missing files or malformed rows."""


class ConfigError(EmoContextError):
    """An option or argument has an invalid value."""


class OutputError(EmoContextError):
    """An output file or folder cannot be written (no space left, permission denied, a path that is a file)."""
