"""inference: Predictor and emocontext.predict, the context model's explanations, refusing mismatched weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocontext.errors import EmoContextError, IncompatibleFeaturesError
from emocontext.features.backbones import ContextExtractor
from emocontext.features.face import FaceExtractor
from emocontext.inference import Predictor
from emocontext.labels import EKMAN7
from emocontext.models import create_model
from emocontext.options import OptionError, PredictOptions
from emocontext.pretrained import export_context_model, load_context_model
from emocontext.video.faces import Detection, GivenBoxDetector
from emocontext.video.pipeline import StreamConfig
from tests.conftest import encode_video, numbered_frames


class FaceInFirstHalf:
    """A face at a fixed box in the first 5 frames only.

    Scripted detectors ignore the pixels, so the tests that use them detect on every frame
    (``detect_every=1``): a search near the last box would hand them a window and get the same box back.
    """

    name = "first_half"

    def __init__(self):
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return [Detection((20.0, 10.0, 60.0, 50.0), 0.99)] if self.calls <= 5 else []


@pytest.fixture(scope="module")
def extractors():
    return FaceExtractor(), ContextExtractor(spatial=True)


def _extraction(extractors, *, hide_face=True, face_sig=None):
    face, context = extractors
    return {
        "face": face_sig or face.signature,
        "context": context.signature,
        "detector": "mtcnn",
        "streams": StreamConfig(hide_face=hide_face).signature(),
    }


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, extractors):
    torch.manual_seed(0)
    dims = {"face_dim": 1280, "context_dim": 1280}
    net = create_model("caer_net_features", num_classes=len(EKMAN7), **dims)
    ck = tmp_path_factory.mktemp("ck") / "best.pt"
    meta = {"config": {"model": "caer_net_features", "model_kwargs": {}}, "dims": dims, "labels": list(EKMAN7.names)}
    torch.save({"model": net.state_dict(), "meta": meta}, ck)
    return export_context_model(ck, _extraction(extractors), ck.parent / "context.pt", card={"note": "test"})


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return encode_video(tmp_path_factory.mktemp("v") / "clip.mp4", numbered_frames(10), fps=5)


def test_export_round_trip_is_float16_and_loads(model_file):
    blob = torch.load(model_file, weights_only=False)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    m = load_context_model(model_file)
    assert m.name == "caer_net_features" and m.labels == EKMAN7.names and m.card == {"note": "test"}


def test_context_model_explains_every_frame_and_falls_back_to_context(model_file, video):
    p = Predictor(model="context", detector=FaceInFirstHalf(), detect_every=1, context_weights=model_file).predict(
        video
    )
    assert p.num_frames == 10 and p.frames_with_face == 5
    assert p.label in EKMAN7.names and abs(sum(p.probabilities.values()) - 1) < 1e-3
    w, h = p.frame_wh
    assert p.context_box == [float((w - h) // 2), 0.0, float((w - h) // 2 + h), float(h)]
    for i, f in enumerate(p.frames):
        att = np.array(f.attention)
        assert att.shape == (7, 7) and abs(att.sum() - 1) < 1e-3
        assert abs(sum(f.fusion_weights.values()) - 1) < 1e-3
        assert f.probabilities is not None
        if i < 5:
            assert f.source == "face+context" and f.box is not None and 0 < f.fusion_weights["face"] < 1
        else:
            assert f.source == "context" and f.box is None and f.fusion_weights["face"] == 0
    # the clip is the mean of the frame probabilities
    mean = np.mean([[f.probabilities[k] for k in EKMAN7.names] for f in p.frames], 0)
    assert np.allclose(mean, [p.probabilities[k] for k in EKMAN7.names], atol=1e-3)


def test_context_model_answers_without_any_face(model_file, video):
    p = Predictor(model="context", detector=FaceInFirstHalf(), detect_every=1, context_weights=model_file)
    p.detector.calls = 100  # never a face
    pred = p.predict(video)
    assert pred.no_face and pred.label is not None
    assert all(f.source == "context" for f in pred.frames)


def test_face_model_has_no_context_explanations(video):
    pred = Predictor(model="face", detector=GivenBoxDetector((20, 10, 60, 50))).predict(video)
    assert pred.model == "face_cnn_temporal_mean" and pred.context_box is None
    assert all(f.source == "face" and f.attention is None and f.fusion_weights is None for f in pred.frames)


def test_mismatched_extractors_are_refused(tmp_path, extractors, model_file):
    ck = tmp_path / "best.pt"
    blob = torch.load(model_file, weights_only=False)
    meta = {"config": {"model": blob["model"], "model_kwargs": {}}, "dims": blob["dims"], "labels": blob["labels"]}
    torch.save({"model": {k: v.float() for k, v in blob["state_dict"].items()}, "meta": meta}, ck)
    other_face = {**extractors[0].signature, "weights_sha256": "0" * 16}
    bad = export_context_model(ck, _extraction(extractors, face_sig=other_face), tmp_path / "bad.pt")
    with pytest.raises(IncompatibleFeaturesError, match="face CNN"):
        Predictor(model="context", context_weights=bad, detector=FaceInFirstHalf(), detect_every=1)
    not_hidden = export_context_model(ck, _extraction(extractors, hide_face=False), tmp_path / "nh.pt")
    # a model trained without hiding the face is used without hiding it (its own setting wins)
    assert (
        Predictor(
            model="context", context_weights=not_hidden, detector=FaceInFirstHalf(), detect_every=1
        ).config.hide_face
        is False
    )


def test_bad_model_files(tmp_path):
    with pytest.raises(EmoContextError, match="no context model file"):
        load_context_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(EmoContextError, match="not a readable model file"):
        load_context_model(tmp_path / "junk.pt")
    with pytest.raises(EmoContextError, match="unknown model"):
        Predictor(model="scene")


def test_predictor_takes_the_options_record(video):
    """One record in: the stream settings and the detector come from it; keyword options replace its fields."""
    options = PredictOptions(model="face", detector="none", fps=2.0, max_duration=1.0, detect_every=3)
    p = Predictor(options)
    assert p.options == options and p.detector.name == "none"
    assert (p.config.fps, p.config.max_duration, p.config.detect_every) == (2.0, 1.0, 3)
    q = Predictor(options, fps=4.0, detector=FaceInFirstHalf(), detect_every=1)
    assert q.options == options.replace(fps=4.0, detect_every=1) and isinstance(q.detector, FaceInFirstHalf)
    assert Predictor(options, detector="haar").options.detector == "haar"  # a name is an option
    pred = p.predict(video)
    assert pred.fps == 2.0 and pred.num_frames == 2  # 1 s at 2 fps
    with pytest.raises(OptionError, match="fps must be in"):
        Predictor(options, fps=0)


def test_shipped_context_model_matches_the_shipped_extractors(extractors, video, monkeypatch):
    """The ExpW model in the package pairs with this install's face CNN and context CNN (re-export it
    with scripts/export_context_model.py after retraining either), answers, and is not the default."""
    shipped = load_context_model()
    shipped.check_extractors(extractors[0].signature, extractors[1].signature, hide_face=True)
    assert shipped.labels == EKMAN7.names
    assert shipped.card["test"]["accuracy_no_face"] > 1 / len(EKMAN7)  # its context-only path was trained
    # never below the face-only model it mixes in, on ExpW val and test (scripts/export_context_model.py)
    for split in ("val", "test"):
        assert shipped.card[split]["accuracy_shipped"] >= shipped.card[split]["accuracy_face_only"]
    assert shipped.face_model is not None and 0 <= shipped.face_weight <= 1
    monkeypatch.delenv("EMOCONTEXT_CONTEXT_WEIGHTS", raising=False)
    assert Predictor(detector=FaceInFirstHalf(), detect_every=1).model_name == "face_cnn_temporal_mean"
    pred = Predictor(model="context", detector=FaceInFirstHalf(), detect_every=1).predict(video)
    assert pred.model == "caer_net_features_expw" and pred.label in EKMAN7.names
    assert {f.source for f in pred.frames} == {"face+context", "context"}


# ------------------------------------------------------------------ every person, one code path, --detector none

from tests.video.test_persons import TwoFaces  # noqa: E402


@pytest.fixture(scope="module")
def two_face_clip(tmp_path_factory):
    frames = np.zeros((10, 64, 96, 3), np.uint8)
    frames[:, :, :48] = (200, 60, 60)
    frames[:, :, 48:] = (60, 60, 200)
    return encode_video(tmp_path_factory.mktemp("v") / "two.mp4", frames, fps=5)


def test_every_person_gets_their_own_emotion_and_the_top_level_stays_the_subjects(two_face_clip):
    p = Predictor(model="face", detector=TwoFaces(), detect_every=1).predict(two_face_clip)
    assert [q.person_id for q in p.persons] == [1, 2] and p.subject_id == 1
    assert [q.subject for q in p.persons] == [True, False]
    one, two = p.persons
    assert (one.frames_with_face, two.frames_with_face) == (10, 6) and two.first_seen == pytest.approx(0.8)
    assert one.label == p.label and one.probabilities == p.probabilities and p.frames == one.frames
    assert two.label is not None and two.probabilities != one.probabilities  # read from its own (blue) face
    assert [f.face_present for f in two.frames] == [False] * 4 + [True] * 6
    d = p.to_dict()
    assert d["status"] == "ok" and [q["person_id"] for q in d["persons"]] == [1, 2]
    assert "frames" not in p.to_dict(frames=False)["persons"][1]
    subject_only = Predictor(model="face", detector=TwoFaces(), detect_every=1, person="subject").predict(two_face_clip)
    assert [q.person_id for q in subject_only.persons] == [1] and subject_only.label == p.label


def test_frame_rows_and_dataframe(two_face_clip, monkeypatch):
    import sys

    p = Predictor(model="face", detector=TwoFaces(), detect_every=1).predict(two_face_clip)
    rows = list(p.frame_rows())
    assert len(rows) == 20 and {r["person_id"] for r in rows} == {1, 2}
    row = next(r for r in rows if r["person_id"] == 2 and r["face_present"])
    assert row["x1"] == pytest.approx(56.0) and sum(row[f"p_{k}"] for k in p.labels) == pytest.approx(1, abs=1e-3)
    df = p.to_dataframe()
    assert df.shape[0] == 20 and {"timestamp", "person_id", "x1", "p_happy"} <= set(df.columns)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        p.to_dataframe()


def test_prediction_and_extraction_share_the_face_features(two_face_clip):
    """One code path: the probabilities predict reports are the ones extract stores (item 2 of issue 13)."""
    from emocontext.data.manifest import ClipEntry
    from emocontext.features.extract import Extractors, clip_record

    predictor = Predictor(model="face", detector=TwoFaces(), detect_every=1, person="subject")
    p = predictor.predict(two_face_clip)
    ex = Extractors(detector=TwoFaces(), face=predictor.face, context=ContextExtractor())
    record = clip_record(ex.streams(ClipEntry(str(two_face_clip))), ex)
    got = np.array([[f.probabilities[k] for k in p.labels] for f in p.frames])
    np.testing.assert_allclose(got, record.face_probs, atol=1e-4)


def test_context_model_reads_every_person_with_their_own_face_hidden(model_file, two_face_clip):
    p = Predictor(model="context", detector=TwoFaces(), detect_every=1, context_weights=model_file).predict(
        two_face_clip
    )
    assert len(p.persons) == 2
    one, two = p.persons
    # person 2 is absent in the first 4 frames: read from the scene there, like a file without a face
    assert [f.source for f in two.frames[:5]] == ["context"] * 4 + ["face+context"]
    assert all(f.probabilities is not None for f in two.frames) and two.label in EKMAN7.names


def test_emocontext_predict_is_a_plain_function(video):
    """The facade: emocontext.predict is the function (the module is emocontext.inference), loaded on first use."""
    import inspect
    import subprocess
    import sys

    import emocontext
    from emocontext import inference

    assert inspect.isfunction(emocontext.predict) and emocontext.predict is inference.predict
    assert emocontext.Predictor is Predictor and emocontext.PredictOptions is PredictOptions
    p = emocontext.predict(video, PredictOptions(model="face", detect_every=1), detector=FaceInFirstHalf())
    assert p.frames_with_face == 5 and p.model == "face_cnn_temporal_mean"
    code = "import sys, emocontext; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def _whole_frame_labels(images):
    face = FaceExtractor()
    _, probs = face(np.stack(images))
    return [face.spec.labels[i] for i in probs.argmax(1)], probs


def _cli_none_jsonl(folder, tmp_path):
    import json

    from typer.testing import CliRunner

    from emocontext.cli import app

    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["predict", str(folder), "--detector", "none", "--jsonl", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return {json.loads(line)["path"]: json.loads(line) for line in out.read_text().splitlines()}


def test_detector_none_gives_what_the_face_cnn_gives_the_images(tmp_path):
    import cv2

    rng = np.random.default_rng(3)
    folder = tmp_path / "faces"
    folder.mkdir()
    images = []
    for i in range(4):
        img = cv2.GaussianBlur(rng.integers(0, 255, (48, 48), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(folder / f"{i}.png"), img)
        images.append(cv2.cvtColor(cv2.imread(str(folder / f"{i}.png")), cv2.COLOR_BGR2RGB))
    labels, probs = _whole_frame_labels(images)
    got = _cli_none_jsonl(folder, tmp_path)
    for i, (label, pr) in enumerate(zip(labels, probs, strict=True)):
        d = got[str(folder / f"{i}.png")]  # the path as given
        assert d["label"] == label and d["frames_with_face"] == 1 and d["frames"][0]["box"] == [0, 0, 48, 48]
        np.testing.assert_allclose(list(d["probabilities"].values()), pr, atol=1e-3)


@pytest.mark.realdata
def test_detector_none_on_real_fer2013_faces(tmp_path):
    import shutil

    import cv2

    from tests.conftest import data_path

    root = data_path("fer2013", "test")
    folder = tmp_path / "fer"
    folder.mkdir()
    images, names = [], []
    for cls in sorted(d.name for d in root.iterdir() if d.is_dir()):
        for src in sorted((root / cls).glob("*.jpg"))[:2]:
            dst = folder / f"{cls}_{src.name}"
            shutil.copy(src, dst)
            names.append(dst)
            images.append(cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB))
    labels, _ = _whole_frame_labels(images)
    got = _cli_none_jsonl(folder, tmp_path)
    assert [got[str(n)]["label"] for n in names] == labels


@pytest.mark.realdata
def test_multi_face_photo_every_face_is_a_person():
    from emocontext.video.decode import read_frames
    from emocontext.video.faces import create_detector
    from tests.conftest import data_path

    path = data_path("images", "multi_face.jpg")
    detector = create_detector("mtcnn")
    found = detector.detect(read_frames(path).frames[0])
    p = Predictor(model="face", detector=detector).predict(path)
    assert len(found) >= 4 and len(p.persons) == len(found)
    assert all(q.label in p.labels and q.frames_with_face == 1 for q in p.persons)
    assert sum(q.subject for q in p.persons) == 1 and p.label == next(q.label for q in p.persons if q.subject)
    xs = [q.frames[0].box[0] for q in p.persons]
    assert xs == sorted(xs)  # one frame: ids from left to right


def _crossing_clip(path):
    """Two real faces (the shipped clip's face, and its mirror image tinted) walking past each other."""

    from emocontext.samples import sample_video
    from emocontext.video.decode import read_frames
    from emocontext.video.faces import create_detector
    from emocontext.video.streams import face_crop

    frame = read_frames(sample_video(), max_duration=0.2).frames[0]
    box = max(create_detector("mtcnn").detect(frame), key=lambda d: d.area).box
    a = face_crop(frame, box, size=84, margin=0.3)
    b = np.ascontiguousarray(a[:, ::-1, ::-1])  # mirrored, red and blue swapped: another person
    frames = []
    n = 30
    for t in range(n):
        img = np.full((220, 340, 3), 120, np.uint8)
        xa = int(round(8 + (340 - 84 - 16) * t / (n - 1)))
        xb = int(round(340 - 84 - 8 - (340 - 84 - 16) * t / (n - 1)))
        img[70 : 70 + 84, xb : xb + 84] = b  # behind
        img[50 : 50 + 84, xa : xa + 84] = a  # in front
        frames.append(img)
    return encode_video(path, np.stack(frames), fps=10)


def test_two_people_crossing_keep_their_ids(tmp_path):
    clip = _crossing_clip(tmp_path / "crossing.mp4")
    p = Predictor(model="face").predict(clip)
    main = sorted(p.persons, key=lambda q: -q.frames_with_face)[:2]
    assert len(main) == 2 and all(q.frames_with_face >= 10 for q in main), [q.frames_with_face for q in p.persons]
    directions = []
    for q in main:
        xs = [f.box[0] for f in q.frames if f.face_present]
        steps = np.diff(xs)
        assert (steps > -6).all() or (steps < 6).all(), xs  # each person keeps moving one way: ids not swapped
        directions.append(np.sign(xs[-1] - xs[0]))
    assert sorted(directions) == [-1, 1]
    assert all(q.label is not None for q in main)


def test_files_at_once_give_the_same_results_in_input_order(tmp_path):
    """predict_many with 2 worker threads = one file at a time (same torch threads), errors in place."""
    from emocontext.samples import sample_video

    clip = sample_video()
    files = [clip, tmp_path / "missing.mp4", _crossing_clip(tmp_path / "crossing.mp4"), clip]
    p = Predictor(model="face")
    one = list(p.predict_many(files))
    two = list(p.predict_many(files, workers=2))
    assert [path for path, _, _ in two] == [str(f) for f in files]
    assert two[1][1] is None and "missing.mp4" in two[1][2]
    for (_, a, ea), (_, b, eb) in zip(one, two, strict=True):
        assert ea == eb
        if a is not None:
            assert a.to_dict() == b.to_dict()
    stopped = p.predict_many(iter([clip] * 50), workers=2)
    assert next(stopped)[1].label is not None
    stopped.close()  # the files not started are cancelled: close returns at once


def test_local_workers_divide_the_cores(monkeypatch):
    from emocontext.cli.common import local_workers

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert local_workers(None, None, 100) == (4, 2)
    assert local_workers(None, None, 1) == (1, None)  # one file: all cores to it
    assert local_workers(2, 3, 100) == (2, 3)  # what the user says wins
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert local_workers(None, None, 10) == (2, 1)


def test_prediction_reads_short_and_says_width_by_height(monkeypatch):
    import builtins
    import json

    from emocontext.inference import FramePrediction, PersonPrediction, Prediction

    frames = [FramePrediction(i / 5, True, [1.0, 2.0, 3.0, 4.0], {"happy": 0.9, "sad": 0.1}) for i in range(500)]
    person = PersonPrediction(1, True, "happy", 0.9, {"happy": 0.9, "sad": 0.1}, 500, 0.0, 99.8, frames)
    p = Prediction("clip.mp4", "happy", 0.9, {"happy": 0.9, "sad": 0.1}, 500, 500, frames, frame_wh=(640, 360))
    p.persons = [person]
    assert repr(p) == (
        "Prediction('clip.mp4': 'happy' 0.90, 500/500 frames with a face, 1 person, model 'face_cnn_temporal_mean')"
    )
    assert repr(person) == "PersonPrediction(1, subject: 'happy' 0.90, 500 frames with a face)"
    d = json.loads(json.dumps(p.to_dict()))
    assert d["frame_wh"] == [640, 360] and d["frame_size"] == [360, 640]  # frame_size: schema 1, (height, width)
    with pytest.warns(DeprecationWarning, match="frame_wh"):
        assert p.frame_size == (360, 640)
    real_import = builtins.__import__

    def no_pandas(name, *a, **kw):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="pip install pandas .*frame_rows"):
        p.to_dataframe()


def test_still_faces_are_read_in_one_batch_with_the_answers_of_one_at_a_time(tmp_path, monkeypatch):
    """detector none: consecutive still images share face CNN calls (one per crop size), the answers unchanged;
    a video and a broken file in between keep their places."""
    import cv2

    from emocontext.features.face import FaceExtractor

    rng = np.random.default_rng(5)
    files = []
    for i, side in enumerate([48, 48, 64, 48, 48]):
        img = cv2.GaussianBlur(rng.integers(0, 255, (side, side), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        files.append(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    files.insert(2, tmp_path / "broken.png")
    files.insert(4, _crossing_clip(tmp_path / "crossing.mp4"))
    p = Predictor(model="face", detector="none")
    one_by_one = [p.predict(f) if f.name != "broken.png" else None for f in files]
    calls = []
    real_run = FaceExtractor.run
    monkeypatch.setattr(
        FaceExtractor, "run", lambda self, crops, **kw: calls.append(len(crops)) or real_run(self, crops, **kw)
    )
    for workers in (1, 2):
        calls.clear()
        got = list(p.predict_many(files, workers=workers))
        assert [path for path, _, _ in got] == [str(f) for f in files]
        assert got[2][1] is None and got[2][2]  # the broken file: its error, in its place
        for (_, pred, _), ref in zip(got, one_by_one, strict=True):
            if ref is not None:
                assert pred.label == ref.label
                np.testing.assert_allclose(
                    list(pred.probabilities.values()), list(ref.probabilities.values()), atol=1e-5
                )
        # [0, 1, broken, 2]: one call for the two 48 px faces, one for the 64 px one; the video its own call
        # (its sampled frames); [3, 4]: one call
        assert sorted(calls) == sorted([2, 1, one_by_one[4].frames_with_face, 2])
