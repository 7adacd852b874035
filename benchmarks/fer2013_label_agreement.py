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
Validation without a test look: ``--held-out WEIGHTS...`` scores weights files in process on the held-out third of
PublicTest (the faces ``scripts/train_face_cnn.py --val-train 0.67`` keeps out).
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
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import train_face_cnn as tfc  # noqa: E402

DATA = Path(os.environ.get("EMOCONTEXT_DATA", REPO / "../shared/data"))
EKMAN7 = list(tfc.EKMAN7.names)
#: the docstring's first paragraph, one line: the opening of each table
SUMMARY = __doc__.split("\n\n")[1].replace("\n", " ")
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


def split_parts(split: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The faces of one split by the FER+ majority: ``({part: bool mask (N,)}, maj7)``, ``maj7`` the majority in
    EKMAN7 order (-2: contempt, -1: no majority)."""
    y, maj = split["y7"], tfc.majority8(split["votes"])
    maj7 = np.where(maj < 7, maj, -2)  # contempt: a disputed face (FER2013 has no contempt)
    parts = {
        "agreed": maj == y,
        "disputed": (maj >= 0) & (maj7 != y),
        "no FER+ majority": maj < 0,
        "all": np.ones(len(y), bool),
    }
    return parts, maj7


def score(a: np.ndarray, y: np.ndarray, parts: dict[str, np.ndarray], maj7: np.ndarray) -> dict:
    """Accuracy and errors of answers ``a`` (N,) (EKMAN7 index, -1 none) on each part, and how often the answer on a
    disputed face is the crowd's majority."""
    right = a == y
    out = {
        k: {"accuracy_pct": round(100 * float(right[m].mean()), 2), "errors": int((~right[m]).sum())}
        for k, m in parts.items()
    }
    out["disputed: answers the FER+ majority (%)"] = round(100 * float((a == maj7)[parts["disputed"]].mean()), 2)
    return out


def held_out_answers(weights: Path, held_out: dict[str, np.ndarray]) -> np.ndarray:
    """Answers (EKMAN7 index) of a weights file (a run's ``.pt`` or a package file) on the held-out faces: the
    float torch network in process, one pass at its input side (``predict`` runs the int8 graph of the same network,
    which gives the same answer on about 98 % of faces: ``benchmarks/face_int8_agreement.json``)."""
    return tfc.logits_of(tfc.inference_net(weights), held_out["x"])[:, :7].argmax(1)


def table(res: dict, parts: dict, command: str, title: str, intro: str) -> str:
    lines = [
        title,
        "",
        intro,
        "",
        "| system | "
        + " | ".join(f"{k} ({res['faces'][k]:,} faces): accuracy % / errors" for k in parts)
        + " | disputed: answers the crowd's majority % |",
        "|---|" + "---|" * (len(parts) + 1),
    ]
    for system, r in res["systems"].items():
        cells = " | ".join(f"{r[k]['accuracy_pct']:.1f} / {r[k]['errors']}" for k in parts)
        lines.append(f"| {system} | {cells} | {r['disputed: answers the FER+ majority (%)']:.1f} |")
    return "\n".join([*lines, "", f"Command: `{command}`", ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=REPO / "../proxy-cache")
    ap.add_argument("--out", type=Path, help="markdown here, the numbers beside it as .json")
    ap.add_argument(
        "--held-out",
        type=Path,
        nargs="+",
        metavar="WEIGHTS",
        help="instead of PrivateTest through the proxy cache: score these weights files in process on the third of "
        "PublicTest that the networks trained with --val-train 0.67 never saw (validation: no test look)",
    )
    args = ap.parse_args()
    root = DATA / "fer2013"
    with tempfile.TemporaryDirectory() as tmp:  # load_split caches as .npz: not kept
        split = tfc.load_split(root, "val" if args.held_out else "test", Path(tmp))
    if args.held_out:
        split = tfc.split_val(split, 0.67)[1]  # the cut train_face_cnn.py --val-train 0.67 keeps out
    parts, maj7 = split_parts(split)
    y = split["y7"]
    res = {"faces": {k: int(v.sum()) for k, v in parts.items()}, "systems": {}}
    if args.held_out:
        torch.set_num_threads(2)
        for w in args.held_out:
            res["systems"][str(w)] = score(held_out_answers(w, split), y, parts, maj7)
        title = "# FER2013 PublicTest, the held-out third: the faces the FER+ crowd agrees with, and those it disputes"
        intro = "Issue 20, validation: the float networks in process, one pass."
    else:
        names = [f.name for c in EKMAN7 for f in sorted((root / "test" / c).glob("*.jpg"))]
        for fname, system in SYSTEMS.items():
            run = args.cache / "runs" / fname
            if not run.exists():
                raise SystemExit(f"{run} is missing: run benchmarks/face_proxies.py first (--cache {args.cache})")
            got = answers(run)
            res["systems"][system] = score(np.array([got.get(n, -1) for n in names]), y, parts, maj7)
        title = "# FER2013 PrivateTest: errors on the faces the FER+ crowd agrees with, and on those it disputes"
        intro = "Issue 20."
    command = "python benchmarks/fer2013_label_agreement.py"
    command += " --held-out " + " ".join(map(str, args.held_out)) if args.held_out else ""
    command += f" --out {args.out}" if args.out else ""
    text = table(res, parts, command, title, f"{intro} {SUMMARY}")
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
