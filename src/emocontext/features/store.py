"""FeatureStore: per-clip features on disk, one atomic file per clip.

Layout of a store directory::

    store.json          format version + signature (extractors, stream settings)
    records/<key>.npz   one clip: arrays + its manifest entry as JSON
    failures.jsonl      clips that failed, one JSON line each (retried next run)

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
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EmoContextError, IncompatibleFeaturesError

__all__ = ["FeatureStore", "Record", "record_key", "atomic_write_bytes", "atomic_write_text"]

FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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
    """

    face: np.ndarray
    face_probs: np.ndarray
    face_map: np.ndarray
    context: np.ndarray
    face_present: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray
    meta: dict

    ARRAYS = ("face", "face_probs", "face_map", "context", "face_present", "timestamps", "boxes")
    FLOATS = ("face", "face_probs", "face_map", "context")

    def __len__(self) -> int:
        return len(self.timestamps)


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
            self.records_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(meta_path, json.dumps({"format": FORMAT_VERSION, "signature": signature}, indent=2))
            self.signature = signature
        self.records_dir.mkdir(parents=True, exist_ok=True)

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
        """Write one record atomically (float features stored as float16)."""
        arrays = {}
        for name in Record.ARRAYS:
            a = np.asarray(getattr(record, name))
            if name in Record.FLOATS:
                a = a.astype(np.float16)
            arrays[name] = a
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
            meta = json.loads(z["meta"].tobytes().decode())
        for n in Record.FLOATS:
            arrays[n] = arrays[n].astype(np.float32)
        return Record(meta=meta, **arrays)

    @staticmethod
    def get_meta(path: Path) -> dict:
        with np.load(path) as z:
            return json.loads(z["meta"].tobytes().decode())

    def log_failure(self, clip_id: str, path: str, error: str) -> None:
        with open(self.root / "failures.jsonl", "a") as f:
            f.write(json.dumps({"clip_id": clip_id, "path": path, "error": error}) + "\n")


def _canon(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=list)


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if _canon({"v": va}) != _canon({"v": vb}):
            out.append(f"{k}: stored {va!r} vs requested {vb!r}")
    return "; ".join(out)
