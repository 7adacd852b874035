"""Where the FER2013 PrivateTest errors lie (issue 20): faces whose FER2013 label the FER+ crowd agrees with, and
faces it disputes.

FER2013's single labels and the FER+ relabelling (10 annotators a face; Barsoum et al., ICMI 2016) agree on only
part of PrivateTest. This splits the 3,589 faces by the FER+ majority (``scripts/train_face_cnn.py``'s
``majority8``): **agreed** (the majority is FER2013's label), **disputed** (the majority is another emotion, contempt
included), and **no majority** (unknown / not a face / no votes), and scores each system's answers (over the 7
classes, contempt mapped out) on each part, from the raw outputs that ``benchmarks/face_proxies.py`` left in its cache
(``emocontext predict`` as shipped, and the ``fer`` package). On disputed faces a system that answers what the crowd
saw is counted wrong: the share of errors there bounds what better learning of the expression itself can gain.

Run: python benchmarks/fer2013_label_agreement.py --out benchmarks/fer2013_label_agreement.md
(after ``python benchmarks/face_proxies.py``; ``--cache`` as given to it, default ``../proxy-cache``)
Data: ``$EMOCONTEXT_DATA/fer2013`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import train_face_cnn as tfc  # noqa: E402

DATA = Path(os.environ.get("EMOCONTEXT_DATA", REPO / "../shared/data"))
EKMAN7 = list(tfc.EKMAN7.names)
#: proxy-cache run file -> the system's name in the table
SYSTEMS = {"emocontext_face-fer2013.jsonl": "`emocontext face`", "fer_tflite-fer2013.jsonl": "`fer (tflite)`"}


def answers(path: Path) -> dict[str, int]:
    """File name -> the answer's index in EKMAN7 (argmax over the 7, contempt left out); -1: no answer."""
    out = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        probs = rec.get("probabilities") or ((rec.get("faces") or [{}])[0].get("probabilities"))
        name = Path(rec["path"]).name
        out[name] = int(np.argmax([probs.get(c, 0.0) for c in EKMAN7])) if probs else -1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=REPO / "../proxy-cache")
    ap.add_argument("--out", type=Path, help="markdown here, the numbers beside it as .json")
    args = ap.parse_args()
    root = DATA / "fer2013"
    names = [f.name for c in EKMAN7 for f in sorted((root / "test" / c).glob("*.jpg"))]
    with tempfile.TemporaryDirectory() as tmp:  # load_split caches as .npz: not kept
        split = tfc.load_split(root, "test", Path(tmp))
    y = split["y7"]
    maj = tfc.majority8(split["votes"])
    maj7 = np.where(maj < 7, maj, -2)  # contempt: a disputed face (FER2013 has no contempt)
    parts = {
        "agreed": maj == y,
        "disputed": (maj >= 0) & (maj7 != y),
        "no FER+ majority": maj < 0,
        "all": np.ones(len(y), bool),
    }
    res = {"faces": {k: int(v.sum()) for k, v in parts.items()}, "systems": {}}
    for fname, system in SYSTEMS.items():
        run = args.cache / "runs" / fname
        if not run.exists():
            raise SystemExit(f"{run} is missing: run benchmarks/face_proxies.py first (--cache {args.cache})")
        got = answers(run)
        a = np.array([got.get(n, -1) for n in names])
        right = a == y
        res["systems"][system] = {
            k: {"accuracy_pct": round(100 * float(right[m].mean()), 2), "errors": int((~right[m]).sum())}
            for k, m in parts.items()
        }
        crowd = (a == maj7)[parts["disputed"]]
        res["systems"][system]["disputed: answers the FER+ majority (%)"] = round(100 * float(crowd.mean()), 2)
    lines = [
        "# FER2013 PrivateTest: errors on the faces the FER+ crowd agrees with, and on those it disputes",
        "",
        "Issue 20. " + __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "| system | "
        + " | ".join(f"{k} ({res['faces'][k]:,} faces): accuracy % / errors" for k in parts)
        + " | disputed: answers the crowd's majority % |",
        "|---|" + "---|" * (len(parts) + 1),
    ]
    for system, r in res["systems"].items():
        cells = " | ".join(f"{r[k]['accuracy_pct']:.1f} / {r[k]['errors']}" for k in parts)
        lines.append(f"| {system} | {cells} | {r['disputed: answers the FER+ majority (%)']:.1f} |")
    lines += ["", f"Command: `python benchmarks/fer2013_label_agreement.py --out {args.out}`", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
