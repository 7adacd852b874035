"""Write the ONNX graphs that ``emocontext predict`` runs (package data in ``src/emocontext/weights/``).

* ``face_cnn_fer2013.onnx`` from the shipped face CNN weights (``face_cnn_fer2013.pt``): rerun after every
  retraining (the graph's metadata holds the SHA-256 of the ``.pt``; ``tests/features/test_face.py`` fails
  while they disagree, and until then :class:`~emocontext.features.face.FaceExtractor` converts the ``.pt``
  itself each time it loads it);
* ``mtcnn_pnet.onnx``, ``mtcnn_rnet.onnx``, ``mtcnn_onet.onnx`` from the Keras arrays of the PyPI package
  ``mtcnn`` (``pip install -e ".[export]"``).

Prints the SHA-256 of each file for the ``sha256`` of its record in ``emocontext/weights/__init__.py``.

Run: python scripts/export_onnx.py [--only face|mtcnn]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emocontext import hub
from emocontext.features.backbones import face_cnn_onnx
from emocontext.outputs import atomic_write_bytes
from emocontext.video.faces.mtcnn_nets import mtcnn_onnx
from emocontext.weights import FACE_CNN_ONNX_WEIGHTS, MTCNN_WEIGHTS

OUT = Path(__file__).resolve().parents[1] / "src/emocontext/weights"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("face", "mtcnn"), default=None)
    ap.add_argument("--out", type=Path, default=OUT, help="folder to write to (default: the package's weights)")
    args = ap.parse_args()
    written = {}
    if args.only in (None, "face"):
        written[FACE_CNN_ONNX_WEIGHTS.filename] = face_cnn_onnx()
    if args.only in (None, "mtcnn"):
        for name, graph in zip(MTCNN_WEIGHTS.files, mtcnn_onnx().values(), strict=True):
            written[name] = graph
    for name, graph in written.items():
        atomic_write_bytes(args.out / name, graph)
        print(f'"{name}": "{hub.sha256(args.out / name)}",  # {len(graph) / 1e6:.1f} MB')
    return 0


if __name__ == "__main__":
    sys.exit(main())
