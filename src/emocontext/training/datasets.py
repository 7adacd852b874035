"""Torch datasets over a :class:`~emocontext.features.store.FeatureStore`, and padding with masks.

A sample is one clip's feature sequence (face and context streams at the store's
frame rate). ``collate`` pads a batch to its longest clip and returns the masks
every model uses: ``mask`` (B, T), True = a real frame, and ``face_mask`` (B, T),
True = a real frame where the subject's face was found.

Training augmentation (Sun et al., MEC 2017, section V-C: "each video is sampled
from a random initial frame"): with ``train=True`` a start frame is drawn per
sample. Deviation: the paper does not say how far into the clip the start may
fall; we draw it uniformly from the first half, so every sample keeps at least
half of its clip. In evaluation the start is the first frame.

Audio: when the store's records carry audio (``emocontext extract`` with an audio spec), each
sample also gets the audio frames of the span its visual frames cover (frames whose centre lies
between the first kept frame's timestamp and the first dropped frame's timestamp, so a random start
or ``max_frames`` crops the audio to the same span, as the AV-LSTM's alignment assumes), and
``collate`` pads them to ``audio`` (B, T_a, D_a) with ``audio_mask`` (B, T_a). Chao et al. 2016
(section 3.3) PCA-whiten the audio features with a transform fitted on the training data:
:func:`fit_audio_whitening` fits it on the training clips, ``audio_whitening=`` applies it (the
same object to the training, validation and test datasets; :func:`emocontext.training.fit` stores it
in the checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.manifest import ClipEntry, Manifest
from ..errors import ConfigError, ManifestError
from ..features.audio import PCAWhitening
from ..features.store import FeatureStore, Record
from ..labels import LabelSet

__all__ = ["FeatureSequenceDataset", "collate", "fit_audio_whitening", "as_whitening"]


def as_whitening(whitening: PCAWhitening | dict | None) -> PCAWhitening | None:
    """A :class:`PCAWhitening` from itself, its state dict (arrays, or lists as in a checkpoint's meta), or None."""
    if whitening is None or isinstance(whitening, PCAWhitening):
        return whitening
    if isinstance(whitening, dict):
        return PCAWhitening.from_state_dict({k: np.asarray(v) for k, v in whitening.items()})
    raise ConfigError(f"audio_whitening must be a PCAWhitening, its state dict or None, got {type(whitening).__name__}")


def _audio_frames(records: Sequence[Record]) -> list[np.ndarray]:
    missing = sum(r.audio is None for r in records)
    if missing:
        raise ConfigError(
            f"{missing} of {len(records)} clips have no audio features; extract the store with audio "
            "(Extractors.build(audio=...))"
        )
    return [r.audio for r in records]


def fit_audio_whitening(
    store: FeatureStore, entries: Manifest | Sequence[ClipEntry], n_components: int | None = 50
) -> PCAWhitening:
    """PCA whitening fitted on every audio frame of ``entries`` (the training clips only).

    Chao et al. 2016, section 3.3: the audio features are PCA-whitened, keeping 50 dimensions
    (``n_components``, capped at ``D_a`` and at the number of frames).

    Raises:
        ConfigError: the clips have no audio features, or fewer than 2 audio frames in all.
        KeyError: a clip is not in the store.
    """
    return PCAWhitening(n_components).fit(_audio_frames([store.get(e.clip_id) for e in entries]))


class FeatureSequenceDataset(Dataset):
    """Clips of a manifest, read from a feature store, in memory.

    Args:
        store: the feature store (``emocontext extract`` made it).
        entries: the clips (a Manifest or its entries); every clip must be in the store.
        label_set: maps labels to class ids.
        train: random start frame per sample (augmentation).
        max_frames: keep at most this many frames from the start (None = all).
        seed: seeds the random start frames; sample ``i`` of epoch ``e`` draws from the seed
            sequence ``(seed, e, i)`` (:meth:`set_epoch`), so different seeds never share draws.
        audio_whitening: a :class:`~emocontext.features.audio.PCAWhitening` fitted on the training
            clips (:func:`fit_audio_whitening`), or its state dict (from a checkpoint's
            ``meta["audio_whitening"]``), applied to every audio frame; None = raw features.

    Samples carry ``audio`` ``(T_a, D_a)`` when every record has audio (:attr:`has_audio`).

    Raises:
        ManifestError: clips missing from the store (all listed), or unlabelled clips.
        ConfigError: ``audio_whitening`` given but the clips have no audio, or another feature size.
    """

    def __init__(
        self,
        store: FeatureStore,
        entries: Manifest | Sequence[ClipEntry],
        label_set: LabelSet,
        *,
        train: bool = False,
        max_frames: int | None = None,
        seed: int = 0,
        audio_whitening: PCAWhitening | dict | None = None,
    ):
        entries = list(entries)
        missing = [e.path for e in entries if e.clip_id not in store]
        if missing:
            raise ManifestError(
                f"{len(missing)} clips are not in the feature store {store.root} (run `emocontext extract`): "
                + ", ".join(missing[:5])
                + (" ..." if len(missing) > 5 else "")
            )
        self.entries = entries
        self.signature = store.signature  # what made the features: a checkpoint records it (train.fit)
        self.root = store.root
        self.labels = np.array([label_set.index(e.label) for e in entries], np.int64)
        self.records = [store.get(e.clip_id) for e in entries]
        self.train = train
        self.max_frames = max_frames
        self.seed = seed
        self.epoch = 0
        self.has_audio = bool(self.records) and all(r.audio is not None for r in self.records)
        self.audio_whitening = as_whitening(audio_whitening)
        self.audio: list[np.ndarray] | None = None  # per clip (T_a, D_a) float32, whitened if asked
        if self.audio_whitening is not None:
            frames = _audio_frames(self.records)
            self.audio = [self.audio_whitening.transform(a) for a in frames]
        elif self.has_audio:
            self.audio = [np.asarray(r.audio, np.float32) for r in self.records]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def face_dim(self) -> int:
        return self.records[0].face.shape[1]

    @property
    def context_dim(self) -> int:
        return self.records[0].context.shape[1]

    @property
    def audio_dim(self) -> int:
        """``D_a`` of the samples' ``audio`` (the whitening's output size when whitened).

        Raises:
            ConfigError: the clips have no audio features.
        """
        if self.audio is None:
            raise ConfigError("these clips have no audio features: extract the store with audio")
        return self.audio[0].shape[1]

    @property
    def audio_frames_per_step(self) -> float | None:
        """Audio frames per video frame, ``T_a / T``: the median over the clips with audio (None without any).

        The AV-LSTM matches its alignment window to it (:func:`emocontext.models.av_lstm.matched_window`).
        """
        ratios = [len(a) / len(r) for a, r in zip(self.audio or [], self.records, strict=False) if len(a) and len(r)]
        return float(np.median(ratios)) if ratios else None

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        t = len(r)
        start = 0
        if self.train and t > 1:
            # (seed, epoch, i) as a SeedSequence: an arithmetic mix such as (seed + epoch) * C + i would make
            # seed s at epoch e draw what seed s + 1 draws at epoch e - 1 (FIDELITY.md, "Seeds")
            rng = np.random.default_rng((self.seed, self.epoch, i))
            start = int(rng.integers(0, t // 2 + 1))
        end = t if self.max_frames is None else min(t, start + self.max_frames)
        sl = slice(start, end)
        item = {
            "face": torch.from_numpy(r.face[sl]),
            "context": torch.from_numpy(r.context[sl]),
            "face_mask": torch.from_numpy(r.face_present[sl].astype(bool)),
            "face_probs": torch.from_numpy(r.face_probs[sl]),
            "face_map": torch.from_numpy(r.face_map[sl]),
            "label": int(self.labels[i]),
            "index": i,
        }
        if self.audio is not None:
            # audio frames centred in [timestamps[start], timestamps[end]): the span the kept frames cover
            lo = r.timestamps[start] if start > 0 else -np.inf
            hi = r.timestamps[end] if end < t else np.inf
            a0, a1 = np.searchsorted(r.audio_timestamps, [lo, hi], side="left")
            item["audio"] = torch.from_numpy(np.ascontiguousarray(self.audio[i][a0:a1]))
        return item


#: Per-frame sample keys that :func:`collate` pads to ``(B, T, ...)``, in this order of preference for ``T``.
FRAME_KEYS = ("face_mask", "face", "context", "face_probs", "face_map", "face_pixels", "context_pixels")


def collate(items: list[dict]) -> dict:
    """Pad a list of samples to the longest one.

    Returns a batch dict with every per-frame key the samples have (:data:`FRAME_KEYS`), padded
    with zeros: ``face`` (B, T, D_f), ``context`` (B, T, D_c) or (B, T, C, h, w), ``face_probs``
    (B, T, K), ``face_map`` (B, T, C, h, w) from a feature store; ``face_pixels`` (B, T, 3, S, S) and
    ``context_pixels`` (B, T, 3, c, c) from :class:`~.pixels.PixelClipDataset`; and ``mask`` (B, T)
    bool, ``face_mask`` (B, T) bool, ``lengths`` (B,), ``label`` (B,), ``index`` (B,).

    When the samples have audio, also ``audio`` (B, T_a, D_a) float32 padded to the longest audio
    (at least one column, so a batch of clips without audio frames still has the key: its
    ``audio_mask`` is then all False), ``audio_mask`` (B, T_a) bool (True = a real audio frame)
    and ``audio_lengths`` (B,).
    """
    keys = [k for k in FRAME_KEYS if k in items[0]]
    lengths = torch.tensor([len(it[keys[0]]) for it in items])
    t = int(lengths.max())
    b = len(items)

    def pad(key: str) -> torch.Tensor:
        first = items[0][key]
        out = torch.zeros((b, t, *first.shape[1:]), dtype=first.dtype)
        for j, it in enumerate(items):
            out[j, : len(it[key])] = it[key]
        return out

    mask = torch.arange(t)[None, :] < lengths[:, None]
    batch = {k: pad(k) for k in keys}
    batch.update(
        face_mask=batch["face_mask"] & mask,
        mask=mask,
        lengths=lengths,
        label=torch.tensor([it["label"] for it in items]),
        index=torch.tensor([it["index"] for it in items]),
    )
    if "audio" in items[0]:
        audio_lengths = torch.tensor([len(it["audio"]) for it in items])
        t_a = max(int(audio_lengths.max()), 1)
        audio = torch.zeros((b, t_a, items[0]["audio"].shape[1]), dtype=torch.float32)
        for j, it in enumerate(items):
            audio[j, : len(it["audio"])] = it["audio"]
        batch["audio"] = audio
        batch["audio_mask"] = torch.arange(t_a)[None, :] < audio_lengths[:, None]
        batch["audio_lengths"] = audio_lengths
    return batch
