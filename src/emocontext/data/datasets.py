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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.manifest import ClipEntry, Manifest
from ..errors import ManifestError
from ..features.store import FeatureStore
from ..labels import LabelSet

__all__ = ["FeatureSequenceDataset", "collate"]


class FeatureSequenceDataset(Dataset):
    """Clips of a manifest, read from a feature store, in memory.

    Args:
        store: the feature store (``emocontext extract`` made it).
        entries: the clips (a Manifest or its entries); every clip must be in the store.
        label_set: maps labels to class ids.
        train: random start frame per sample (augmentation).
        max_frames: keep at most this many frames from the start (None = all).
        seed: seeds the random start frames; epoch ``e`` uses ``seed + e`` (:meth:`set_epoch`).

    Raises:
        ManifestError: clips missing from the store (all listed), or unlabelled clips.
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
        self.labels = np.array([label_set.index(e.label) for e in entries], np.int64)
        self.records = [store.get(e.clip_id) for e in entries]
        self.train = train
        self.max_frames = max_frames
        self.seed = seed
        self.epoch = 0

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

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        t = len(r)
        start = 0
        if self.train and t > 1:
            rng = np.random.default_rng((self.seed + self.epoch) * 1_000_003 + i)
            start = int(rng.integers(0, t // 2 + 1))
        end = t if self.max_frames is None else min(t, start + self.max_frames)
        sl = slice(start, end)
        return {
            "face": torch.from_numpy(r.face[sl]),
            "context": torch.from_numpy(r.context[sl]),
            "face_mask": torch.from_numpy(r.face_present[sl].astype(bool)),
            "face_probs": torch.from_numpy(r.face_probs[sl]),
            "face_map": torch.from_numpy(r.face_map[sl]),
            "label": int(self.labels[i]),
            "index": i,
        }


def collate(items: list[dict]) -> dict:
    """Pad a list of samples to the longest one.

    Returns a batch dict: ``face`` (B, T, D_f), ``context`` (B, T, D_c) or (B, T, C, h, w),
    ``face_probs`` (B, T, K), ``face_map`` (B, T, C, h, w), ``mask`` (B, T) bool, ``face_mask`` (B, T) bool,
    ``lengths`` (B,), ``label`` (B,), ``index`` (B,). Padded values are zeros.
    """
    lengths = torch.tensor([len(it["face"]) for it in items])
    t = int(lengths.max())
    b = len(items)

    def pad(key: str) -> torch.Tensor:
        first = items[0][key]
        out = torch.zeros((b, t, *first.shape[1:]), dtype=first.dtype)
        for j, it in enumerate(items):
            out[j, : len(it[key])] = it[key]
        return out

    mask = torch.arange(t)[None, :] < lengths[:, None]
    return {
        "face": pad("face"),
        "context": pad("context"),
        "face_probs": pad("face_probs"),
        "face_map": pad("face_map"),
        "face_mask": pad("face_mask") & mask,
        "mask": mask,
        "lengths": lengths,
        "label": torch.tensor([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }
