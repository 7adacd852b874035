"""FeatureStore: per-clip features on disk, one atomic file per clip.

Layout of a store directory::

    store.json          format version + signature (extractors, stream settings)
    records/<key>.npz   one clip: arrays + its manifest entry as JSON
    failures.jsonl      clips that failed, one JSON line each (retried next run)

A record holds the visual arrays of every clip and, when the store was made with an audio
feature spec (its signature then has an ``"audio"`` entry), the clip's audio features and their
times. Records without audio (stores made before audio existed, or without it) load with
``audio = audio_timestamps = None``; the format version did not change.

Every record is written to a temporary file in the same directory and moved
into place with :func:`os.replace`, so a crash never leaves a half-written record
and a finished record is never redone. The signature records which extractors
(name, version, preprocessing) and which stream settings made the features;
opening a store with another signature raises
:class:`~emocontext.errors.IncompatibleFeaturesError` instead of mixing them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EmoContextError, IncompatibleFeaturesError
from ..outputs import atomic_write_bytes, atomic_write_text, make_dir

__all__ = ["FeatureStore", "Record", "record_key", "atomic_write_bytes", "atomic_write_text"]

FORMAT_VERSION = 1


def record_key(clip_id: str) -> str:
    """File-system-safe, collision-free key for a clip id: a readable slug plus 10 hex digits of its SHA-1."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id)[-60:].strip("._") or "clip"
    return f"{slug}-{hashlib.sha1(clip_id.encode()).hexdigest()[:10]}"


@dataclass
class Record:
    """Features of one clip.

    Attributes:
        face: ``(T, D_f)`` float32 face features (zeros where ``face_present`` is False).
        face_probs: ``(T, K)`` float32 per-frame expression probabilities of the face CNN.
        face_map: ``(T, C, h, w)`` float32 last feature map of the face CNN (for the 2D-3D-CNN).
        context: ``(T, D_c)`` or ``(T, C, h, w)`` float32 context features.
        face_present: ``(T,)`` bool.
        timestamps: ``(T,)`` float64 seconds.
        boxes: ``(T, 4)`` float32 xyxy face boxes in pixels of the original frame.
        meta: the manifest entry and clip facts (path, label, split, ...).
        audio: ``(T_a, D_a)`` float32 per-audio-frame features
            (:func:`emocontext.features.audio.audio_features`) over the span the sampled video
            frames cover, or None when the store has no audio. ``T_a = 0`` for a clip without an
            audio track. Stored as float32 (small, and float16 would blur the small spectral values).
        audio_timestamps: ``(T_a,)`` float64 seconds, centre of each audio frame on the same clock
            as ``timestamps`` (None with ``audio``).
    """

    face: np.ndarray
    face_probs: np.ndarray
    face_map: np.ndarray
    context: np.ndarray
    face_present: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray
    meta: dict
    audio: np.ndarray | None = None
    audio_timestamps: np.ndarray | None = None

    ARRAYS = ("face", "face_probs", "face_map", "context", "face_present", "timestamps", "boxes")
    FLOATS = ("face", "face_probs", "face_map", "context")
    AUDIO = ("audio", "audio_timestamps")  # optional: both or neither

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def has_audio(self) -> bool:
        """True when the record carries audio arrays (possibly of length 0)."""
        return self.audio is not None


class FeatureStore:
    """A directory of per-clip feature records made by one set of extractors.

    Args:
        root: the store directory (created if missing).
        signature: what made (or will make) the features. ``None`` opens an
            existing store read-only with whatever signature it has.

    Raises:
        IncompatibleFeaturesError: the store exists with a different signature.
        EmoContextError: ``signature`` is None and there is no store at ``root``.
    """

    def __init__(self, root: str | Path, signature: dict | None = None):
        self.root = Path(root)
        self.records_dir = self.root / "records"
        meta_path = self.root / "store.json"
        if meta_path.exists():
            stored = json.loads(meta_path.read_text())
            if stored.get("format") != FORMAT_VERSION:
                raise IncompatibleFeaturesError(f"{self.root}: store format {stored.get('format')} != {FORMAT_VERSION}")
            if signature is not None and _canon(stored["signature"]) != _canon(signature):
                raise IncompatibleFeaturesError(
                    f"{self.root}: features were made with other extractors/settings; "
                    f"differences: {_diff(stored['signature'], signature)}. Use a new store directory."
                )
            self.signature = stored["signature"]
        elif signature is None:
            raise EmoContextError(f"{self.root}: not a feature store (no store.json); run `emocontext extract` first")
        else:
            make_dir(self.records_dir)
            atomic_write_text(meta_path, json.dumps({"format": FORMAT_VERSION, "signature": signature}, indent=2))
            self.signature = signature
        make_dir(self.records_dir)

    def path_of(self, clip_id: str) -> Path:
        return self.records_dir / f"{record_key(clip_id)}.npz"

    def __contains__(self, clip_id: str) -> bool:
        return self.path_of(clip_id).exists()

    def __len__(self) -> int:
        return sum(1 for _ in self.records_dir.glob("*.npz"))

    def clip_ids(self) -> list[str]:
        """Clip ids of all records (reads each record's metadata)."""
        return [self.get_meta(p)["clip_id"] for p in sorted(self.records_dir.glob("*.npz"))]

    def put(self, clip_id: str, record: Record) -> None:
        """Write one record atomically (visual float features stored as float16, audio as float32).

        Raises:
            ValueError: only one of ``audio``/``audio_timestamps`` is set, or their shapes disagree.
        """
        arrays = {}
        for name in Record.ARRAYS:
            a = np.asarray(getattr(record, name))
            if name in Record.FLOATS:
                a = a.astype(np.float16)
            arrays[name] = a
        if (record.audio is None) != (record.audio_timestamps is None):
            raise ValueError(f"{clip_id}: audio and audio_timestamps must be given together")
        if record.audio is not None:
            audio = np.asarray(record.audio, np.float32)
            times = np.asarray(record.audio_timestamps, np.float64)
            if audio.ndim != 2 or times.shape != (len(audio),):
                raise ValueError(
                    f"{clip_id}: audio must be (T_a, D_a) with audio_timestamps (T_a,), "
                    f"got {audio.shape} and {times.shape}"
                )
            arrays.update(audio=audio, audio_timestamps=times)
        meta = {**record.meta, "clip_id": clip_id}
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        atomic_write_bytes(self.path_of(clip_id), buf.getvalue())

    def get(self, clip_id: str) -> Record:
        """Read one record; raises KeyError if the clip is not in the store."""
        path = self.path_of(clip_id)
        if not path.exists():
            raise KeyError(clip_id)
        with np.load(path) as z:
            arrays = {n: z[n] for n in Record.ARRAYS}
            arrays.update({n: z[n] for n in Record.AUDIO if n in z.files})
            meta = json.loads(z["meta"].tobytes().decode())
        for n in Record.FLOATS:
            arrays[n] = arrays[n].astype(np.float32)
        return Record(meta=meta, **arrays)

    @property
    def has_audio(self) -> bool:
        """True when the store was made with audio features (its signature has an ``"audio"`` entry)."""
        return self.signature.get("audio") is not None

    @staticmethod
    def get_meta(path: Path) -> dict:
        with np.load(path) as z:
            return json.loads(z["meta"].tobytes().decode())

    def log_failure(self, clip_id: str, path: str, error: str) -> None:
        with open(self.root / "failures.jsonl", "a") as f:
            f.write(json.dumps({"clip_id": clip_id, "path": path, "error": error}) + "\n")


def _canon(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=list)


def signature_diff(a: dict, b: dict) -> str:
    """``"key: stored ... vs requested ..."`` for every top-level key where two signatures differ ("" if none)."""
    return _diff(a, b)


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if _canon({"v": va}) != _canon({"v": vb}):
            out.append(f"{k}: stored {va!r} vs requested {vb!r}")
    return "; ".join(out)
