"""Write the ONNX graphs that ``emocontext predict`` runs (package data in ``src/emocontext/weights/``).

* ``face_cnn_fer2013.onnx`` from the shipped face CNN weights (``face_cnn_fer2013.pt``), **quantised to int8**
  (ONNX Runtime static quantisation: weights per output channel, activations per tensor, ranges calibrated
  on 512 real faces: 256 FER2013 training faces and 256 ExpW training faces of ``packs/expw_faces64.npz``,
  none of a test split), about half the CPU time of the float graph at the same answers within the
  proxies' noise (``benchmarks/vs_fer.md``, ``benchmarks/face_proxies_int8.md``). Rerun after every
  retraining: the graph's metadata holds the SHA-256 of the ``.pt``; ``tests/features/test_face.py`` fails
  while they disagree, and until then :class:`~emocontext.features.face.FaceExtractor` converts the ``.pt``
  itself (float32, unquantised) each time it loads it;
* ``mtcnn_pnet.onnx``, ``mtcnn_rnet.onnx``, ``mtcnn_onet.onnx`` from the Keras arrays of the PyPI package
  ``mtcnn`` (``pip install -e ".[export]"``).

Prints the SHA-256 of each file for the ``sha256`` of its record in ``emocontext/weights/__init__.py``.

Run: python scripts/export_onnx.py [--only face|mtcnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from train_face_cnn import expw_pack_box  # scripts/: the pack's crop geometry in one place

from emocontext import hub
from emocontext.features.backbones import face_cnn_onnx
from emocontext.outputs import atomic_write_bytes
from emocontext.video.faces.mtcnn_nets import mtcnn_onnx
from emocontext.weights import FACE_CNN_ONNX_WEIGHTS, MTCNN_WEIGHTS

OUT = Path(__file__).resolve().parents[1] / "src/emocontext/weights"
DATA = Path(os.environ.get("EMOCONTEXT_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))


def calibration_faces(n_each: int = 256) -> np.ndarray:
    """uint8 ``(2 n_each, 80, 80, 3)`` RGB faces for the int8 ranges: FER2013 training faces (every k-th of the
    sorted files) and ExpW training faces (the pack's 1.5x-box squares cut to the box, 1.0x), both upsampled as
    the pipeline's crops are."""
    from emocontext.features.specs import FACE_CNN

    size = FACE_CNN.input_size[::-1]
    files = sorted((DATA / "fer2013" / "train").glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no FER2013 training faces under {DATA}/fer2013/train (set EMOCONTEXT_DATA)")
    fer = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files[:: max(1, len(files) // n_each)][:n_each]]
    pack = np.load(DATA / "packs" / "expw_faces64.npz")
    train = np.flatnonzero(pack["split"] == "train")[:: max(1, int((pack["split"] == "train").sum()) // n_each)]
    expw = [expw_pack_box(pack, i) for i in train[:n_each]]
    faces = [cv2.resize(g, size, interpolation=cv2.INTER_LINEAR) for g in fer + expw]
    return np.repeat(np.stack(faces)[..., None], 3, axis=-1)


def quantise_face_graph(graph: bytes, faces: np.ndarray, spec=None) -> bytes:
    """The face CNN graph with int8 convolutions: weights per output channel, activations per tensor (ranges
    from ``faces``, prepared with ``spec``, default ``FACE_CNN``), in QDQ form (ONNX Runtime runs the convolutions
    in int8); the pooling, the head and the softmax stay float. The metadata is kept and says so."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from emocontext.features.face import face_input
    from emocontext.features.specs import FACE_CNN

    class Faces(CalibrationDataReader):
        def __init__(self):
            chunks = [faces[i : i + 32] for i in range(0, len(faces), 32)]
            self.batches = iter([{"x": face_input(c, spec or FACE_CNN)} for c in chunks])

        def get_next(self):
            return next(self.batches, None)

    meta = {p.key: p.value for p in onnx.load_from_string(graph).metadata_props}
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(graph)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            Faces(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            op_types_to_quantize=["Conv", "Clip", "Add", "Concat", "Slice"],  # pooling, head, softmax: float
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        model = onnx.load(str(out))
    meta["quantisation"] = (
        f"int8 static (QDQ) convolutions, weights per channel, activations calibrated on {len(faces)} faces"
    )
    onnx.helper.set_model_props(model, meta)
    return model.SerializeToString()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("face", "mtcnn"), default=None)
    ap.add_argument("--out", type=Path, default=OUT, help="folder to write to (default: the package's weights)")
    args = ap.parse_args()
    written = {}
    if args.only in (None, "face"):
        written[FACE_CNN_ONNX_WEIGHTS.filename] = quantise_face_graph(face_cnn_onnx(), calibration_faces())
    if args.only in (None, "mtcnn"):
        for name, graph in zip(MTCNN_WEIGHTS.files, mtcnn_onnx().values(), strict=True):
            written[name] = graph
    for name, graph in written.items():
        atomic_write_bytes(args.out / name, graph)
        print(f'"{name}": "{hub.sha256(args.out / name)}",  # {len(graph) / 1e6:.1f} MB')
    return 0


if __name__ == "__main__":
    sys.exit(main())
