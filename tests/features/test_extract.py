"""Extraction over a manifest: batched, resumable, atomic, refuses to mix extractors."""

from __future__ import annotations

import numpy as np
import pytest

from emocontext.data.manifest import ClipEntry, Manifest
from emocontext.errors import IncompatibleFeaturesError
from emocontext.features.extract import Extractors, extract
from emocontext.features.store import FeatureStore
from emocontext.video.pipeline import StreamConfig
from tests.video.test_pipeline import SquareDetector, square_video


@pytest.fixture(scope="module")
def extractors():
    return Extractors.build(detector=SquareDetector())


@pytest.fixture
def manifest(tmp_path):
    good = [square_video(tmp_path / f"v{i}.mp4", n=4 + i) for i in range(3)]
    (tmp_path / "broken.mp4").write_text("not a video")
    paths = [*good[:2], tmp_path / "broken.mp4", good[2]]
    return Manifest([ClipEntry(str(p), "happy", "train") for p in paths])


def test_extract_records_and_failures(tmp_path, manifest, extractors):
    summary = extract(manifest, tmp_path / "store", extractors, progress=False)
    assert summary.done == 3 and len(summary.failed) == 1 and "broken.mp4" in summary.failed[0][1]
    store = FeatureStore(tmp_path / "store")
    r = store.get(manifest[1].clip_id)
    assert r.face.shape == (5, 1280) and r.context.shape == (5, 1280) and r.face_map.shape == (5, 1280, 2, 2)
    assert r.face_present.all() and np.allclose(r.face_probs.sum(1), 1, atol=1e-2)
    assert r.meta["label"] == "happy" and r.meta["path"] == manifest[1].path
    assert len((tmp_path / "store" / "failures.jsonl").read_text().splitlines()) == 1
    again = extract(manifest, tmp_path / "store", extractors, progress=False)
    assert again.skipped == 3 and again.done == 0 and len(again.failed) == 1


def test_interrupted_extraction_resumes_without_corrupt_records(tmp_path, manifest, extractors, monkeypatch):
    calls = {"n": 0}
    real_put = FeatureStore.put

    def put_then_die(self, clip_id, record):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed while writing the second record
        real_put(self, clip_id, record)

    monkeypatch.setattr(FeatureStore, "put", put_then_die)
    with pytest.raises(KeyboardInterrupt):
        extract(manifest, tmp_path / "store", extractors, progress=False)
    monkeypatch.setattr(FeatureStore, "put", real_put)
    records = list((tmp_path / "store" / "records").iterdir())
    assert len(records) == 1 and not any(p.name.endswith(".tmp") for p in records)
    summary = extract(manifest, tmp_path / "store", extractors, progress=False)
    assert summary.skipped == 1 and summary.done == 2


def test_store_refuses_other_settings(tmp_path, manifest, extractors):
    extract(Manifest(manifest.entries[:1]), tmp_path / "store", extractors, progress=False)
    other = Extractors(extractors.detector, extractors.face, extractors.context, StreamConfig(fps=10))
    with pytest.raises(IncompatibleFeaturesError, match="fps"):
        extract(manifest, tmp_path / "store", other, progress=False)


def test_predict_api_on_a_synthetic_face(tmp_path):
    import emocontext

    path = square_video(tmp_path / "v.mp4")
    p = emocontext.predict(path, detector=SquareDetector())
    assert p.num_frames == 10 and p.frames_with_face == 6 and not p.no_face
    assert p.label in p.probabilities and abs(sum(p.probabilities.values()) - 1) < 1e-2
    assert p.frames[7].probabilities is None and p.frames[0].box is not None
    d = p.to_dict()
    assert d["no_face"] is False and len(d["frames"]) == 10


def test_dataset_face_boxes_replace_detection(tmp_path):
    """ExpW-style data: the labelled boxes are used (no detector), two faces of one image are two clips."""
    import cv2
    from typer.testing import CliRunner

    from emocontext.cli import app
    from emocontext.data.adapters import FaceEntry
    from emocontext.data.datasets import FeatureSequenceDataset
    from emocontext.labels import EKMAN7
    from emocontext.train import manifest_from_store

    root = tmp_path / "expw"
    (root / "images").mkdir(parents=True)
    img = np.full((120, 200, 3), 90, np.uint8)
    cv2.imwrite(str(root / "images" / "a.jpg"), img)
    (root / "labels.csv").write_text(
        "image,face_id,x1,y1,x2,y2,label,face_confidence\na.jpg,0,10,10,50,50,happy,9.0\na.jpg,1,120,20,170,70,sad,8.0\n"
    )
    (root / "splits.csv").write_text("image,split\na.jpg,train\n")
    r = CliRunner().invoke(app, ["extract", str(root), "--dataset", "expw", "-o", str(tmp_path / "s"), "-q"])
    assert r.exit_code == 0, r.output
    store = FeatureStore(tmp_path / "s")
    assert store.signature["detector"] == "mtcnn"  # the default, not used for boxed faces
    m = manifest_from_store(store, EKMAN7)
    assert len(m) == 2 and all(isinstance(e, FaceEntry) for e in m)
    boxes = {e.face_id: e.box for e in m}
    assert boxes[1] == (120.0, 20.0, 170.0, 70.0)
    rec = store.get(m[1].clip_id)
    assert rec.face_present.all()
    np.testing.assert_allclose(rec.boxes[0], boxes[m[1].face_id])
    ds = FeatureSequenceDataset(store, m, EKMAN7)
    assert sorted(ds.labels.tolist()) == [EKMAN7.index("happy"), EKMAN7.index("sad")]
