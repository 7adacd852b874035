from __future__ import annotations

import logging

import numpy as np
import pytest

from emocontext.errors import AudioDecodeError, VideoDecodeError
from emocontext.video.decode import iter_frames, probe, random_start, read_audio, read_frames
from tests.conftest import data_path, encode_video, frame_index, numbered_frames


@pytest.fixture(scope="module")
def cfr(tmp_path_factory):
    """2 s at 10 fps, frame i has a distinct brightness."""
    return encode_video(tmp_path_factory.mktemp("v") / "cfr.mp4", numbered_frames(20), fps=10)


def test_samples_by_timestamp_at_target_rate(cfr):
    clip = read_frames(cfr, fps=5)
    assert clip.frames.shape == (10, 64, 96, 3)
    np.testing.assert_allclose(clip.timestamps, np.arange(10) * 0.2, atol=1e-6)
    # at 5 fps from a 10 fps file, every second frame: 0, 2, 4, ...
    assert [frame_index(f, 20) for f in clip.frames] == list(range(0, 20, 2))


def test_start_offset_and_max_duration(cfr):
    clip = read_frames(cfr, fps=5, start=0.6, max_duration=0.8)
    np.testing.assert_allclose(clip.timestamps, [0.6, 0.8, 1.0, 1.2], atol=1e-6)
    assert [frame_index(f, 20) for f in clip.frames] == [6, 8, 10, 12]


def test_higher_rate_than_file_gives_each_frame_once(cfr):
    # 20 fps asked of a 10 fps file: each decoded frame once, at the first target time it covers (the issue:
    # --fps 100 on a 30 fps clip gave 187 "frames" from 56)
    clip = read_frames(cfr, fps=20, max_duration=0.5)
    assert [frame_index(f, 20) for f in clip.frames] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(clip.timestamps, [0.0, 0.1, 0.2, 0.3, 0.4], atol=0.051)
    whole = read_frames(cfr, fps=100)
    assert len(whole.frames) == 20 and len({frame_index(f, 20) for f in whole.frames}) == 20


def test_truncated_flv_is_flagged(tmp_path):
    """An FLV cut at a packet boundary ends without a decoding error: the header's duration tells (issue 13)."""
    rng = np.random.default_rng(0)
    full = encode_video(tmp_path / "full.flv", rng.integers(0, 255, (40, 64, 96, 3), dtype=np.uint8), codec="flv")
    cut = tmp_path / "cut.flv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 5])
    assert read_frames(cut).truncated
    assert not read_frames(full).truncated
    assert not read_frames(full, max_duration=1.0).truncated  # stopping early on purpose is not truncation


def test_a_break_is_warned_once(tmp_path, caplog):
    """With ``status`` the caller reports the break (predict, extract): the decoder's details go to INFO."""
    rng = np.random.default_rng(0)
    full = encode_video(tmp_path / "full.flv", rng.integers(0, 255, (40, 64, 96, 3), dtype=np.uint8), codec="flv")
    cut = tmp_path / "cut.flv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 5])
    caplog.set_level(logging.INFO, logger="emocontext.video.decode")
    status: dict = {}
    list(iter_frames(cut, status=status))
    assert status["truncated"] and [r.levelno for r in caplog.records] == [logging.INFO]
    caplog.clear()
    list(iter_frames(cut))  # nobody asked: the decoder warns itself
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    caplog.clear()
    assert read_frames(cut).truncated
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == [logging.WARNING]


@pytest.mark.realdata
def test_truncated_real_flv_is_flagged(tmp_path):
    src = data_path("videos", "crema-d", "1001_DFA_HAP_XX.flv")
    cut = tmp_path / "cut.flv"
    cut.write_bytes(src.read_bytes()[:150_000])  # the reproduction: first 150 kB of a 1.9 s clip
    clip = read_frames(cut)
    assert clip.truncated and 1 <= len(clip.frames) < 9
    for p in sorted(src.parent.glob("*.flv")) + sorted(data_path("videos", "unlabeled").glob("*")):
        assert not read_frames(p).truncated, p  # whole files are not flagged


def test_variable_frame_rate(tmp_path):
    # 6 frames at irregular times: the frame on screen at each target time is taken
    pts = [0.0, 0.05, 0.5, 0.55, 1.3, 1.35]
    path = encode_video(tmp_path / "vfr.mkv", numbered_frames(6), fps=20, pts_seconds=pts)
    clip = read_frames(path, fps=2)
    np.testing.assert_allclose(clip.timestamps, [0.0, 0.5, 1.0], atol=1e-6)
    assert [frame_index(f, 6) for f in clip.frames] == [0, 2, 3]


def test_streaming_does_not_need_the_whole_file(cfr):
    it = iter_frames(cfr, fps=5)
    first = next(it)
    assert first.timestamp == 0.0 and first.image.dtype == np.uint8
    it.close()


def test_random_start_is_within_bounds(cfr):
    info = probe(cfr)
    assert info.duration == pytest.approx(2.0, abs=0.15)
    rng = np.random.default_rng(0)
    starts = [random_start(info, 1.0, rng) for _ in range(50)]
    assert 0 <= min(starts) and max(starts) <= info.duration - 1.0 and len(set(starts)) > 1
    assert random_start(info, 5.0, rng) == 0.0


def test_still_image_is_one_frame(tmp_path):
    import cv2

    p = tmp_path / "img.png"
    cv2.imwrite(str(p), np.full((30, 40, 3), 200, np.uint8))
    clip = read_frames(p)
    assert clip.frames.shape == (1, 30, 40, 3) and clip.timestamps.tolist() == [0.0]


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: _write(d / "empty.mp4", b""), "empty file"),
        (lambda d: _write(d / "text.mp4", b"hello, not a video\n" * 50), "not a readable"),
        (lambda d: _write(d / "bad.png", b"\x89PNG garbage"), "not a readable image"),
        (lambda d: d, "directory"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(VideoDecodeError, match=message) as e:
        read_frames(path)
    assert str(path) in str(e.value)


def test_truncated_file_keeps_frames_before_the_break(tmp_path):
    full = encode_video(tmp_path / "full.mkv", numbered_frames(30), fps=10)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    clip = read_frames(cut, fps=5)
    assert 1 <= len(clip.frames) < 15 and clip.truncated


def test_truncated_mp4_without_index_is_an_error(tmp_path):
    full = encode_video(tmp_path / "full.mp4", numbered_frames(30), fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:2000])
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        read_frames(cut)


def test_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio_only.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate = 16000
        for p in s.encode(af):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        read_frames(path)


def test_audio_mono_resampled(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = encode_video(tmp_path / "av.mp4", numbered_frames(10), fps=10, audio=tone, sample_rate=sr)
    a = read_audio(path, sample_rate=8000)
    assert a.dtype == np.float32 and a.ndim == 1
    assert abs(len(a) - 8000) < 1200
    spec = np.abs(np.fft.rfft(a[1000:7000]))
    assert abs(np.argmax(spec) * 8000 / 6000 - 440) < 5


def test_audio_missing_stream(cfr):
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        read_audio(cfr)


@pytest.mark.realdata
def test_real_clips_decode():
    root = data_path("videos")
    for f in ["crema-d/1001_DFA_HAP_XX.flv", "ravdess/01-01-08-02-01-01-19.mp4", "unlabeled/face_noface.mov"]:
        clip = read_frames(root / f)
        info = clip.info
        assert len(clip.frames) == pytest.approx(info.duration * 5, abs=1.5)
        assert clip.frames.shape[1:] == (info.height, info.width, 3)
    a = read_audio(root / "crema-d/1001_DFA_HAP_XX.flv")
    assert len(a) == pytest.approx(1.87 * 16000, rel=0.05)
    with pytest.raises(AudioDecodeError):
        read_audio(root / "ravdess/01-01-08-02-01-01-19.mp4")


# ------------------------------------------------------- fuzzing (bounded; benchmarks/fuzz_decode.py runs 10,000)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (6, 32, 48, 3), dtype=np.uint8)
    return [encode_video(d / "a.mp4", frames).read_bytes(), encode_video(d / "b.flv", frames, codec="flv").read_bytes()]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.integers(0, 1),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255), st.integers(1, 64)), min_size=1, max_size=6),
    cut=st.floats(0.05, 1.0),
)
def test_mutated_files_give_frames_or_one_clear_error(tmp_path, fuzz_seeds, which, edits, cut):
    """Corrupted bytes, overwritten runs and truncation: frames, or a one-line VideoDecodeError naming the file."""
    data = bytearray(fuzz_seeds[which])
    for pos, value, length in edits:
        i = int(pos * (len(data) - 1))
        data[i : i + length] = bytes([value]) * len(data[i : i + length])
    path = tmp_path / ("fuzz.mp4" if which == 0 else "fuzz.flv")
    path.write_bytes(bytes(data[: max(1, int(len(data) * cut))]))
    try:
        probe(path)
        frames = list(iter_frames(path, fps=5, max_duration=0.6))
        assert all(f.image.dtype == np.uint8 and f.image.ndim == 3 for f in frames)
    except VideoDecodeError as e:
        assert str(path) in str(e) and "\n" not in str(e)


def test_iter_frames_is_the_sampler_over_every_decoded_frame(tmp_path):
    """VideoReader + FrameSampler (the annotation pass) give exactly iter_frames' frames, rates above and below."""
    from emocontext.video.decode import FrameSampler, VideoReader

    path = encode_video(tmp_path / "v.mp4", numbered_frames(23), fps=10)
    for fps in (3.0, 5.0, 10.0, 25.0):
        expected = list(iter_frames(path, fps=fps))
        sampler = FrameSampler(fps)
        with VideoReader(path) as video:
            native = list(video.frames())
            got = [f for d in native for f in sampler.push(d)] + sampler.finish(1.0 / video.rate)
        assert len(native) == 23 and [f.timestamp for f in native] == pytest.approx(np.arange(23) / 10)
        assert [(f.timestamp, f.index) for f in got] == [(f.timestamp, f.index) for f in expected], fps
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a.image, b.image)


def test_identify_media_reads_the_content_not_the_name(tmp_path):
    import cv2

    from emocontext.errors import NotMediaError
    from emocontext.video.decode import identify_media

    video = encode_video(tmp_path / "clip.mp4", numbered_frames(10), fps=10).rename(tmp_path / "photo.png")
    seen = identify_media(video)
    assert (seen.kind, seen.suffix, seen.width, seen.height) == ("video", ".video", 96, 64)
    assert seen.duration == pytest.approx(1.0, abs=0.15)
    picture = tmp_path / "clip.mp4"
    picture.write_bytes(cv2.imencode(".jpg", np.full((30, 40, 3), 99, np.uint8))[1].tobytes())
    assert identify_media(picture).kind == "image" and identify_media(picture).suffix == ".jpg"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(NotMediaError) as e:
        identify_media(empty)
    assert e.value.empty and e.value.detail == "the file is empty (0 bytes)" and str(empty) in str(e.value)
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n" * 100)
    with pytest.raises(NotMediaError) as e:
        identify_media(text)
    assert not e.value.empty and e.value.detail.startswith("the file is not a video or image")
