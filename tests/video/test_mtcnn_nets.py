"""MTCNN's torch networks (:mod:`emocontext.video.faces.mtcnn_nets`): the Keras weight conversion, and the shipped
ONNX graphs that the detector runs, checked against them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocontext import hub, runtime
from emocontext.errors import WeightsError
from emocontext.video.faces import mtcnn_nets as nets_module
from emocontext.video.faces.mtcnn_nets import STAGES, load_mtcnn_nets, mtcnn_onnx
from emocontext.weights import MTCNN_WEIGHTS

pytest.importorskip("joblib", reason="the MTCNN Keras arrays need joblib and lz4 (pip install -e '.[export]')")
if hub.packaged_path(nets_module.MTCNN_KERAS_WEIGHTS) is None:
    pytest.skip("the mtcnn package (its Keras arrays) is missing: pip install -e '.[export]'", allow_module_level=True)


def test_keras_flatten_order_matches_permute_then_flatten():
    nhwc = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)  # N, H, W, C
    keras = np.transpose(nhwc, (0, 2, 1, 3)).reshape(2, -1)  # Permute((2, 1, 3)) then Flatten
    ours = nets_module._keras_flatten(torch.from_numpy(nhwc).permute(0, 3, 1, 2))  # from NCHW
    np.testing.assert_array_equal(ours.numpy(), keras)


def test_conv_kernels_are_converted_from_hwio():
    """A Keras conv (HWIO kernel, NHWC input, cross-correlation) computed by hand equals our loaded conv."""
    rng = np.random.default_rng(1)
    net = nets_module._PNet()
    arrays = []
    for name in net.keras_layers:
        layer = getattr(net, name)
        if isinstance(layer, torch.nn.Conv2d):
            o, i, kh, kw = layer.weight.shape
            arrays += [rng.normal(size=(kh, kw, i, o)).astype(np.float32), rng.normal(size=o).astype(np.float32)]
        else:
            arrays.append(rng.normal(size=(1, 1, layer.weight.shape[0])).astype(np.float32))
    nets_module._load_keras_arrays(net, arrays, "synthetic")
    kernel, bias = arrays[0], arrays[1]
    img = rng.normal(size=(7, 9, 3)).astype(np.float32)  # H, W, C
    expect = np.zeros((5, 7, 10), np.float32)
    for y in range(5):
        for x in range(7):
            expect[y, x] = np.einsum("ijc,ijco->o", img[y : y + 3, x : x + 3], kernel) + bias
    got = net.conv1(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).detach().numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(net.prelu1.weight.detach().numpy(), arrays[2].reshape(-1))


def test_mtcnn_weights_load_with_expected_shapes():
    pnet, rnet, onet = load_mtcnn_nets()
    assert pnet.conv1.weight.shape == (10, 3, 3, 3) and pnet.conv4_1.weight.shape == (4, 32, 1, 1)
    assert rnet.fc4.weight.shape == (128, 576) and rnet.fc5_2.weight.shape == (2, 128)
    assert onet.fc5.weight.shape == (256, 1152) and onet.fc6_2.weight.shape == (10, 256)
    for net in (pnet, rnet, onet):
        assert not net.training
        assert all(p.abs().sum() > 0 for p in net.parameters())


def test_mtcnn_weight_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_mtcnn_nets(tmp_path)
    (tmp_path / "pnet.lz4").write_bytes(b"not a joblib file")
    with pytest.raises(WeightsError, match="cannot read"):
        load_mtcnn_nets(tmp_path)
    import joblib

    joblib.dump([np.zeros((3, 3, 3, 11), np.float32)], tmp_path / "pnet.lz4")
    with pytest.raises(WeightsError, match="shape"):
        load_mtcnn_nets(tmp_path)


def _example_inputs():
    g = torch.Generator().manual_seed(0)
    shapes = dict(STAGES)
    shapes["pnet"] = (1, 3, 61, 83)  # not the export's example size: the graph's height and width are free
    shapes["rnet"], shapes["onet"] = (5, 3, 24, 24), (3, 3, 48, 48)
    return {k: torch.randn(*v, generator=g) for k, v in shapes.items()}


def test_shipped_graphs_compute_what_the_torch_networks_do():
    """The ONNX graphs in the package are the Keras arrays' networks: same outputs on inputs of other sizes.

    Fails after a change of the networks or of their weights until ``python scripts/export_onnx.py`` is rerun."""
    folder = hub.resolve(MTCNN_WEIGHTS)
    inputs = _example_inputs()
    with torch.inference_mode():
        for (stage, _), net, name in zip(STAGES, load_mtcnn_nets(), MTCNN_WEIGHTS.files, strict=True):
            want = [t.numpy() for t in net(inputs[stage])]
            got = runtime.session(folder / name).run(None, {"x": inputs[stage].numpy()})
            assert len(got) == len(want)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_export_gives_graphs_that_onnx_runtime_loads():
    graphs = mtcnn_onnx()
    assert list(graphs) == [s for s, _ in STAGES]
    x = _example_inputs()["rnet"].numpy()
    offsets, prob = runtime.session_from_bytes(graphs["rnet"], "R-Net").run(None, {"x": x})
    assert offsets.shape == (5, 4) and prob.shape == (5,) and ((prob >= 0) & (prob <= 1)).all()
