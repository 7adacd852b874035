"""Batched feature extraction over a manifest into a :class:`~.store.FeatureStore`.

For each clip: decode + detect + track + crop (:func:`emocontext.video.pipeline.video_streams`),
then the frozen face CNN on the frames with a face and the context CNN on every
frame. Decoding and detection of the next clip run in a background thread while
the CNNs work on the current one. Finished clips are skipped on the next run, so
an interrupted extraction resumes where it stopped; a clip that fails is
reported, logged in ``failures.jsonl`` and skipped, and the others still run.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data.manifest import ClipEntry, Manifest
from ..errors import EmoContextError
from ..video.faces import FaceDetector, GivenBoxDetector, create_detector
from ..video.pipeline import StageTimes, StreamConfig, video_streams
from ..video.streams import Streams
from .backbones import ContextExtractor, FaceExtractor
from .store import FeatureStore, Record

__all__ = ["Extractors", "ExtractSummary", "extract", "clip_record"]

log = logging.getLogger(__name__)


@dataclass
class Extractors:
    """Everything that turns a video into features, built once and reused for every clip."""

    detector: FaceDetector
    face: FaceExtractor
    context: ContextExtractor
    config: StreamConfig = StreamConfig()

    @classmethod
    def build(
        cls,
        *,
        detector: str | FaceDetector = "mtcnn",
        context_backbone: str = "efficientnet_lite0",
        spatial: bool = False,
        config: StreamConfig = StreamConfig(),
        face_weights: str | Path | None = None,
    ) -> Extractors:
        return cls(
            detector=create_detector(detector) if isinstance(detector, str) else detector,
            face=FaceExtractor(face_weights),
            context=ContextExtractor(context_backbone, spatial=spatial),
            config=config,
        )

    def signature(self) -> dict:
        """Recorded in the store: extractor identities, preprocessing and stream settings."""
        return {
            "face": self.face.signature,
            "context": self.context.signature,
            "detector": self.detector.name,
            "streams": self.config.signature(),
        }

    def streams(self, entry: ClipEntry, times: StageTimes | None = None) -> Streams:
        cfg = self.config
        if entry.start is not None or entry.end is not None:
            start = entry.start or 0.0
            cfg = replace(cfg, start=start, max_duration=None if entry.end is None else entry.end - start)
        box = getattr(entry, "box", None)  # datasets that give the face box (ExpW) skip detection
        detector = self.detector if box is None else GivenBoxDetector(box)
        return video_streams(entry.path, detector, cfg, times=times)


def clip_record(streams: Streams, extractors: Extractors, times: StageTimes | None = None) -> Record:
    """Run the frozen CNNs on one clip's streams."""
    times = times or StageTimes()
    t0 = time.perf_counter()
    n = len(streams)
    present = streams.face_present
    dim, k = extractors.face.spec.feature_dim, len(extractors.face.spec.labels)
    face = np.zeros((n, dim), np.float32)
    probs = np.zeros((n, k), np.float32)
    h, w = (s // 32 for s in extractors.face.spec.input_size)
    face_map = np.zeros((n, dim, h, w), np.float32)
    if present.any():
        face[present], probs[present], face_map[present] = extractors.face.run(streams.face[present])
    t1 = time.perf_counter()
    times.add("face_cnn", t1 - t0)
    context = extractors.context(streams.context)
    times.add("context_cnn", time.perf_counter() - t1)
    return Record(
        face=face,
        face_probs=probs,
        face_map=face_map,
        context=context,
        face_present=present,
        timestamps=streams.timestamps,
        boxes=streams.boxes,
        meta={"frame_size": list(streams.frame_size)},
    )


@dataclass
class ExtractSummary:
    done: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)  # (path, message)
    times: StageTimes = field(default_factory=StageTimes)


def extract(
    manifest: Manifest,
    store: FeatureStore | str | Path,
    extractors: Extractors,
    *,
    progress: bool = True,
) -> ExtractSummary:
    """Extract features for every clip of ``manifest`` that the store does not have yet.

    Args:
        manifest: the clips.
        store: a FeatureStore or its directory (created with the extractors' signature).
        extractors: see :meth:`Extractors.build`.
        progress: show a progress bar (rich).

    Returns:
        An :class:`ExtractSummary`; failed clips are listed there and in the
        store's ``failures.jsonl``, never raised.

    Raises:
        IncompatibleFeaturesError: the store was made by other extractors.
    """
    if not isinstance(store, FeatureStore):
        store = FeatureStore(store, extractors.signature())
    elif store.signature != extractors.signature():
        store = FeatureStore(store.root, extractors.signature())  # raises with the differences
    summary = ExtractSummary()
    todo = [e for e in manifest if e.clip_id not in store]
    summary.skipped = len(manifest) - len(todo)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("[bold]extract"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    ]
    with Progress(*columns, disable=not progress, transient=False) as bar, ThreadPoolExecutor(1) as pool:
        task = bar.add_task("", total=len(todo))
        pending: Future | None = pool.submit(extractors.streams, todo[0], summary.times) if todo else None
        for i, entry in enumerate(todo):
            current = pending
            pending = pool.submit(extractors.streams, todo[i + 1], summary.times) if i + 1 < len(todo) else None
            bar.update(task, description=Path(entry.path).name)
            try:
                streams = current.result()
                record = clip_record(streams, extractors, summary.times)
                record.meta.update(entry.to_dict())
                if getattr(entry, "box", None) is not None:  # a dataset's own face box (ExpW FaceEntry)
                    record.meta.update(face_id=entry.face_id, box=list(entry.box))
                store.put(entry.clip_id, record)
                summary.done += 1
            except EmoContextError as e:
                summary.failed.append((entry.path, str(e)))
                store.log_failure(entry.clip_id, entry.path, str(e))
                log.warning("skipped %s", e)
            bar.advance(task)
    return summary
