"""Pixel clips for CAER-Net / CAER-Net-S: loading, augmentation, windows, training through fit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from emocontext.data.manifest import ClipEntry, FaceEntry
from emocontext.errors import ConfigError
from emocontext.labels import EKMAN7
from emocontext.training import TrainConfig, fit, predict_probs
from emocontext.training.datasets import collate
from emocontext.training.pixels import PixelClip, PixelClipDataset, average_windows, load_pixel_clips
from tests.conftest import encode_video

BOX = (60.0, 40.0, 100.0, 80.0)  # xyxy in a 160x120 frame


def _image(path, value=200):
    img = np.full((120, 160, 3), value, np.uint8)
    cv2.imwrite(str(path), img)
    return path


def test_load_image_with_given_box_hides_the_face_in_the_whole_frame(tmp_path):
    entry = FaceEntry(path=str(_image(tmp_path / "a.jpg")), label="happy", box=BOX)
    kept, clips, failed = load_pixel_clips([entry])
    assert failed == [] and kept == [entry]
    c = clips[0]
    assert c.face.shape == (1, 96, 96, 3) and c.context.shape == (1, 128, 171, 3) and c.face_present.tolist() == [True]
    # the whole frame resized 160x120 -> 171x128: the box maps to x 64..107, y 43..85 (10 % margin: a bit more)
    ctx = c.context[0].astype(int)
    assert ctx[64, 85].max() < 10, "the face is hidden"
    assert ctx[5, 5].min() > 190 and ctx[120, 160].min() > 190, "the rest of the frame is kept, corners included"


def test_bad_files_are_reported_and_skipped(tmp_path):
    good = FaceEntry(path=str(_image(tmp_path / "a.jpg")), label="sad", box=BOX)
    (tmp_path / "bad.mp4").write_text("not a video")
    bad = FaceEntry(path=str(tmp_path / "bad.mp4"), label="sad", box=BOX)
    kept, clips, failed = load_pixel_clips([bad, good])
    assert kept == [good] and len(clips) == 1
    assert failed[0][0] == bad.path and "bad.mp4" in failed[0][1]


def test_video_clip_at_10_fps_with_detection(tmp_path):
    frames = np.full((20, 120, 160, 3), 128, np.uint8)
    path = encode_video(tmp_path / "v.mp4", frames, fps=20)

    class OneBox:  # a detector that finds the same face in every frame
        name = "fixed"

        def detect(self, frame):
            from emocontext.video.faces import Detection

            return [Detection(BOX, 0.99)]

    kept, clips, failed = load_pixel_clips([ClipEntry(path=str(path), label="fear")], detector=OneBox())
    assert not failed and len(clips[0]) == 10  # 1 s at 10 fps
    assert clips[0].face_present.all()


def _clips(n=6, t=1, seed=0):
    rng = np.random.default_rng(seed)
    return [
        PixelClip(
            rng.integers(0, 255, (t, 96, 96, 3), dtype=np.uint8),
            rng.integers(0, 255, (t, 128, 171, 3), dtype=np.uint8),
            np.ones(t, bool),
        )
        for _ in range(n)
    ]


def test_evaluation_samples_are_centre_crops_and_deterministic():
    clips = _clips(2)
    ds = PixelClipDataset(clips, ["happy", "sad"], label_set=EKMAN7)
    s = ds[0]
    assert s["face_pixels"].shape == (1, 3, 96, 96) and s["context_pixels"].shape == (1, 3, 112, 112)
    want = torch.from_numpy(clips[0].context[0, 8:120, 29:141].astype(np.float32)).permute(2, 0, 1) / 127.5 - 1
    assert torch.allclose(s["context_pixels"][0], want)
    assert s["face_pixels"].min() >= -1 and s["face_pixels"].max() <= 1
    assert ds.labels.tolist() == [EKMAN7.index("happy"), EKMAN7.index("sad")]


def test_training_augmentation_varies_by_epoch_and_repeats_by_seed():
    clips = _clips(1, t=30)
    a = PixelClipDataset(clips, [0], train=True, seed=1)
    b = PixelClipDataset(clips, [0], train=True, seed=1)
    x0 = a[0]["context_pixels"]
    assert x0.shape == (16, 3, 112, 112)
    assert torch.equal(x0, b[0]["context_pixels"])
    a.set_epoch(1)
    assert not torch.equal(x0, a[0]["context_pixels"])


def test_windows_overlap_by_8_frames_and_average_per_clip():
    clips = _clips(3, t=24) + _clips(1, t=5)
    ds = PixelClipDataset(clips, [0, 1, 2, 3])
    view = ds.windows(overlap=8)
    assert view.window_clip.tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert len(view[1]["face_pixels"]) == 16 and len(view[6]["face_pixels"]) == 5
    probs = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [0, 1], [0, 1], [0.5, 0.5]], np.float32)
    assert average_windows(probs, view.window_clip, 4).tolist() == [[0.5, 0.5], [1, 0], [0, 1], [0.5, 0.5]]
    with pytest.raises(ConfigError):
        ds.windows(overlap=16)


def test_collate_pads_pixel_clips_with_masks():
    ds = PixelClipDataset(_clips(1, t=3) + _clips(1, t=16), [0, 1])
    batch = collate([ds[0], ds[1]])
    assert batch["face_pixels"].shape == (2, 16, 3, 96, 96) and batch["context_pixels"].shape == (2, 16, 3, 112, 112)
    assert batch["mask"].sum(1).tolist() == [3, 16] and batch["face_mask"].sum(1).tolist() == [3, 16]
    assert "face" not in batch


def test_bad_dataset_arguments():
    with pytest.raises(ConfigError):
        PixelClipDataset(_clips(2), [0])
    with pytest.raises(ConfigError):
        PixelClipDataset(_clips(1), [0], crop=200)
    with pytest.raises(ConfigError):
        PixelClipDataset(_clips(1), ["happy"])


def test_caer_net_s_trains_from_pixel_clips_through_fit(tmp_path):
    """fit() takes pixel datasets as it takes feature stores: a colour carried by the context is learned."""
    rng = np.random.default_rng(0)
    clips, labels = [], []
    for i in range(48):
        y = i % 2
        context = np.full((1, 128, 171, 3), 40, np.uint8)
        context[0, :, :, y] = 220  # the label is the context's colour; faces are noise
        clips.append(PixelClip(rng.integers(0, 255, (1, 96, 96, 3), dtype=np.uint8), context, np.ones(1, bool)))
        labels.append(y)
    train = PixelClipDataset(clips[:32], labels[:32], train=True)
    val = PixelClipDataset(clips[32:], labels[32:])
    cfg = TrainConfig(
        model="caer_net_s",
        epochs=6,
        batch_size=8,
        lr=3e-3,
        optimizer="adam",  # this test checks that fit() reads pixel datasets, not CAER-Net's recipe
        lr_step=0,
        model_kwargs={"channels": (8, 8, 8, 8, 8), "attention_channels": 4, "fusion_hidden": 8},
    )
    res = fit(cfg, train, val, tmp_path / "run", label_set=EKMAN7)
    from emocontext.training import load_model

    model, _ = load_model(res.checkpoint)
    probs = predict_probs(model, val)
    assert probs.shape == (16, len(EKMAN7))
    assert (probs.argmax(1) == val.labels).mean() == 1.0


def test_pixel_training_jitters_hue_and_saturation():
    """Lee et al. 5.1: "contrast, and color changes": hue and saturation jitter besides brightness and contrast."""
    import torch

    from emocontext.training.pixels import PixelClip, PixelClipDataset, hue_saturation

    grey = torch.full((1, 3, 4, 4), 0.3)
    torch.testing.assert_close(hue_saturation(grey, 1.5, 17.0), grey, atol=1e-5, rtol=0)  # grey stays grey
    red = torch.tensor([0.8, -0.5, -0.5]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    torch.testing.assert_close(hue_saturation(red, 1.0, 0.0), red, atol=1e-5, rtol=0)
    turned = hue_saturation(red, 1.0, 18.0)
    assert (turned - red).abs().max() > 0.05  # the hue moved
    pale = hue_saturation(red, 0.5, 0.0)
    assert pale.std(1).mean() < red.std(1).mean()  # less saturated: channels closer together
    rng = np.random.default_rng(0)
    clip = PixelClip(
        rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8),
        rng.integers(0, 255, (4, 12, 12, 3), dtype=np.uint8),
        np.ones(4, bool),
    )
    on = PixelClipDataset([clip], [0], train=True, crop=12, clip_len=4, seed=3)
    off = PixelClipDataset([clip], [0], train=True, crop=12, clip_len=4, seed=3, hue_saturation=False)
    assert not torch.equal(on[0]["context_pixels"], off[0]["context_pixels"])


def test_caer_net_input_hides_every_face_and_missed_ones():
    """Lee et al. 3.2.1: the network "hides the faces": all detected faces, and the subject where it was missed."""
    from emocontext.training.pixels import pixel_stream_config

    cfg = pixel_stream_config()
    assert cfg.hide_face and cfg.hide_all_faces and cfg.hide_undetected
    assert (cfg.fps, cfg.face_size, cfg.context_size, cfg.context_width) == (10.0, 96, 128, 171)


def test_caer_net_s_trains_on_single_images_and_caer_net_on_16_frame_clips(tmp_path, monkeypatch):
    """Lee et al. 5.1: CAER-Net on 16-frame clips at 10 fps; CAER-Net-S trained on single images (CAER-S) --
    each training sample one frame, a video predicted as the mean over its frames (issue 25). The recipes
    carry it (``max_frames``); ``--max-frames 16`` keeps the window form for CAER-Net-S."""
    from emocontext.training import seeds

    made = []

    class Recording(PixelClipDataset):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(seeds, "PixelClipDataset", Recording)
    entries = []
    for i in range(6):
        frames = np.full((20, 120, 160, 3), 60, np.uint8)
        frames[..., i % 2] = 200
        path = encode_video(tmp_path / f"c{i}.mp4", frames, fps=20)  # 1 s: 10 frames at the recipe's 10 fps
        entries.append(FaceEntry(path=str(path), label=("happy", "sad")[i % 2], box=BOX))
    tiny = {"channels": (4, 4, 4, 4, 4), "attention_channels": 2, "fusion_hidden": 2, "classifier_hidden": 4}

    def run(model, **kw):
        made.clear()
        cfg = TrainConfig(model=model, epochs=1, batch_size=4, model_kwargs=tiny, **kw)
        seeds.train_pixel_seeds(cfg, entries[:4], entries[4:], None, EKMAN7, tmp_path / model / str(kw))
        train = next(d for d in made if d.train)
        val = next(d for d in made if not d.train)
        return train, val

    train, val = run("caer_net_s")
    assert train.clip_len == val.clip_len == 1 and [len(c) for c in val.clips] == [10, 10]
    assert len(train[0]["face_pixels"]) == 1  # one image per training sample
    view = val.windows()
    assert len(view) == 20 and view.window_clip.tolist() == [0] * 10 + [1] * 10  # every frame, averaged per clip
    train, _ = run("caer_net_s", max_frames=16)  # the window form, as an option
    assert train.clip_len == 16 and len(train[0]["face_pixels"]) == 10
    train, _ = run("caer_net")
    assert train.clip_len == 16
