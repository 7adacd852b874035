"""The framing test of ``face_proxies.py`` on the faces the detector finds: what the crop costs, apart from misses.

``face_proxies.py --rows framing`` scores a face the detector misses as wrong, so its cost mixes the framing (how the
found face is cropped or aligned) with the detector's recall on the framed pictures. This reads the two raw runs it
keeps in its cache and compares the same faces both ways, on the faces found only.

    python benchmarks/framing_found.py ../proxy-cache/runs/emocontext_face-framed_given.jsonl \\
        ../proxy-cache/runs/emocontext_face-framed.jsonl

The framed pictures are 384 px squares holding the 192 px face at 96..288 (``face_proxies.py``); a detection counts
when it overlaps that square with IoU >= 0.3, as there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emocontext.video.faces.boxes import box_iou

EKMAN7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PLACED = (96.0, 96.0, 288.0, 288.0)


def answers(path: Path, *, placed: bool) -> dict[str, tuple[str | None, str]]:
    """``{class/file: (7-class answer or None when no face over the placed one, true class)}``."""
    out = {}
    for line in path.open():
        r = json.loads(line)
        key = "/".join(Path(r["path"]).parts[-2:])
        probs = r.get("probabilities")
        found = bool(probs) and r.get("frames_with_face", 0) > 0
        if found and placed:
            found = box_iou([r["frames"][0]["box"]], [PLACED])[0, 0] >= 0.3
        out[key] = (max(EKMAN7, key=lambda c: probs[c]) if found else None, key.split("/")[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("given", type=Path, help="the run on the faces given directly (--detector none)")
    ap.add_argument("framed", type=Path, help="the run on the framed pictures (the detector)")
    args = ap.parse_args()
    given, framed = answers(args.given, placed=False), answers(args.framed, placed=True)
    both = [k for k, (a, _) in framed.items() if a is not None and k in given]
    missed = [k for k, (a, _) in framed.items() if a is None and k in given]
    acc_given = sum(given[k][0] == given[k][1] for k in both) / len(both)
    acc_found = sum(framed[k][0] == framed[k][1] for k in both) / len(both)
    print(
        f"found {len(both)} of {len(framed)}: given {acc_given:.4f}, found {acc_found:.4f}, "
        f"framing cost {100 * (acc_given - acc_found):.2f} points"
    )
    if missed:
        right = sum(given[k][0] == given[k][1] for k in missed) / len(missed)
        print(f"missed {len(missed)}: given accuracy on them {right:.4f}")


if __name__ == "__main__":
    main()
