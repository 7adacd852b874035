"""Batched feature extraction over a manifest into a :class:`~.store.FeatureStore`.

For each clip: decode + detect + track + crop (:func:`emocontext.video.pipeline.video_streams`),
then the frozen face CNN on the frames with a face and the context CNN on every
frame. With an audio spec (``Extractors.build(audio=...)``) the clip's audio is
decoded over the span the sampled frames cover and turned into per-audio-frame
features (:func:`clip_audio`). Decoding, detection and the audio of the next clip
run in a background thread while the CNNs work on the current one. Finished clips
are skipped on the next run, so an interrupted extraction resumes where it stopped;
a clip that fails is reported, logged in ``failures.jsonl`` and skipped, and the
others still run. A clip without an audio track is not a failure: it gets 0 audio
frames and a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.manifest import ClipEntry, Manifest, SequenceEntry, duplicate_clip_ids
from ..errors import AudioDecodeError, ConfigError, EmoContextError, ManifestError, VideoDecodeError
from ..outputs import atomic_write_text
from ..video.decode import is_image, read_audio, stream_origins
from ..video.faces import FaceDetector, GivenBoxDetector, create_detector
from ..video.pipeline import StageTimes, StreamConfig, video_streams
from ..video.streams import Streams
from .audio import PAPER_AUDIO, AudioFeatureSpec, audio_features
from .face import FaceExtractor
from .store import FeatureStore, Record

if TYPE_CHECKING:
    from .backbones import ContextExtractor

__all__ = [
    "Extractors",
    "ExtractSummary",
    "extract",
    "entry_record",
    "clip_record",
    "clip_audio",
    "face_features",
    "sequence_streams",
    "AUDIO_SPAN",
    "FAILED_COLUMNS",
    "write_failed_csv",
]

log = logging.getLogger(__name__)

#: How the audio span is chosen (recorded in the store signature next to the audio spec): the span
#: the sampled video frames cover, on their clock, silence where the track does not reach.
AUDIO_SPAN = "sampled_frames/1"

AudioArrays = tuple[np.ndarray, np.ndarray]  # features (T_a, D_a) float32, times (T_a,) float64 seconds


def clip_audio(
    path: str | Path,
    timestamps: np.ndarray,
    spec: AudioFeatureSpec = PAPER_AUDIO,
    *,
    fps: float,
    end: float | None = None,
) -> AudioArrays:
    """Audio features of the span that a clip's sampled video frames cover.

    The span is ``[timestamps[0], min(timestamps[-1] + 1 / fps, end))`` on the frames' clock
    (seconds from the first video frame, as :func:`emocontext.video.decode.iter_frames` gives
    them): frame ``k`` is on screen from ``timestamps[k]`` for one sampling period. The audio
    stream's own start time is taken into account (CREMA-D's video starts 27 ms after its audio;
    some phone videos start their audio seconds late). Parts of the span the audio track does not
    reach are digital silence, so the features span exactly the visual frames, which is what the
    AV-LSTM's coarse alignment ``p_t = t * T_a / T`` assumes (:mod:`emocontext.models.av_lstm`).

    Args:
        path: the clip's media file (its first audio stream is read mono at ``spec.sample_rate``).
        timestamps: ``(T,)`` float64 seconds of the sampled video frames.
        spec: the audio feature settings.
        fps: the video sampling rate in Hz.
        end: end of the clip in seconds on the same clock (``start + max_duration``), if limited.

    Returns:
        ``(features, times)``: float32 ``(T_a, D_a)`` and float64 ``(T_a,)``; audio frame ``a`` is
        centred at ``timestamps[0] + a * hop / sample_rate``. A file without an audio track (or
        with undecodable audio, or a track that misses the span entirely) gives ``T_a = 0`` and a
        logged warning; a still image gives ``T_a = 0`` silently.
    """
    empty = np.zeros((0, spec.feature_dim), np.float32), np.zeros(0, np.float64)
    timestamps = np.asarray(timestamps, np.float64)
    if len(timestamps) == 0:
        return empty
    if is_image(path):
        log.debug("%s: a still image has no audio; 0 audio frames", path)
        return empty
    t0 = float(timestamps[0])
    t1 = float(timestamps[-1]) + 1.0 / fps
    if end is not None:
        t1 = min(t1, end)
    sr = spec.sample_rate
    try:
        wave = read_audio(path, sample_rate=sr)
    except AudioDecodeError as e:
        log.warning("%s -- storing 0 audio frames for this clip (audio models see it as a clip without audio)", e)
        return empty
    video0, audio0 = stream_origins(path)
    i0 = int(round((t0 + video0 - audio0) * sr))  # sample of the audio track at the first frame
    n = max(int(round((t1 - t0) * sr)), 1)
    lo, hi = max(i0, 0), min(i0 + n, len(wave))
    if hi <= lo:
        log.warning(
            "%s: the audio track (%.2f s from %.2f s) does not reach the frames' span %.2f-%.2f s; "
            "storing 0 audio frames for this clip",
            path,
            len(wave) / sr,
            audio0 - video0,
            t0,
            t1,
        )
        return empty
    segment = np.zeros(n, np.float32)
    segment[lo - i0 : hi - i0] = wave[lo:hi]
    if hi - lo < n - spec.hop_length:
        log.info("%s: audio covers %.2f of the frames' %.2f s; the rest is silence", path, (hi - lo) / sr, n / sr)
    feats, times = audio_features(segment, sr, spec=spec)
    return feats, t0 + np.asarray(times, np.float64)


@dataclass
class Extractors:
    """Everything that turns a video into features, built once and reused for every clip."""

    detector: FaceDetector
    face: FaceExtractor
    context: ContextExtractor  # imported when built: torch loads only where a context CNN runs
    config: StreamConfig = StreamConfig()
    audio: AudioFeatureSpec | None = None

    @classmethod
    def build(
        cls,
        *,
        detector: str | FaceDetector = "mtcnn",
        context_backbone: str = "efficientnet_lite0",
        spatial: bool = False,
        config: StreamConfig = StreamConfig(),
        face_weights: str | Path | None = None,
        audio: AudioFeatureSpec | bool | None = None,
        context_pool: str = "mean",
    ) -> Extractors:
        """Build the extractors once.

        Args:
            context_pool: ``"mean"`` or ``"flatten"`` (7x7 map flattened: SqueezeNet's 25,088-d
                context feature of Sun et al., V-C), see :class:`~.backbones.ContextExtractor`.
            audio: per-audio-frame features to extract too: an
                :class:`~emocontext.features.audio.AudioFeatureSpec`, ``True`` for the paper's
                (:data:`~emocontext.features.audio.PAPER_AUDIO`), or None/False for no audio.
        """
        from .backbones import ContextExtractor

        if audio is True:
            audio = PAPER_AUDIO
        elif audio is False:
            audio = None
        elif audio is not None and not isinstance(audio, AudioFeatureSpec):
            raise ConfigError(f"audio must be an AudioFeatureSpec, True/False or None, got {audio!r}")
        return cls(
            detector=create_detector(detector) if isinstance(detector, str) else detector,
            face=FaceExtractor(face_weights),
            context=ContextExtractor(context_backbone, spatial=spatial, pool=context_pool),
            config=config,
            audio=audio,
        )

    def signature(self) -> dict:
        """Recorded in the store: extractor identities, preprocessing and stream settings (and audio, if any)."""
        sig = {
            "face": self.face.signature,
            "context": self.context.signature,
            "detector": self.detector.name,
            "streams": self.config.signature(),
        }
        if self.audio is not None:  # absent without audio, so stores made before audio existed still match
            sig["audio"] = {**self.audio.signature(), "span": AUDIO_SPAN}
        return sig

    def clip_config(self, entry: ClipEntry) -> StreamConfig:
        """The stream settings for one clip: the manifest's start/end, if any, replace the config's."""
        cfg = self.config
        if entry.start is not None or entry.end is not None:
            start = entry.start or 0.0
            cfg = replace(cfg, start=start, max_duration=None if entry.end is None else entry.end - start)
        return cfg

    def streams(self, entry: ClipEntry, times: StageTimes | None = None) -> Streams:
        box = entry.box  # datasets that give the face box (ExpW) skip detection, but take its landmarks for alignment
        if box is None:
            detector = self.detector
        else:
            aligning = self.config.face_align and not getattr(self.detector, "whole_frame", False)
            detector = GivenBoxDetector(box, landmarks_from=self.detector if aligning else None)
        if isinstance(entry, SequenceEntry):
            return sequence_streams(entry, detector, self.config, times)
        return video_streams(entry.path, detector, self.clip_config(entry), times=times)

    def audio_features(
        self,
        path: str | Path,
        timestamps: np.ndarray,
        config: StreamConfig | None = None,
        times: StageTimes | None = None,
    ) -> AudioArrays | None:
        """:func:`clip_audio` with this spec over the frames at ``timestamps`` (None without an audio spec).

        ``config`` (default: :attr:`config`) gives the sampling rate and the clip's end.
        """
        if self.audio is None:
            return None
        cfg = config or self.config
        end = None if cfg.max_duration is None else cfg.start + cfg.max_duration
        t = time.perf_counter()
        out = clip_audio(path, timestamps, self.audio, fps=cfg.fps, end=end)
        if times is not None:
            times.add("audio", time.perf_counter() - t)
        return out

    def load(self, entry: ClipEntry, times: StageTimes | None = None) -> tuple[Streams, AudioArrays | None]:
        """The part of one clip that runs in the background thread: its streams and (with a spec) its audio
        (none for a sequence of images)."""
        streams = self.streams(entry, times)
        if isinstance(entry, SequenceEntry):
            if self.audio is None:
                return streams, None
            return streams, (np.zeros((0, self.audio.feature_dim), np.float32), np.zeros(0, np.float64))
        return streams, self.audio_features(entry.path, streams.timestamps, self.clip_config(entry), times)


def sequence_streams(
    entry: SequenceEntry, detector: FaceDetector, config: StreamConfig, times: StageTimes | None = None
) -> Streams:
    """The streams of a sequence of still images (CK+): each image is one sampled frame, in order.

    Each image goes through :func:`~emocontext.video.pipeline.video_streams` on its own (decoding, face
    detection, crops, the context stream), and the frames are stacked; timestamps are ``k / config.fps``
    (consecutive samples). Deviation from a video: faces are not tracked across the images, each image's
    subject is its own (most persistent, then largest: the largest) face; CK+ shows one face.

    Raises:
        VideoDecodeError: an image cannot be read, or the images differ in size.
    """
    parts = [video_streams(f, detector, config, times=times) for f in entry.frames]
    if not parts:
        raise VideoDecodeError(f"{entry.path}: a sequence without images")
    sizes = sorted({p.frame_size for p in parts})
    if len(sizes) > 1:
        raise VideoDecodeError(f"{entry.path}: its images differ in size ({', '.join(f'{h}x{w}' for h, w in sizes)})")

    def stack(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return Streams(
        face=stack("face"),
        context=stack("context"),
        face_present=stack("face_present"),
        boxes=stack("boxes"),
        timestamps=np.arange(len(parts), dtype=np.float64) / config.fps,
        frame_size=parts[0].frame_size,
        context_config=config,
    )


def face_features(
    face: FaceExtractor, crops: np.ndarray, present: np.ndarray, *, keep_maps: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face CNN over a face stream: per-frame features, probabilities and feature maps, zeros where no face.

    The one function that turns face crops into per-frame features, for ``extract`` (what models train on)
    and for :class:`~emocontext.inference.Predictor` (what they are applied to), so the two cannot drift.

    Args:
        face: the frozen face CNN.
        crops: uint8 ``(T, H, W, 3)`` RGB face crops (any size: the extractor resizes to its input).
        present: bool ``(T,)``: frames with a face; only those go through the CNN.
        keep_maps: False: the maps come back as ``(T, 0, h, w)`` (prediction reads no maps; a long
            video's maps would take 100 KB a frame).

    Returns:
        float32 features ``(T, D)``, probabilities ``(T, K)`` (K = the extractor's classes) and maps
        ``(T, D, h, w)``; all zeros where ``present`` is False.
    """
    present = np.asarray(present, bool)
    n = len(present)
    feats, probs, maps = face.run(crops[present], keep_maps=keep_maps)
    out_f = np.zeros((n, *feats.shape[1:]), np.float32)
    out_p = np.zeros((n, *probs.shape[1:]), np.float32)
    out_m = np.zeros((n, *maps.shape[1:]), np.float32)
    out_f[present], out_p[present], out_m[present] = feats, probs, maps
    return out_f, out_p, out_m


def clip_record(
    streams: Streams,
    extractors: Extractors,
    times: StageTimes | None = None,
    *,
    audio: AudioArrays | None = None,
    path: str | Path | None = None,
) -> Record:
    """Run the frozen CNNs on one clip's streams; with an audio spec, add its audio features.

    Args:
        streams: the clip's streams (``T`` frames).
        extractors: the extractors.
        times: stage timings to add to.
        audio: ``(features (T_a, D_a), times (T_a,))`` already computed (:meth:`Extractors.load`
            does it in the background thread); else, with an audio spec, the audio of ``path`` is
            read here over the frames' span (:func:`clip_audio`, settings of ``extractors.config``).
        path: the clip's file, needed with an audio spec when ``audio`` is not given.

    Raises:
        ConfigError: the extractors have an audio spec but neither ``audio`` nor ``path`` is given.
    """
    times = times or StageTimes()
    if extractors.audio is not None and audio is None:
        if path is None:
            raise ConfigError("these extractors compute audio features: pass the clip's path (or its audio)")
        audio = extractors.audio_features(path, streams.timestamps, times=times)
    t0 = time.perf_counter()
    present = streams.face_present
    face, probs, face_map = face_features(extractors.face, streams.face, present)
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
        audio=None if audio is None or extractors.audio is None else audio[0],
        audio_timestamps=None if audio is None or extractors.audio is None else audio[1],
    )


def entry_record(
    entry: ClipEntry,
    extractors: Extractors,
    times: StageTimes | None = None,
    *,
    loaded: tuple[Streams, AudioArrays | None] | None = None,
) -> Record:
    """The store record of one manifest entry: :meth:`Extractors.load` (unless ``loaded`` gives its result),
    :func:`clip_record`, and the entry itself in ``meta`` (with a dataset's own face box, as ExpW's).

    The one function that makes a record, for :func:`extract` and for the Ray workers of
    :mod:`emocontext.distributed.ray`, so the two write the same store.

    Raises:
        EmoContextError: the clip cannot be decoded (or another expected failure of one clip).
    """
    streams, audio = loaded if loaded is not None else extractors.load(entry, times)
    record = clip_record(streams, extractors, times, audio=audio)
    record.meta.update(entry.to_dict())
    if getattr(entry, "box", None) is not None:  # a dataset's own face box (ExpW FaceEntry)
        record.meta.update(face_id=entry.face_id, box=list(entry.box))
    return record


@dataclass
class ExtractSummary:
    """What one :func:`extract` run did.

    Attributes:
        done: clips extracted; ``skipped``: clips the store had already.
        failed: ``(path, message)`` per clip that failed, in manifest order.
        failed_csv: ``STORE/failed.csv``, the manifest rows not in the store after the run with their line
            and error (:func:`write_failed_csv`), or None when every row is in the store.
        times: seconds per stage.
        no_audio: paths extracted with audio asked for but 0 audio frames.
    """

    done: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)
    no_audio: list = field(default_factory=list)
    failed_csv: Path | None = None


#: The columns of ``failed.csv``: the manifest's CSV line (empty for folders) and row (from 1), the row itself,
#: and the error.
FAILED_COLUMNS = ["line", "row", "path", "label", "split", "group", "start", "end", "error"]


def write_failed_csv(manifest: Manifest, store: FeatureStore, failed: list[tuple[str, str]]) -> Path | None:
    """Write ``STORE/failed.csv``: every manifest row the store lacks after a run, with its line and error.

    Rerunning the same ``extract`` retries exactly these rows (finished clips are skipped). A store that has
    every row loses the ``failed.csv`` of an earlier run, so the file always describes the last one.

    Returns:
        The file, or None when nothing is missing.

    Raises:
        OutputError: the file cannot be written.
    """
    import csv
    import io

    errors = dict(failed)
    target = Path(store.root) / "failed.csv"
    missing = [(i, e) for i, e in enumerate(manifest) if e.clip_id not in store]
    if not missing:
        target.unlink(missing_ok=True)
        return None
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FAILED_COLUMNS)
    for i, e in missing:
        line = manifest.lines[i] if manifest.lines else ""
        error = " / ".join(part.strip() for part in errors.get(e.path, "not extracted").splitlines())
        w.writerow([line, i + 1, *("" if v is None else v for v in e.to_dict().values()), error])
    atomic_write_text(target, buf.getvalue())
    return target


def extract(
    manifest: Manifest,
    store: FeatureStore | str | Path,
    extractors: Extractors,
    *,
    on_progress: Callable[[int, int], object] | None = None,
) -> ExtractSummary:
    """Extract features for every clip of ``manifest`` that the store does not have yet.

    Args:
        manifest: the clips.
        store: a FeatureStore or its directory (created with the extractors' signature).
        extractors: see :meth:`Extractors.build`.
        on_progress: called as ``on_progress(done, total)`` after each clip (extracted or failed) of the
            ``total`` the store does not have yet.

    Returns:
        An :class:`ExtractSummary`; failed clips are listed there, in the store's
        ``failures.jsonl`` and, with their manifest line, in ``failed.csv``
        (:func:`write_failed_csv`), never raised. With audio, clips stored with
        0 audio frames (no audio track) are listed in ``no_audio``. A clip whose
        file breaks off part-way is kept (the frames before the break) with one
        warning.

    Raises:
        IncompatibleFeaturesError: the store was made by other extractors.
        ManifestError: two entries have the same clip id (they would be one record: nothing is extracted).
    """
    dup = duplicate_clip_ids(manifest)
    if dup:
        raise ManifestError(
            f"{manifest.name}: {len(dup)} clips listed more than once, which would overwrite each other's "
            f"features: {'; '.join(dup[:10])}"
        )
    if not isinstance(store, FeatureStore):
        store = FeatureStore(store, extractors.signature())
    elif store.signature != extractors.signature():
        store = FeatureStore(store.root, extractors.signature())  # raises with the differences
    summary = ExtractSummary()
    todo = [e for e in manifest if e.clip_id not in store]
    summary.skipped = len(manifest) - len(todo)

    with ThreadPoolExecutor(1) as pool:
        pending: Future | None = pool.submit(extractors.load, todo[0], summary.times) if todo else None
        for i, entry in enumerate(todo):
            current = pending
            pending = pool.submit(extractors.load, todo[i + 1], summary.times) if i + 1 < len(todo) else None
            try:
                loaded = current.result()
                if loaded[0].truncated:
                    log.warning(
                        "%s: the file breaks off part-way; only the frames before the break were used", entry.path
                    )
                record = entry_record(entry, extractors, summary.times, loaded=loaded)
                store.put(entry.clip_id, record)
                summary.done += 1
                if record.audio is not None and len(record.audio) == 0:
                    summary.no_audio.append(entry.path)
            except EmoContextError as e:
                summary.failed.append((entry.path, str(e)))
                store.log_failure(entry.clip_id, entry.path, str(e))
                log.warning("skipped %s", e)
            if on_progress is not None:
                on_progress(i + 1, len(todo))
    summary.failed_csv = write_failed_csv(manifest, store, summary.failed)
    return summary
