"""Video in, emotion out: :class:`Predictor` and :func:`predict` (``emocontext.predict``).

Two models (:class:`Predictor`): ``"face"``, the project's face-expression CNN with temporal
pooling, and ``"context"``, a context-aware head (CAER-Net spatial attention and adaptive fusion
over the face and the scene) loaded from a context model file; the package ships one trained on
ExpW. The default is ``"face"`` (:func:`~emocontext.options.default_model`): on the ExpW test faces the shipped
context model does not beat the face alone (``benchmarks/expw_ablation.md``).

Every person: the faces are tracked into persons (ids stable across frames, see
:mod:`emocontext.video.pipeline`); each person gets their own face stream, emotion over time and
clip emotion (and, with the context model, the shared scene with their own face hidden):
:attr:`Prediction.persons`. The top-level answer is the subject's (the most persistent, then
largest, person), as before persons existed.

Still images are one-frame videos. :func:`predict` is ``emocontext.predict``: one file, one call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import numpy as np

from . import runtime
from .errors import EmoContextError
from .features.extract import face_features
from .features.face import FaceExtractor
from .options import PredictOptions
from .video.faces import FaceDetector, create_detector
from .video.pipeline import StageTimes, StreamConfig, video_streams
from .video.streams import Streams

__all__ = [
    "FramePrediction",
    "PersonPrediction",
    "Prediction",
    "Predictor",
    "predict",
]


@dataclass
class FramePrediction:
    """One sampled frame.

    Attributes:
        timestamp: presentation time in seconds.
        face_present: the subject's face was found in this frame.
        box: the face box, xyxy in pixels of the original frame (None without a face).
        probabilities: the frame's emotion probabilities (None when the model had nothing to
            read: the face-only model on a frame without a face).
        source: what the frame's prediction read: ``"face+context"``, ``"context"`` (no face:
            the context-aware model falls back to the scene) or ``"face"`` (face-only model).
        attention: context spatial attention, ``h x w`` nested lists summing to 1 over the
            context crop (``Prediction.context_box``); row 0 is the top. None for face-only models.
        fusion_weights: ``{"face": lambda_face, "context": lambda_context}`` (CAER-Net eq. 5), summing
            to 1; None for face-only models.
    """

    timestamp: float
    face_present: bool
    box: list[float] | None
    probabilities: dict[str, float] | None
    source: str | None = None
    attention: list[list[float]] | None = None
    fusion_weights: dict[str, float] | None = None


@dataclass
class PersonPrediction:
    """One person (a face track) of a file: their own emotion over time and clip emotion.

    Attributes:
        person_id: 1, 2, ... in order of first appearance, then from left to right; the same person keeps
            the id across frames.
        subject: this person is the file's subject (the top-level answer of :class:`Prediction`).
        label, confidence, probabilities: the person's clip emotion (None / empty when the model had nothing
            to read for them).
        frames_with_face: sampled frames with this person's face.
        first_seen, last_seen: timestamps in seconds of their first and last face.
        frames: one :class:`FramePrediction` per sampled frame (``face_present`` False where they are absent).
    """

    person_id: int
    subject: bool
    label: str | None
    confidence: float | None
    probabilities: dict[str, float]
    frames_with_face: int
    first_seen: float | None
    last_seen: float | None
    frames: list[FramePrediction] = field(default_factory=list)

    def __repr__(self) -> str:
        answer = "no face" if self.label is None else f"{self.label!r} {self.confidence:.2f}"
        subject = ", subject" if self.subject else ""
        return f"PersonPrediction({self.person_id}{subject}: {answer}, {self.frames_with_face} frames with a face)"


@dataclass
class Prediction:
    """The emotion of the person in one file (the subject), and of every other person in it.

    Attributes:
        path: the input file.
        label: the clip emotion, or None when no face was found.
        confidence: probability of ``label`` (None without a face).
        probabilities: clip-level probability of every emotion (empty without a face).
        num_frames: sampled frames; ``frames_with_face``: how many had the subject's face.
        frames: per-frame predictions with timestamps.
        model: which model produced it; ``fps``: sampling rate in Hz.
        truncated: the file broke off while decoding (the frames before the break were used).
        frame_wh: ``(width, height)`` of the decoded frames in pixels (the order of "640 x 360"). The JSON
            also carries ``frame_size``, the same as ``[height, width]`` (deprecated: schema 1 of the web
            service; the :attr:`frame_size` property too).
        context_box: xyxy pixels of the region of the original frame that the context stream saw
            (the centre square crop) and that ``FramePrediction.attention`` covers; None for
            face-only models.
        persons: every person found (``person="all"``) or the subject alone (``person="subject"``), in id order.
        subject_id: ``person_id`` of the subject, None without a face.
    """

    path: str
    label: str | None
    confidence: float | None
    probabilities: dict[str, float]
    num_frames: int
    frames_with_face: int
    frames: list[FramePrediction] = field(default_factory=list)
    model: str = "face_cnn_temporal_mean"
    fps: float = 5.0
    truncated: bool = False
    frame_wh: tuple[int, int] | None = None
    context_box: list[float] | None = None
    persons: list[PersonPrediction] = field(default_factory=list)
    subject_id: int | None = None

    def __repr__(self) -> str:
        """One line: path, answer, frames, persons, model (the frames themselves are in :attr:`frames`)."""
        answer = "no face" if self.label is None else f"{self.label!r} {self.confidence:.2f}"
        return (
            f"Prediction({self.path!r}: {answer}, {self.frames_with_face}/{self.num_frames} frames with a face, "
            f"{len(self.persons)} person{'s' if len(self.persons) != 1 else ''}, model {self.model!r})"
        )

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """Deprecated: ``(height, width)``; use :attr:`frame_wh`, ``(width, height)``."""
        import warnings

        warnings.warn("Prediction.frame_size is (height, width); use frame_wh (width, height)", DeprecationWarning, 2)
        return None if self.frame_wh is None else (self.frame_wh[1], self.frame_wh[0])

    @property
    def no_face(self) -> bool:
        return self.frames_with_face == 0

    @property
    def labels(self) -> list[str]:
        """The model's emotion names, in class order (empty when no frame had probabilities)."""
        for f in self.frames:
            if f.probabilities:
                return list(f.probabilities)
        for person in self.persons:
            for f in person.frames:
                if f.probabilities:
                    return list(f.probabilities)
        return list(self.probabilities)

    def to_dict(self, *, frames: bool = True) -> dict:
        """JSON-ready dict: every field, ``no_face`` and ``status: "ok"``.

        ``frames=False`` drops the per-frame lists (the file's and every person's).
        """
        d = _plain(self)
        d["frame_size"] = None if self.frame_wh is None else [self.frame_wh[1], self.frame_wh[0]]  # schema 1
        d["no_face"] = self.no_face
        d["status"] = "ok"
        if not frames:
            d.pop("frames")
            for person in d["persons"]:
                person.pop("frames")
        return d

    def frame_rows(self) -> Iterator[dict]:
        """One flat dict per person per sampled frame (the ``--frames-csv`` rows, :meth:`to_dataframe`).

        Columns: ``path, person_id, subject, timestamp, face_present, x1, y1, x2, y2, source, label``
        (the frame's top emotion), ``lambda_face``, then ``p_<emotion>`` for every emotion. A file without
        any person gives its frames with an empty ``person_id``.
        """
        names = self.labels
        people = [(p.person_id, p.subject, p.frames) for p in self.persons] or [(None, False, self.frames)]
        for pid, is_subject, frames in people:
            for f in frames:
                box = f.box or [None] * 4
                probs = f.probabilities or {}
                row = {
                    "path": self.path,
                    "person_id": pid,
                    "subject": is_subject,
                    "timestamp": f.timestamp,
                    "face_present": f.face_present,
                    **dict(zip(("x1", "y1", "x2", "y2"), box, strict=True)),
                    "source": f.source,
                    "label": max(probs, key=probs.get) if probs else None,
                    "lambda_face": None if f.fusion_weights is None else f.fusion_weights.get("face"),
                }
                row.update({f"p_{k}": probs.get(k) for k in names})
                yield row

    def to_dataframe(self):
        """The :meth:`frame_rows` as a pandas ``DataFrame`` (one row per person per sampled frame).

        pandas is not a dependency of emocontext (it is large and only this method uses it): install it
        with ``pip install pandas`` (any version 2.x), or with the ``test`` extra of a checkout.

        Raises:
            ImportError: pandas is not installed; the message says how to install it.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Prediction.to_dataframe needs pandas, which emocontext does not install: pip install pandas "
                "(or use Prediction.frame_rows(), the same rows as dicts)"
            ) from None
        return pd.DataFrame(list(self.frame_rows()))

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw), indent=2)


class Predictor:
    """Loads the detector and the models once; :meth:`predict` runs them on one file.

    Two models (:attr:`PredictOptions.model <emocontext.options.PredictOptions.model>`):

    * ``"context"`` (the default only when ``$EMOCONTEXT_CONTEXT_WEIGHTS`` is set,
      :func:`~emocontext.options.default_model`): the context-aware model of :mod:`emocontext.pretrained` --
      per sampled frame, the face CNN's feature of the subject's face and the ImageNet
      EfficientNet-Lite0 map of the frame **with the face hidden**, fused by CAER-Net's spatial
      attention and adaptive fusion (Lee et al., ICCV 2019, eq. 3-6), trained on ExpW. Frames
      without a face fall back to the context stream alone (``lambda_face = 0``,
      ``FramePrediction.source == "context"``), so a clip with no face still gets an emotion,
      read from the scene. Clip probabilities = mean of the frame probabilities over all sampled
      frames (ExpW has single images, so no validation data could choose a temporal weighting;
      the mean is what CAER-Net does over clips).
    * ``"face"`` (the default): the face-expression CNN per frame, **temporal mean** of the
      probabilities over the frames that have a face; a clip with no face gets no emotion
      (``label`` None).

    Args:
        options: the prediction options (:class:`~emocontext.options.PredictOptions`; default: its defaults).
        detector: a face detector object with the :class:`~emocontext.video.faces.FaceDetector` protocol,
            used instead of the backend :attr:`PredictOptions.detector` names; a name here is an option
            like the ones in ``fields``.
        face_weights: another face CNN weights file (default: the shipped one).
        context_weights: another context model file (default: the shipped one).
        **fields: options that replace those of ``options`` (:meth:`PredictOptions.replace`):
            ``Predictor(model="context")`` is ``Predictor(PredictOptions(model="context"))``.

    Attributes:
        options: the options in force (``model`` resolved).

    Raises:
        OptionError: an unknown option or a bad value.
        EmoContextError: missing weights; IncompatibleFeaturesError when the context model was trained
            on other extractors than the ones given.
    """

    def __init__(
        self,
        options: PredictOptions | None = None,
        *,
        detector: str | FaceDetector | None = None,
        face_weights: str | Path | None = None,
        context_weights: str | Path | None = None,
        **fields,
    ):
        if isinstance(detector, str):
            fields["detector"], detector = detector, None
        options = options or PredictOptions()
        self.options = options = options.replace(**fields) if fields else options
        self.person = options.person
        self.detector = create_detector(options.detector) if detector is None else detector
        self.face = FaceExtractor(face_weights)
        self.context_model = None
        sampling = dict(fps=options.fps, max_duration=options.max_duration, detect_every=options.detect_every)
        if options.model == "context":
            runtime.import_torch()  # the context model is torch: loaded here, with the run's thread count
            from .features.backbones import ContextExtractor
            from .pretrained import load_context_model

            self.context_model = load_context_model(context_weights)
            self.context = ContextExtractor(spatial=True)
            hide = bool(self.context_model.extraction.get("streams", {}).get("hide_face", True))
            self.context_model.check_extractors(self.face.signature, self.context.signature, hide)
            self.labels = self.context_model.labels
            self.config = StreamConfig(**sampling, hide_face=hide)
            self.model_name = f"{self.context_model.name}_expw"
        else:
            self.labels = list(self.face.spec.labels)
            self.config = StreamConfig(**sampling)
            self.model_name = "face_cnn_temporal_mean"
        self.times = StageTimes()

    def predict(
        self, path: str | Path, *, on_progress: Callable[[int, int | None], object] | None = None
    ) -> Prediction:
        """Predict one video or image file: the subject at the top level, every person in ``persons``.

        ``on_progress(done, total)`` is called after the faces of each sampled frame are found (``done`` sampled
        frames of about ``total``: :func:`~emocontext.video.pipeline.video_streams`).

        Raises:
            VideoDecodeError: the file is missing, empty, corrupt or has no video stream.
        """
        return self._predict(path, self._streams(path, on_progress))

    def _streams(self, path: str | Path, on_progress=None) -> Streams:
        return video_streams(
            path,
            self.detector,
            self.config,
            times=self.times,
            with_context=self.context_model is not None,
            persons=self.person == "all",
            on_progress=on_progress,
        )

    def _parts(self, streams: Streams) -> dict[int | None, Streams]:
        """The streams each answer is read from: one per person, or the whole clip (key None) without one."""
        if streams.persons:
            return {p.person_id: streams.for_person(p.person_id) for p in streams.persons}
        return {None: streams}

    def _predict(
        self, path: str | Path, streams: Streams, parts: dict | None = None, faces: dict | None = None
    ) -> Prediction:
        """The prediction of one file's ``streams``; ``parts`` (:meth:`_parts`) and ``faces`` (the face CNN's
        outputs per part), when the caller already has them."""
        with_context = self.context_model is not None
        parts = parts or self._parts(streams)
        faces = faces or {}
        n = len(streams)
        persons = []
        subject = None
        for person in streams.persons:
            frames, clip = self._read(parts[person.person_id], faces.get(person.person_id))
            present = person.face_present
            stamps = streams.timestamps[present]
            persons.append(
                PersonPrediction(
                    person_id=person.person_id,
                    subject=person.person_id == streams.subject_id,
                    label=clip[0],
                    confidence=clip[1],
                    probabilities=clip[2],
                    frames_with_face=int(present.sum()),
                    first_seen=round(float(stamps[0]), 4) if len(stamps) else None,
                    last_seen=round(float(stamps[-1]), 4) if len(stamps) else None,
                    frames=frames,
                )
            )
            if persons[-1].subject:
                subject = persons[-1]
        if subject is not None:
            frames, (label, conf, clip_probs) = (
                subject.frames,
                (subject.label, subject.confidence, subject.probabilities),
            )
        else:
            frames, (label, conf, clip_probs) = self._read(parts[None], faces.get(None))  # the scene, or nothing
        h, w = streams.frame_size
        return Prediction(
            path=str(path),
            label=label,
            confidence=conf,
            probabilities=clip_probs,
            num_frames=n,
            frames_with_face=int(streams.face_present.sum()),
            frames=frames,
            model=self.model_name,
            fps=self.config.fps,
            truncated=streams.truncated,
            frame_wh=(int(w), int(h)),
            context_box=[float(v) for v in self.config.context_region((h, w))] if with_context else None,
            persons=persons,
            subject_id=streams.subject_id,
        )

    def _face_outputs(self, parts: list[Streams]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(features, probabilities)`` of each part's face stream, from one CNN batch per crop size.

        The same numbers as one call per part (:func:`face_features`: each face is read alone; the batch
        only shares the call), so a folder of still faces is read at the CNN's batch speed.
        """
        t0 = time.perf_counter()
        by_shape: dict[tuple, list[int]] = {}
        for i, part in enumerate(parts):
            by_shape.setdefault(part.face.shape[1:], []).append(i)
        out: list = [None] * len(parts)
        for members in by_shape.values():
            crops = np.concatenate([parts[i].face for i in members])
            present = np.concatenate([parts[i].face_present for i in members])
            feats, probs, _ = face_features(self.face, crops, present, keep_maps=False)
            start = 0
            for i in members:
                stop = start + len(parts[i])
                out[i] = (feats[start:stop], probs[start:stop])
                start = stop
        self.times.add("face_cnn", time.perf_counter() - t0)
        return out

    def _read(self, streams: Streams, face: tuple | None = None) -> tuple[list[FramePrediction], tuple]:
        """Per-frame predictions of one person's streams and their clip emotion ``(label, confidence, probs)``.

        ``face``: the face CNN's ``(features, probabilities)`` of these streams when already computed.
        """
        with_context = self.context_model is not None
        n = len(streams)
        present = streams.face_present
        if face is None:
            # the same per-frame features as `emocontext extract` stores (one code path for training and prediction)
            face = self._face_outputs([streams])[0]
        feats, face_probs = face
        probs = face_probs if not with_context else np.zeros((n, len(self.labels)), np.float32)
        attention = fusion = None
        if with_context:
            probs, attention, fusion = self._context_model(streams, feats)
        valid = np.ones(n, bool) if with_context else present
        frames = [
            FramePrediction(
                timestamp=round(float(streams.timestamps[i]), 4),
                face_present=bool(present[i]),
                box=[round(float(v), 1) for v in streams.boxes[i]] if present[i] else None,
                probabilities=_as_dict(self.labels, probs[i]) if valid[i] else None,
                source=_source(with_context, bool(present[i])),
                attention=None if attention is None else np.round(attention[i], 5).tolist(),
                fusion_weights=None
                if fusion is None
                else {"face": round(float(fusion[i, 0]), 4), "context": round(float(fusion[i, 1]), 4)},
            )
            for i in range(n)
        ]
        if valid.any():
            clip = probs[valid].mean(0)
            k = int(clip.argmax())
            return frames, (self.labels[k], float(clip[k]), _as_dict(self.labels, clip))
        return frames, (None, None, {})

    def _context_model(self, streams, feats: np.ndarray, chunk: int = 32):
        """Frame probabilities ``(T, K)``, context attention ``(T, h, w)`` and fusion weights ``(T, 2)``."""
        torch = runtime.import_torch()

        n = len(streams)
        probs, attention, fusion = [], [], []
        for i in range(0, n, chunk):
            t0 = time.perf_counter()
            maps = self.context(streams.context[i : i + chunk])  # (m, C, h, w)
            t1 = time.perf_counter()
            self.times.add("context_cnn", t1 - t0)
            m = len(maps)
            batch = {
                "face": torch.from_numpy(feats[i : i + m])[None],
                "context": torch.from_numpy(maps)[None],
                "mask": torch.ones(1, m, dtype=torch.bool),
                "face_mask": torch.from_numpy(streams.face_present[i : i + m])[None],
            }
            p, att, fw = self.context_model.frame_outputs(batch)
            probs.append(p)
            h, w = maps.shape[-2:]
            attention.append(att if att is not None else np.full((m, h, w), 1.0 / (h * w), np.float32))
            fusion.append(fw if fw is not None else np.tile([0.5, 0.5], (m, 1)).astype(np.float32))
            self.times.add("context_model", time.perf_counter() - t1)
        return np.concatenate(probs), np.concatenate(attention), np.concatenate(fusion)

    def predict_many(
        self,
        paths: Iterable[str | Path],
        *,
        workers: int = 1,
        on_progress: Callable[[int, int | None], object] | None = None,
    ) -> Iterator[tuple[str, Prediction | None, str | None]]:
        """Yield ``(path, prediction, None)`` or ``(path, None, message)`` per file, in input order; errors never
        stop the loop.

        ``workers > 1`` analyses that many files at once in threads of this process, which share the
        loaded models (decoding, OpenCV and torch release the GIL). On 2 cores, 2 workers with one torch
        thread each ran the 10 clips of ``benchmarks/scale_speed.md`` 1.4x faster than one file at a time
        with 2 torch threads. Results are those of a one-worker run with the same torch thread count.
        At most ``workers + 1`` files are in flight, so memory stays bounded on long lists.
        ``on_progress(done, total)``: the sampled frames of the file being read (:meth:`predict`); with one
        worker only (several files at once have no single count), ignored otherwise.
        """
        on_frames = on_progress if workers <= 1 else None

        def one(path) -> list[tuple[str, Prediction | None, str | None]]:
            try:
                return [(str(path), self.predict(path, on_progress=on_frames), None)]
            except EmoContextError as e:
                return [(str(path), None, str(e))]

        units = ((self._predict_images, u) if isinstance(u, list) else (one, u) for u in self._units(paths))
        if workers <= 1:
            for run, unit in units:
                yield from run(unit)
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="emocontext-predict") as pool:
            pending: deque = deque()
            try:
                for run, unit in units:
                    pending.append(pool.submit(run, unit))
                    if len(pending) > workers:
                        yield from pending.popleft().result()
                while pending:
                    yield from pending.popleft().result()
            finally:
                for future in pending:  # the consumer stopped early: files not started are not analysed
                    future.cancel()

    #: Still images read in one face CNN batch when the detector gives a fixed box (``detector="none"``). On the
    #: 981 CK+ crops (2 cores, 2 files at once): batch 1 20.2 s / 336 MiB peak, 4 12.2 s / 375 MiB, 8 8.2-10.6 s /
    #: 415 MiB, 16 9.1 s / 518 MiB, 32 9.8 s / 657 MiB (larger batches allocate more than they gain). With the
    #: int8 graph in ONNX Runtime (idle machine): 8, 32 and 64 all 2.3-2.4 s, at 210, 475 and 805 MiB.
    IMAGE_BATCH = 8

    def _units(self, paths: Iterable[str | Path]) -> Iterator[str | Path | list]:
        """The work of :meth:`predict_many`: a file, or a list of consecutive still images read together.

        Only a fixed-box detector (``"none"``: the image is the face) makes a still image's work the face CNN
        alone, where one batch for many files pays; a searching detector works per file anyway.
        """
        from .video.decode import is_image

        if not getattr(self.detector, "fixed_box", False):
            yield from paths
            return
        batch: list = []
        for path in paths:
            if is_image(path):
                batch.append(path)
                if len(batch) == self.IMAGE_BATCH:
                    yield batch
                    batch = []
                continue
            if batch:
                yield batch
                batch = []
            yield path
        if batch:
            yield batch

    def _predict_images(self, paths: list) -> list[tuple[str, Prediction | None, str | None]]:
        """:meth:`predict` of several still images, their faces through the face CNN in one batch."""
        read: list = []
        for path in paths:
            try:
                read.append((path, self._streams(path), None))
            except EmoContextError as e:
                read.append((path, None, str(e)))
        parts = {i: self._parts(streams) for i, (_, streams, _) in enumerate(read) if streams is not None}
        flat = [(i, key) for i, by_key in parts.items() for key in by_key]
        outputs = self._face_outputs([parts[i][key] for i, key in flat])
        faces: dict[int, dict] = {i: {} for i in parts}
        for (i, key), out in zip(flat, outputs, strict=True):
            faces[i][key] = out
        results = []
        for i, (path, streams, problem) in enumerate(read):
            if streams is None:
                results.append((str(path), None, problem))
                continue
            try:
                results.append((str(path), self._predict(path, streams, parts[i], faces[i]), None))
            except EmoContextError as e:
                results.append((str(path), None, str(e)))
        return results


def _source(with_context: bool, face: bool) -> str | None:
    if with_context:
        return "face+context" if face else "context"
    return "face" if face else None


def _plain(value):
    """``dataclasses.asdict`` without its deep copy of every number and string (immutable, so shared): a tenth
    of the time of a run over many still images went there. Lists and tuples keep their type."""
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _as_dict(labels, p: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(labels, p, strict=True)}


def predict(path: str | Path, options: PredictOptions | None = None, **fields) -> Prediction:
    """Predict one video or image file: ``emocontext.predict("clip.mp4")``.

    ``options`` and ``fields`` go to :class:`Predictor` (``emocontext.predict(path, model="context")``).
    For many files build one :class:`Predictor` and call :meth:`Predictor.predict`, so the models load once.

    Raises:
        OptionError: a bad option. VideoDecodeError: the file cannot be read. EmoContextError: missing weights.
    """
    return Predictor(options, **fields).predict(path)
