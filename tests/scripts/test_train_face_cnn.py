"""``scripts/train_face_cnn.py``: the teachers' probabilities, cached one teacher at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.scripts import load_script


@pytest.fixture(scope="module")
def tfc():
    return load_script("train_face_cnn")


def _teacher(tfc, path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    net = tfc.FaceExpressionCNN(num_classes=len(tfc.EKMAN8), trunk="efficientnet_lite0", pretrained_trunk=False)
    torch.save({"model": net.state_dict(), "trunk": "efficientnet_lite0"}, path)
    return path


@pytest.fixture(scope="module")
def teachers(tfc, tmp_path_factory):
    d = tmp_path_factory.mktemp("teachers")
    return [_teacher(tfc, d / f"t{i}.pt", seed=i) for i in range(3)]


@pytest.fixture
def counted(tfc, monkeypatch):
    """The weights files the networks were built from, in order (each build is one teacher computed)."""
    built, real = [], tfc.inference_net
    monkeypatch.setattr(tfc, "inference_net", lambda path, *a: built.append(Path(path)) or real(path, *a))
    return built


FACES = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)


def test_mean_of_each_teacher_alone(tfc, teachers, counted, tmp_path):
    both = tfc.teacher_probs(FACES, [str(t) for t in teachers[:2]], tmp_path / "a", 48)
    alone = [tfc.teacher_probs(FACES, [str(t)], tmp_path / "b", 48) for t in teachers[:2]]
    assert both.shape == (5, 8) and both.dtype == np.float32
    np.testing.assert_allclose(both.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(both, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-7)
    assert not np.allclose(alone[0], alone[1])  # two different networks: the mean is not one of them


def test_a_new_list_computes_only_the_new_teacher(tfc, teachers, counted, tmp_path):
    tfc.teacher_probs(FACES, [str(t) for t in teachers[:2]], tmp_path, 48)
    assert counted == teachers[:2]
    counted.clear()
    three = tfc.teacher_probs(FACES, [str(t) for t in teachers], tmp_path, 48)
    assert counted == [teachers[2]]
    counted.clear()
    assert np.array_equal(tfc.teacher_probs(FACES, [str(t) for t in teachers], tmp_path, 48), three)
    assert counted == []
    assert not [f for f in tmp_path.iterdir() if "tmp" in f.name]  # written atomically: no temporary file left


def test_keyed_by_contents_side_and_faces(tfc, teachers, counted, tmp_path):
    tfc.teacher_probs(FACES, [str(teachers[0])], tmp_path, 48)
    tfc.teacher_probs(FACES, [f"{teachers[0]}@56"], tmp_path, 48)  # another input side
    tfc.teacher_probs(FACES[:4], [str(teachers[0])], tmp_path, 48)  # other faces
    assert counted == [teachers[0]] * 3
    counted.clear()
    moved = tmp_path / "renamed.pt"  # the same contents under another name: read from the cache
    moved.write_bytes(teachers[0].read_bytes())
    tfc.teacher_probs(FACES, [str(moved)], tmp_path, 48)
    assert counted == []
    _teacher(tfc, moved, seed=9)  # rewritten in place: read again
    tfc.teacher_probs(FACES, [str(moved)], tmp_path, 48)
    assert counted == [moved]


@pytest.mark.parametrize(
    ("device", "message"), [("cuda", "sees no CUDA device"), ("mps", "cpu or cuda"), ("gpu", "cpu or cuda")]
)
def test_a_device_it_cannot_use_is_refused_before_any_work(tfc, tmp_path, monkeypatch, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "run"
    monkeypatch.setattr("sys.argv", ["train_face_cnn.py", "--out", str(out), "--device", device])
    with pytest.raises(SystemExit, match=message):
        tfc.main()
    assert not out.exists()  # nothing written, no data read
