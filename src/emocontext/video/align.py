"""Face alignment: the face CNN sees every face framed as its training faces were.

The face CNN learns FER2013's framing (48 px faces, roughly centred, cropped tight around the eyes,
nose and mouth). A detector's box is framed otherwise, and differently per detector, so a crop made from
the box with a tuned margin gives the network a looser or tighter face than it learned, which costs
accuracy on real video (issue 20: a posed angry close-up scored angry 0.26 at margin 0.1 and 0.56 at 0).

Here the framing is the training framing by construction: the five landmarks of a detection (both eyes,
nose tip, both mouth corners; MTCNN and YuNet give them) are mapped by a similarity transform (rotation,
uniform scale, translation: :func:`cv2.estimateAffinePartial2D`, least-median-of-squares) onto
:data:`TEMPLATE`, where the same detector puts those landmarks on the training faces themselves
(the median over the 869 of 1,000 FER2013 training faces where MTCNN found a face, measured by
``scripts/face_template.py``, recorded in ``benchmarks/face_template.json``). A face without landmarks
(Haar, dlib, a dataset's box) is cropped from its box as a square with :data:`BOX_MARGIN`, the margin that
makes the same detector's median box on the training faces fill the crop as the training face fills its
picture.

Deviation from the papers: Sun et al. (MEC 2017, V-B) and Lee et al. (ICCV 2019, 5.1) crop the detected
face box without alignment; alignment is ours, for the face CNN that emocontext ships (trained on FER2013,
not on the papers' datasets). ``StreamConfig(face_align=False)`` gives the box crop of the papers.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["TEMPLATE", "BOX_MARGIN", "alignment_matrix", "aligned_face"]

#: Where MTCNN puts the five landmarks on FER2013 training faces, in units of the picture's side
#: (x right, y down; 0..1): eye on the image left, eye on the image right, nose tip, mouth corner on the
#: image left, mouth corner on the image right. Median over the 869 faces MTCNN found among 1,000 training faces
#: (interquartile range 0.05-0.09 per coordinate; ``python scripts/face_template.py --faces 1000``;
#: ``benchmarks/face_template.json``).
TEMPLATE = np.array(
    [
        [0.315, 0.389],
        [0.692, 0.386],
        [0.499, 0.604],
        [0.346, 0.782],
        [0.659, 0.781],
    ],
    np.float32,
)

#: Margin of the square box crop for faces without landmarks, fraction of the box side on each side:
#: ``(1 / s - 1) / 2`` for ``s`` the median side of MTCNN's box on the training faces in units of the
#: picture's side (same script). Negative: the training faces are framed tighter than MTCNN's box.
BOX_MARGIN = -0.029


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray | None:
    """The 2x3 similarity transform taking ``landmarks`` onto :data:`TEMPLATE` scaled to ``size`` px.

    Args:
        landmarks: ``(5, 2)`` float ``(x, y)`` pixels of a frame, in :class:`~.faces.base.Detection` order.
        size: side in pixels of the aligned crop.

    Returns:
        float64 ``(2, 3)``, or None when the points admit no transform (degenerate: all on one spot).
    """
    src = np.asarray(landmarks, np.float32).reshape(5, 2)
    dst = TEMPLATE * np.float32(size)
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-8:
        return None
    return m


def aligned_face(frame: np.ndarray, landmarks: np.ndarray, *, size: int) -> np.ndarray | None:
    """The face of ``frame`` with its landmarks on :data:`TEMPLATE`: uint8 ``(size, size, 3)``.

    Args:
        frame: RGB uint8 ``(H, W, 3)``.
        landmarks: ``(5, 2)`` float pixels of ``frame``.
        size: output side in pixels.

    Returns:
        The aligned crop (parts outside the frame replicate its border), or None for degenerate
        landmarks (the caller falls back to the box crop).
    """
    m = alignment_matrix(landmarks, size)
    if m is None:
        return None
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.8:  # a large face: shrink its region with area averaging first (warpAffine would alias)
        corners = cv2.transform(
            np.float32([[[0, 0], [size, 0], [0, size], [size, size]]]), cv2.invertAffineTransform(m)
        )
        (x0, y0), (x1, y1) = np.floor(corners[0].min(0)) - 2, np.ceil(corners[0].max(0)) + 2
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        region = _crop_replicated(frame, x0, y0, x1, y1)
        if region is None:
            return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        w, h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        small = cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA)
        sx, sy = (x1 - x0) / w, (y1 - y0) / h  # small -> frame pixels
        a = m[:, :2]
        m = np.hstack([a * [sx, sy], (a @ [x0, y0] + m[:, 2])[:, None]])
        frame = small
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _crop_replicated(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray | None:
    """``frame[y0:y1, x0:x1]`` with the parts outside the frame filled by replicating its border; None when the
    region does not overlap the frame."""
    h, w = frame.shape[:2]
    xa, ya, xb, yb = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1), max(min(x1, w), 1), max(min(y1, h), 1)
    crop = frame[ya:yb, xa:xb]
    pad = (ya - y0, y1 - yb, xa - x0, x1 - xb)
    if min(pad) < 0 or crop.size == 0:
        return None
    return cv2.copyMakeBorder(crop, *pad, cv2.BORDER_REPLICATE) if any(pad) else crop
