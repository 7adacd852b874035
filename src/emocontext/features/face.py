"""The face extractor of prediction and feature extraction: face crops -> features and expression probabilities.

:class:`FaceExtractor` runs the face CNN (:class:`~.backbones.FaceExpressionCNN`, ``src/emocontext/weights/
MODEL_CARD.md``) as an ONNX graph in ONNX Runtime (:mod:`emocontext.runtime`), so the prediction path never
imports torch. For the shipped weights the graph ships beside them, **quantised to int8** (:data:`~emocontext.
weights.FACE_CNN_ONNX_WEIGHTS`, its metadata holding the SHA-256 of the ``.pt`` it was made from): about half
the CPU time of the float graph (measured with version 5: 2.35 vs 4.5 ms a face, one thread), the float network's
label on 97.6 % of the FER2013 PrivateTest faces (version 9, ``benchmarks/face_int8_agreement.py``), and the
proxies within a point of it (``benchmarks/face_proxies.md``, ``benchmarks/face_v9_float.json``). Any other weights
file is converted when it is loaded (:func:`~.backbones.face_cnn_onnx`, float32: torch and ``onnx`` are imported
then, a few seconds once per file and process), with the torch network's numbers to float rounding
(``tests/features/test_face.py``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import hub, runtime
from ..errors import WeightsError
from ..weights import FACE_CNN_ONNX_WEIGHTS
from .specs import FACE_CNN, ExtractorSpec, face_weights_path

__all__ = ["FaceExtractor", "face_input"]

#: ITU-R BT.601 luma weights, RGB order (what ``grayscale`` specs read).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def face_input(images: np.ndarray, spec: ExtractorSpec = FACE_CNN) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` RGB (or ``(N, H, W)`` grey) faces -> normalised float32 ``(N, 3, h, w)``.

    Grey specs take the BT.601 luma; faces of another size are resized to ``spec.input_size`` with PIL's
    bilinear filter (anti-aliased when shrinking: the 128 px crops of the pipeline become 80 px), the filter
    torch's ``interpolate(..., antialias=True)`` reproduces, which the face CNN was evaluated with.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    x = x.astype(np.float32)
    if spec.grayscale:
        x = (x @ _LUMA)[..., None] if x.shape[-1] == 3 else x
    h, w = spec.input_size
    if x.shape[1:3] != (h, w):
        x = np.stack([_resized(face, w, h) for face in x]) if len(x) else np.zeros((0, h, w, x.shape[-1]), np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _resized(face: np.ndarray, w: int, h: int) -> np.ndarray:
    """One float ``(H, W, C)`` face resized to ``(h, w, C)``, channel by channel (PIL's bilinear filter)."""
    from PIL import Image

    channels = [Image.fromarray(face[..., c], mode="F").resize((w, h), Image.BILINEAR) for c in range(face.shape[-1])]
    return np.stack([np.asarray(c) for c in channels], axis=-1)


def _shipped_graph(sha256: str):
    """The shipped graph's session when it was made from the weights with this SHA-256, else None."""
    path = hub.packaged_path(FACE_CNN_ONNX_WEIGHTS)
    if path is None or not path.is_file():
        return None
    session = runtime.session(path)
    meta = session.get_modelmeta().custom_metadata_map
    made_for = (meta.get("source_sha256"), meta.get("spec_name"), meta.get("spec_version"))
    return session if made_for == (sha256, FACE_CNN.name, FACE_CNN.version) else None


@lru_cache(maxsize=4)
def _converted_graph(path: str, sha256: str, threads: int):
    from .backbones import face_cnn_onnx

    return runtime.session_from_bytes(face_cnn_onnx(path), f"face CNN weights {path}")


class FaceExtractor:
    """Frozen face-expression CNN: face crops -> features ``(N, 1280)`` and probabilities ``(N, 8)``.

    With :data:`~.specs.FACE_CNN` (``test_time_flip``) every face is read twice, as is and mirrored: the
    feature map is the mean of the two (the mirror's flipped back), the feature its average pool,
    the probabilities the softmax of the head on that feature. This horizontal-flip test-time
    augmentation is what the accuracy in ``benchmarks/face_cnn.md`` measures (with and without it:
    :data:`emocontext.weights.FACE_CNN_WEIGHTS` ``.metrics``) at twice the CNN time.

    Args:
        weights: path of a weights file (``.pt``); default the shipped one (``$EMOCONTEXT_FACE_WEIGHTS``).
        batch_size: crops per run of the graph (twice as many images with the flip pass). 16: ONNX Runtime
            keeps the largest buffers a graph needed in its memory arena, and a batch of 64 held enough of them
            to lift the peak memory of a 10-minute 720p video from 776 to 1084 MB, at no gain in speed.

    Raises:
        WeightsError: the weights file is missing, unreadable, or made for another architecture version.
    """

    spec = FACE_CNN

    def __init__(self, weights: str | Path | None = None, *, batch_size: int = 16):
        path = Path(weights or face_weights_path())
        if not path.is_file():
            raise WeightsError(f"face CNN weights not found: {path}")
        sha = hub.sha256(path)
        self.weights_sha256 = sha[:16]
        self.session = _shipped_graph(sha) or _converted_graph(str(path), sha, runtime.threads())
        self.batch_size = batch_size

    @property
    def signature(self) -> dict:
        """The spec's signature plus the weights' checksum: retrained weights never mix in one store."""
        return {**self.spec.signature(), "weights_sha256": self.weights_sha256}

    @property
    def map_size(self) -> tuple[int, int]:
        """``(h, w)`` of the last feature map: the input size over the network's stride of 16."""
        return tuple(s // 16 for s in self.spec.input_size)

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``crops``: uint8 ``(N, H, W, 3)`` RGB face crops -> features ``(N, 1280)``, probabilities ``(N, 8)``."""
        feats, probs, _ = self.run(crops, keep_maps=False)
        return feats, probs

    def run(self, crops: np.ndarray, *, keep_maps: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features ``(N, 1280)``, probabilities ``(N, 8)`` and last feature maps ``(N, 1280, 5, 5)`` (float32).

        ``keep_maps=False`` returns the maps as ``(N, 0, 5, 5)``: the same features and probabilities
        without holding 100 KB of map per crop (a 10-minute video at 5 fps: 384 MB) when no model reads them.
        """
        h, w = self.map_size
        d = self.spec.feature_dim
        feats, probs, maps = [np.zeros((0, d), np.float32)], [np.zeros((0, len(self.spec.labels)), np.float32)], []
        maps.append(np.zeros((0, d if keep_maps else 0, h, w), np.float32))
        wanted = ["features", "probabilities"] + (["feature_map"] if keep_maps else [])  # no map copied out unasked
        for i in range(0, len(crops), self.batch_size):
            f, p, *m = self.session.run(wanted, {"x": face_input(crops[i : i + self.batch_size], self.spec)})
            maps.append(m[0] if keep_maps else np.empty((len(f), 0, h, w), np.float32))
            feats.append(f)
            probs.append(p)
        return np.concatenate(feats), np.concatenate(probs), np.concatenate(maps)
