"""What an upload is, found by decoding: videos and images whatever their names, clear errors otherwise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import encode_video, numbered_frames

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (fastapi)")

from emocontext.serve.errors import ApiError  # noqa: E402
from emocontext.serve.media import inspect_media  # noqa: E402


def test_video_is_recognised_by_content_not_name(tmp_path):
    path = encode_video(tmp_path / "clip.mp4", numbered_frames(10), fps=10)
    renamed = path.rename(tmp_path / "photo.jpg")  # a misleading name changes nothing
    media = inspect_media(renamed)
    assert media.kind == "video" and media.suffix == ".video"
    assert (media.width, media.height) == (96, 64) and media.duration == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(("ext", "suffix"), [(".png", ".png"), (".jpg", ".jpg")])
def test_image_is_recognised_by_content(tmp_path, ext, suffix):
    img = np.full((30, 40, 3), 120, np.uint8)
    ok, data = cv2.imencode(ext, img)
    path = tmp_path / "upload.mp4"  # named like a video
    path.write_bytes(data.tobytes())
    media = inspect_media(path)
    assert media.kind == "image" and media.suffix == suffix and (media.width, media.height) == (40, 30)


def test_empty_text_and_truncated_files_are_refused(tmp_path):
    empty = tmp_path / "a.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ApiError) as e:
        inspect_media(empty)
    assert (e.value.status, e.value.kind) == (400, "empty")

    text = tmp_path / "b.mp4"
    text.write_text("hello\n" * 100)
    with pytest.raises(ApiError) as e:
        inspect_media(text)
    assert (e.value.status, e.value.kind) == (415, "not_media")

    video = encode_video(tmp_path / "c.mp4", numbered_frames(20), fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(ApiError) as e:
        inspect_media(cut)
    assert (e.value.status, e.value.kind) == (415, "not_media")


def test_audio_only_file_is_refused(tmp_path):
    import av

    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(ApiError) as e:
        inspect_media(path)
    assert e.value.status == 415 and "no video stream" in e.value.detail
