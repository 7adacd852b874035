"""The torch side of the extractors: batch-norm folding, the context CNN's pooling."""

from __future__ import annotations

import pytest
import torch

from emocontext.errors import ConfigError
from emocontext.features.backbones import FaceExpressionCNN, fold_batch_norms


@pytest.mark.parametrize("trunk, blocks", [("efficientnet_lite0", 16), ("efficientnet_lite2", 21)])
def test_face_network_keeps_stride_16_on_either_trunk(trunk, blocks):
    """The last resolution stage runs at stride 1 on both trunks: an 80 px face ends in a 5x5 map of 1280."""
    net = FaceExpressionCNN(trunk=trunk).eval()
    assert len(net.trunk._blocks) == blocks and net.trunk_name == trunk
    with torch.inference_mode():
        x = torch.zeros(2, 3, 80, 80)
        assert tuple(net.feature_map(x).shape) == (2, 1280, 80 // net.STRIDE, 80 // net.STRIDE)
        assert tuple(net(x).shape) == (2, 8)
    strided = [i for i, b in enumerate(net.trunk._blocks) if list(b._depthwise_conv.stride) == [2, 2]]
    assert len(strided) == 3 and net.LAST_STAGE_BLOCK[trunk] not in strided


def test_unknown_trunk_is_a_clear_error():
    with pytest.raises(ConfigError, match="efficientnet_lite0, efficientnet_lite2"):
        FaceExpressionCNN(trunk="resnet50")


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
