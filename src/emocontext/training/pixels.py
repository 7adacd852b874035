"""Pixel clips for the models trained end to end from pixels: CAER-Net and CAER-Net-S.

Lee et al., ICCV 2019, section 5.1: clips of 16 frames sampled at 10 fps; face crops
resized to 96x96; the whole frame, **face hidden**, resized to 128x171 and randomly
cropped to 112x112 in training (centre crop in evaluation); horizontal flips and
colour jitter in training. A long video is predicted as the average over 16-frame
clips overlapping by 8 frames (:meth:`PixelClipDataset.windows`).

:func:`load_pixel_clips` runs the video pipeline once per clip (decode, detect and track
the subject, or take the dataset's face box as for ExpW) and keeps the streams in memory
as uint8: about 93 KB a frame (96x96 face + 128x171 context), 1.5 MB a 16-frame clip.
:class:`PixelClipDataset` turns them into float batches (``face_pixels``,
``context_pixels``) with the masks every model reads; :func:`~.datasets.collate` pads them.

Every element of section 5.1 and where it is faithful: FIDELITY.md, "CAER-Net".

Deviations: the paper trains CAER-Net-S on CAER-S at 224x224; we use the dynamic model's
112x112 context and 96x96 faces for both models, so that training from scratch fits a CPU.
The paper names "contrast, and color changes" without amounts; we use brightness and contrast
+-20 %, saturation +-20 % and a hue rotation of up to +-18 degrees (``hue_saturation``; the
amounts are ours, as torchvision's ``ColorJitter`` takes them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.manifest import ClipEntry
from ..errors import ConfigError, EmoContextError
from ..labels import LabelSet

__all__ = [
    "PixelClip",
    "PixelClipDataset",
    "average_windows",
    "hue_saturation",
    "load_pixel_clips",
    "pixel_stream_config",
]


@dataclass
class PixelClip:
    """The pixel streams of one clip.

    Attributes:
        face: uint8 ``(T, S, S, 3)`` face crops (zeros where no face).
        context: uint8 ``(T, H, W, 3)`` whole frames with the face hidden.
        face_present: bool ``(T,)``.
    """

    face: np.ndarray
    context: np.ndarray
    face_present: np.ndarray

    def __len__(self) -> int:
        return len(self.face_present)


def pixel_stream_config(fps: float = 10.0):
    """The :class:`~emocontext.video.pipeline.StreamConfig` of CAER-Net's input (section 5.1): ``fps``,
    faces 96x96, whole frames resized to 128x171 with the faces hidden: every detected face, and the
    subject's nearest box in frames where its face was missed (3.2.1: the network "hides the faces")."""
    from ..video.pipeline import StreamConfig

    return StreamConfig(
        fps=fps,
        face_size=96,
        context_size=128,
        context_width=171,
        hide_face=True,
        hide_all_faces=True,
        hide_undetected=True,
    )


def load_pixel_clips(
    entries: Sequence[ClipEntry],
    *,
    detector=None,
    config=None,
    on_progress: Callable[[int, int], object] | None = None,
) -> tuple[list[ClipEntry], list[PixelClip], list[tuple[str, str]]]:
    """Decode every clip and keep its face and face-hidden context streams (uint8, in memory).

    Args:
        entries: the clips; entries with a ``box`` (ExpW's faces) use it
            for every frame instead of detection.
        detector: a face detector for the other entries (default: MTCNN, built on first need).
        config: the stream settings (default :func:`pixel_stream_config`: 10 fps, faces 96, context
            128x171, face hidden).
        on_progress: called as ``on_progress(done, total)`` after each clip.

    Returns:
        ``(kept, clips, failed)``: the entries that decoded and their :class:`PixelClip`, in order,
        and ``(path, reason)`` of those that did not (a bad file is reported, not fatal).
    """
    from ..video.faces import GivenBoxDetector, create_detector
    from ..video.pipeline import video_streams

    config = config or pixel_stream_config()
    kept, clips, failed = [], [], []
    for i, entry in enumerate(entries):
        box = entry.box
        if box is None and detector is None:
            detector = create_detector()
        try:
            s = video_streams(entry.path, GivenBoxDetector(box) if box is not None else detector, config)
        except EmoContextError as e:
            failed.append((entry.path, str(e)))
        else:
            kept.append(entry)
            clips.append(PixelClip(s.face, s.context, s.face_present.astype(bool)))
        if on_progress:
            on_progress(i + 1, len(entries))
    return kept, clips, failed


class PixelClipDataset(Dataset):
    """Pixel clips as CAER-Net batches.

    Samples: ``face_pixels`` float ``(T, 3, S, S)`` and ``context_pixels`` float ``(T, 3, c, c)``
    (``c = crop``), both scaled to ``[-1, 1]``; ``face_mask`` bool ``(T,)``; ``label``; ``index``.
    ``T <= clip_len``: in training a random window of ``clip_len`` frames, in evaluation the
    first (use :meth:`windows` for the paper's overlapping windows over whole videos).

    Args:
        clips: from :func:`load_pixel_clips`.
        labels: class ids ``(N,)``, or label names mapped with ``label_set``.
        label_set: maps label names to ids (needed when ``labels`` are names).
        train: random window, random crop, horizontal flip and colour jitter; else the first
            window and the centre crop.
        crop: side of the context crop in pixels (paper: 112).
        clip_len: frames per sample (CAER-Net: 16; CAER-Net-S: 1, single images).
        seed: seeds the augmentation; epoch ``e`` draws from ``(seed, e, index)`` (:meth:`set_epoch`).
        hue_saturation: also jitter saturation (+-20 %) and hue (+-18 degrees) in training.

    Raises:
        ConfigError: empty or mismatched inputs, a crop larger than the context frames.
    """

    face_dim = None  # pixel models have no feature sizes (emocontext.training.fit passes these through)
    context_dim = None

    def __init__(
        self,
        clips: Sequence[PixelClip],
        labels: Sequence[int] | Sequence[str],
        *,
        label_set: LabelSet | None = None,
        train: bool = False,
        crop: int = 112,
        clip_len: int = 16,
        seed: int = 0,
        hue_saturation: bool = True,
    ):
        if len(clips) != len(labels):
            raise ConfigError(f"PixelClipDataset: {len(clips)} clips but {len(labels)} labels")
        if not clips:
            raise ConfigError("PixelClipDataset: no clips")
        h, w = clips[0].context.shape[1:3]
        if crop > min(h, w):
            raise ConfigError(f"PixelClipDataset: crop {crop} is larger than the context frames ({h}x{w})")
        if len(labels) and isinstance(labels[0], str):
            if label_set is None:
                raise ConfigError("PixelClipDataset: label names need a label_set")
            labels = [label_set.index(x) for x in labels]
        self.clips = list(clips)
        self.labels = np.asarray(labels, np.int64)
        self.train, self.crop, self.clip_len, self.seed = train, crop, clip_len, seed
        self.hue_saturation = hue_saturation
        self.epoch = 0
        self._windows: list[tuple[int, int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def needs_windows(self) -> bool:
        """Some clip is longer than one window: evaluate with :meth:`windows` to see all of it."""
        return self._windows is None and any(len(c) > self.clip_len for c in self.clips)

    def windows(self, overlap: int | None = None) -> PixelClipDataset:
        """An evaluation view with one sample per window of ``clip_len`` frames, windows overlapping by
        ``overlap`` frames (default half a window: section 5.1's 8 of 16; 0 for single frames);
        ``.window_clip`` ``(W,)`` maps each window to its clip, for averaging the windows'
        probabilities per clip (:func:`average_windows`)."""
        if overlap is None:
            overlap = self.clip_len // 2
        if not 0 <= overlap < self.clip_len:
            raise ConfigError(f"overlap must be in [0, {self.clip_len}), got {overlap}")
        view = PixelClipDataset(self.clips, self.labels, crop=self.crop, clip_len=self.clip_len, seed=self.seed)
        step = self.clip_len - overlap
        view._windows = [(i, s) for i, c in enumerate(self.clips) for s in range(0, max(len(c) - overlap, 1), step)]
        view.window_clip = np.array([i for i, _ in view._windows], np.int64)
        view.labels = self.labels[view.window_clip]
        return view

    def __len__(self) -> int:
        return len(self._windows) if self._windows is not None else len(self.clips)

    def __getitem__(self, i: int) -> dict:
        clip_index, start = self._windows[i] if self._windows is not None else (i, 0)
        c = self.clips[clip_index]
        t = len(c)
        rng = np.random.default_rng((self.seed, self.epoch, i)) if self.train else None
        if rng is not None and t > self.clip_len:
            start = int(rng.integers(0, t - self.clip_len + 1))
        sl = slice(start, start + self.clip_len)
        face, context = c.face[sl], c.context[sl]
        h, w = context.shape[1:3]
        if rng is not None:
            y0, x0 = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
        else:
            y0, x0 = (h - self.crop) // 2, (w - self.crop) // 2
        context = context[:, y0 : y0 + self.crop, x0 : x0 + self.crop]
        face_t, context_t = _to_float(face), _to_float(context)
        if rng is not None:
            if rng.random() < 0.5:
                face_t, context_t = face_t.flip(-1), context_t.flip(-1)
            for x in (face_t, context_t):  # the same jitter for all frames of a stream
                contrast, bright = 1 + rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2)
                x.mul_(contrast).add_(bright).clamp_(-1, 1)
                if self.hue_saturation:
                    x.copy_(hue_saturation(x, 1 + rng.uniform(-0.2, 0.2), rng.uniform(-18.0, 18.0)))
        return {
            "face_pixels": face_t,
            "context_pixels": context_t,
            "face_mask": torch.from_numpy(np.ascontiguousarray(c.face_present[sl])),
            "label": int(self.labels[i]),
            "index": i,
        }


#: RGB <-> YIQ (NTSC): a hue rotation is a rotation of the (I, Q) plane, saturation a scaling of it.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def hue_saturation(x: torch.Tensor, saturation: float, hue_degrees: float) -> torch.Tensor:
    """``x`` ``(..., 3, H, W)`` RGB in ``[-1, 1]`` with its saturation scaled and its hue rotated, clamped.

    In YIQ the luma Y is kept and the chroma (I, Q) is scaled by ``saturation`` and rotated by
    ``hue_degrees``: one 3x3 linear map, so grey pixels stay grey at any setting.
    """
    a = np.deg2rad(hue_degrees)
    rot = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]], dtype=torch.float32
    )
    rot[1:, 1:] *= saturation
    m = (_YIQ2RGB @ rot @ _RGB2YIQ).to(x.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, x).clamp(-1, 1)


def _to_float(x: np.ndarray) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float ``(T, 3, H, W)`` in ``[-1, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def average_windows(probs: np.ndarray, window_clip: np.ndarray, n_clips: int) -> np.ndarray:
    """Per-clip mean ``(n_clips, K)`` of window probabilities ``(W, K)`` (section 5.1)."""
    out = np.zeros((n_clips, probs.shape[1]), np.float64)
    np.add.at(out, window_clip, probs)
    counts = np.bincount(window_clip, minlength=n_clips)[:, None]
    return (out / np.maximum(counts, 1)).astype(np.float32)
