"""The shipped int8 face graph against the float network it was made from, on FER2013 PrivateTest.

Both graphs read the same inputs (:func:`emocontext.features.face.face_input` of the 48 px grey test faces, as
``predict --detector none`` prepares a whole image): the float one is :func:`~emocontext.features.backbones.
face_cnn_onnx` of the shipped ``.pt`` (what any other weights file runs as), the int8 one the shipped ``.onnx``.
Prints and writes (``--out``, JSON) the share of faces on which the two give the same label (over EKMAN8, and over
FER2013's 7 classes with contempt mapped out) and each graph's accuracy on FER2013's own labels.

Run: python benchmarks/face_int8_agreement.py --out benchmarks/face_int8_agreement.json
Data: $EMOCONTEXT_DATA/fer2013/test (default ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

from emocontext import hub, runtime
from emocontext.features.backbones import face_cnn_onnx
from emocontext.features.face import face_input
from emocontext.labels import EKMAN7
from emocontext.weights import FACE_CNN_ONNX_WEIGHTS, FACE_CNN_WEIGHTS

DATA = Path(os.environ.get("EMOCONTEXT_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))


def probabilities(session, faces: np.ndarray, batch: int = 64) -> np.ndarray:
    """``(N, 8)`` probabilities of a face graph on uint8 grey faces ``(N, H, W)``, ``batch`` at a time."""
    name = session.get_inputs()[0].name
    runs = [
        session.run(["probabilities"], {name: face_input(faces[i : i + batch])})[0] for i in range(0, len(faces), batch)
    ]
    return np.concatenate(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write the numbers here (JSON)")
    args = ap.parse_args()
    files, labels = [], []
    for k, name in enumerate(EKMAN7.names):
        found = sorted((DATA / "fer2013" / "test" / name).glob("*.jpg"))
        files += found
        labels += [k] * len(found)
    if not files:
        raise SystemExit(f"no FER2013 test faces under {DATA}/fer2013/test (set EMOCONTEXT_DATA)")
    faces = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])
    y = np.array(labels)
    pt = hub.packaged_path(FACE_CNN_WEIGHTS)
    graphs = {
        "float": runtime.session_from_bytes(face_cnn_onnx(pt), "float face graph"),
        "int8": runtime.session(hub.packaged_path(FACE_CNN_ONNX_WEIGHTS)),
    }
    p = {k: probabilities(s, faces) for k, s in graphs.items()}
    top8 = {k: v.argmax(1) for k, v in p.items()}
    top7 = {k: v[:, : len(EKMAN7)].argmax(1) for k, v in p.items()}
    res = {
        "faces": len(y),
        "weights_sha256": FACE_CNN_WEIGHTS.sha256[FACE_CNN_WEIGHTS.files[0]],
        "same_label_8_classes_pct": round(100 * float((top8["float"] == top8["int8"]).mean()), 2),
        "same_label_7_classes_pct": round(100 * float((top7["float"] == top7["int8"]).mean()), 2),
        **{f"accuracy_{k}_pct": round(100 * float((v == y).mean()), 2) for k, v in top7.items()},
    }
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
