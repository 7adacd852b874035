"""Frozen extractors: the shipped face CNN's outputs, refusing weights of another architecture, real accuracy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from emocontext.errors import WeightsError
from emocontext.features.backbones import (
    FACE_CNN,
    FaceExpressionCNN,
    FaceExtractor,
    face_weights_path,
    fold_batch_norms,
)
from emocontext.labels import EKMAN7, EKMAN8
from tests.conftest import data_path


def test_shipped_face_cnn_shapes_and_probabilities():
    ex = FaceExtractor()
    crops = np.random.default_rng(0).integers(0, 255, (5, 48, 48, 3), dtype=np.uint8)
    feats, probs, maps = ex.run(crops)
    assert feats.shape == (5, FACE_CNN.feature_dim) and probs.shape == (5, len(EKMAN8))
    assert maps.shape == (5, FACE_CNN.feature_dim, *ex.map_size) and ex.map_size == (5, 5)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    # the pooled feature is the mean of the map (one network, two views)
    np.testing.assert_allclose(maps.mean((2, 3)), feats, rtol=1e-4, atol=1e-4)
    # no crops: empty arrays of the right shapes
    f0, p0, m0 = ex.run(np.zeros((0, 48, 48, 3), np.uint8))
    assert f0.shape == (0, 1280) and p0.shape == (0, 8) and m0.shape == (0, 1280, 5, 5)


def test_weights_of_another_architecture_version_are_refused(tmp_path):
    blob = torch.load(face_weights_path(), weights_only=True)
    old = tmp_path / "v1.pt"
    torch.save({**blob, "spec": {**blob["spec"], "version": "1"}}, old)
    with pytest.raises(WeightsError, match="v1"):
        FaceExtractor(old)
    with pytest.raises(WeightsError, match="not found"):
        FaceExtractor(tmp_path / "missing.pt")


def test_seven_class_weights_of_version_3_are_refused_not_mixed(tmp_path):
    """Version-3 files held a 7-class head: they must give a clear error, never 7 columns labelled with 8 names."""
    net = FaceExpressionCNN(num_classes=7)
    old = tmp_path / "v3.pt"
    torch.save({"state_dict": net.state_dict(), "spec": {**FACE_CNN.signature(), "version": "3"}}, old)
    with pytest.raises(WeightsError, match="v3"):
        FaceExtractor(old)


def test_temperature_from_the_file_scales_the_logits(tmp_path):
    """softmax(logits / T): same argmax, flatter for T > 1; the features do not change."""
    net = FaceExpressionCNN()
    torch.nn.init.normal_(net.head.weight, std=0.5)
    paths = {}
    for t in (1.0, 2.5):
        paths[t] = tmp_path / f"t{t}.pt"
        torch.save({"state_dict": net.state_dict(), "spec": FACE_CNN.signature(), "temperature": t}, paths[t])
    crops = np.random.default_rng(1).integers(0, 255, (6, 48, 48, 3), dtype=np.uint8)
    f1, p1 = FaceExtractor(paths[1.0])(crops)
    f2, p2 = FaceExtractor(paths[2.5])(crops)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(p1.argmax(1), p2.argmax(1))
    assert (p2.max(1) < p1.max(1)).all()
    logit_gap = np.log(p1.max(1) / p1.min(1))
    np.testing.assert_allclose(np.log(p2.max(1) / p2.min(1)), logit_gap / 2.5, rtol=1e-3)


def test_random_weights_file_round_trip(tmp_path):
    net = FaceExpressionCNN()
    path = tmp_path / "w.pt"
    torch.save({"state_dict": net.state_dict(), "spec": FACE_CNN.signature()}, path)
    ex = FaceExtractor(path)
    assert ex.signature["weights_sha256"] != FaceExtractor().signature["weights_sha256"]


@pytest.mark.realdata
def test_shipped_face_cnn_on_fer2013_privatetest_sample():
    """A sanity bound, not the benchmark (benchmarks/face_cnn.md has the full split): catches broken preprocessing."""
    root = data_path("fer2013", "test")
    xs, ys = [], []
    for k, name in enumerate(EKMAN7.names):
        for f in sorted((root / name).glob("*.jpg"))[:60]:
            xs.append(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB))
            ys.append(k)
    _, probs = FaceExtractor()(np.stack(xs))
    acc = float((probs[:, :7].argmax(1) == np.array(ys)).mean())  # FER2013's 7 classes: contempt mapped out
    # version 4 learns the FER+ majority, which matches FER2013's own label on only 63 % of faces (59.9 % on the
    # whole split, benchmarks/face_cnn.md): broken preprocessing would fall towards chance (14 %)
    assert acc > 0.5, f"accuracy {acc:.3f} on {len(ys)} PrivateTest faces"


def test_folding_batch_norms_keeps_the_output():
    net = FaceExpressionCNN().eval()
    g = torch.Generator().manual_seed(0)
    for m in net.modules():  # non-trivial statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    x = torch.randn(4, 3, 64, 64, generator=g)
    with torch.inference_mode():
        before = net.feature_map(x)
        fold_batch_norms(net.trunk)
        after = net.feature_map(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.trunk.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_context_pool_flatten_gives_the_papers_25088_values_for_squeezenet():
    """Sun et al., V-C: SqueezeNet 1.1's last map (512 x 13 x 13 at 224 px) pooled to 25,088 values."""
    import torch

    from emocontext.features.backbones import SqueezeNet11, pool_map

    m = SqueezeNet11().features(torch.zeros(1, 3, 224, 224))
    assert tuple(m.shape) == (1, 512, 13, 13)
    assert pool_map(m, "flatten").shape == (1, 25_088) and pool_map(m, "mean").shape == (1, 512)
    x = torch.arange(2 * 4 * 14 * 14, dtype=torch.float32).view(2, 4, 14, 14)
    flat = pool_map(x, "flatten").view(2, 4, 7, 7)
    torch.testing.assert_close(flat[:, :, 0, 0], x[:, :, :2, :2].mean((2, 3)))  # 2x2 cells, channel-major
