"""FER+ and FER2013 test accuracy measured through the user's command, ``emocontext predict --detector none``.

Runs ``emocontext predict <fer2013>/test --detector none --jsonl <out>`` (every 48x48 JPEG of PrivateTest is
one face: no detector, the image is the crop), then scores the JSON lines:

* FER+ (Barsoum et al., ICMI 2016) majority vote over 8 classes, faces whose majority is unknown or
  not-a-face (or without votes) excluded: the ``label`` of each line against the majority of
  ``fer2013/ferplus.csv``;
* FER2013's own 7 labels (the folder name): the argmax over the 7 non-contempt probabilities.

and compares both with the training script's in-process measure (``scripts/train_face_cnn.py --measure``:
``FaceExtractor`` on the same faces); the two must agree.

    python benchmarks/ferplus_predict.py --out benchmarks/ferplus_predict.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name

from emocontext.labels import EKMAN7, EKMAN8

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_face_cnn import FERPLUS_COLUMNS, load_split, majority8, measure_extractor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EMOCONTEXT_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = args.data / "fer2013"
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "test.jsonl"
        cmd = ["emocontext", "predict", str(root / "test"), "--detector", "none", "--jsonl", str(jsonl), "-q"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=False)
        seconds = time.perf_counter() - t0
        lines = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    votes = {}
    with open(root / "ferplus.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            votes[row["path"]] = [float(row[c] or 0) for c in FERPLUS_COLUMNS]
    hits8 = hits7 = n8 = n7 = 0
    failed = 0
    for d in lines:
        rel = Path(d["path"]).resolve().relative_to(root.resolve()).as_posix()
        if not d.get("probabilities"):
            failed += 1
            continue
        probs = np.array([d["probabilities"][name] for name in EKMAN8.names])
        truth7 = EKMAN7.index(rel.split("/")[1])
        n7 += 1
        hits7 += int(probs[:7].argmax() == truth7)
        maj = majority8(np.array([votes.get(rel, [0.0] * 10)]))[0]
        if maj >= 0:
            n8 += 1
            hits8 += int(EKMAN8.index(d["label"]) == maj)
    via_cli = {"ferplus_acc": hits8 / max(1, n8), "ferplus_n": n8, "fer2013_acc": hits7 / max(1, n7), "fer2013_n": n7}
    split = load_split(root, "test", Path(tempfile.mkdtemp()))
    direct = measure_extractor(os.environ.get("EMOCONTEXT_FACE_WEIGHTS") or None, {"test": split})
    res = {
        "command": " ".join(cmd[:3] + ["<fer2013>/test"] + cmd[4:6] + ["--jsonl", "<out>", "-q"]),
        "files": len(lines),
        "failed": failed,
        "seconds": seconds,
        "via_predict": via_cli,
        "via_training_script_measure": {k: direct[f"test_{k}"] for k in via_cli},
        "cpu": cpu_name(),
    }
    print(json.dumps(res, indent=2))
    if args.out:
        m, c = res["via_training_script_measure"], via_cli
        rows = [
            ("FER+ test, majority vote, 8 classes", "ferplus"),
            ("FER2013 PrivateTest, 7 classes (contempt mapped out)", "fer2013"),
        ]
        table = "\n".join(
            f"| {title} | {c[k + '_acc']:.4f} ({c[k + '_n']} faces) | {m[k + '_acc']:.4f} ({m[k + '_n']} faces) |"
            for title, k in rows
        )
        args.out.write_text(
            f"""# FER+ and FER2013 PrivateTest through `emocontext predict --detector none`

| measure | `predict --detector none` (the CLI, JSON lines) | `scripts/train_face_cnn.py --measure` (in process) |
|---|---|---|
{table}

{res["files"]} files read by the CLI ({res["failed"]} without an answer) in {seconds:.0f} s ({res["cpu"]}).
`python benchmarks/ferplus_predict.py --out {args.out}`
"""
        )


if __name__ == "__main__":
    main()
