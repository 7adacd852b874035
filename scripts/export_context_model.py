"""Export a trained ExpW context-aware model as the package's default (``weights/context_model_expw.pt``).

The model is the shipped row of ``benchmarks/expw_ablation.py`` (``caer_net_features``
with context attention and adaptive fusion on the frozen face CNN feature and the face-hidden
EfficientNet-Lite0 map, trained with face dropout 0.2 so that frames without a face get a
trained context-only answer). This script copies its ``best.pt`` to float16, records the signature of
the feature store it was trained on (so :class:`emocontext.Predictor` refuses other extractors)
and its ExpW test results from the ablation's JSON.

    python benchmarks/expw_ablation.py --rows 15 --epochs 20 --patience 5 --out benchmarks/expw_ablation.md
    python scripts/export_context_model.py      # the row's checkpoint as the results JSON names it
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from emocontext.data.datasets import FeatureSequenceDataset, collate
from emocontext.features.store import FeatureStore
from emocontext.labels import EKMAN7
from emocontext.metrics import accuracy
from emocontext.pretrained import CONTEXT_MODEL_FILE, export_context_model, load_context_model
from emocontext.train import manifest_from_store

ROW = "F+C+cA+fA = CAER-Net, face dropout 0.2"


@torch.inference_mode()
def test_scores(model, store: FeatureStore) -> dict:
    """ExpW test accuracy of the exported (float16-rounded) model, with the faces and with every face
    treated as missing (the context-only answer that frames without a face get)."""
    test = FeatureSequenceDataset(store, manifest_from_store(store, EKMAN7).split("test"), EKMAN7)
    y = np.asarray(test.labels)
    out = {}
    for key, hide in (("test_accuracy_exported", False), ("test_accuracy_no_face", True)):
        probs = []
        for batch in DataLoader(test, batch_size=64, collate_fn=collate):
            if hide:
                batch["face_mask"] = torch.zeros_like(batch["mask"])
            probs.append(model(batch).logits.softmax(-1))
        out[key] = accuracy(y, torch.cat(probs).numpy())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=Path("runs/expw_store"))
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the row's checkpoint in --results")
    ap.add_argument("--results", type=Path, default=Path("benchmarks/expw_ablation.json"))
    ap.add_argument("--row", default=ROW, help="which row of the results JSON the checkpoint is")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/emocontext/weights" / CONTEXT_MODEL_FILE
    )
    args = ap.parse_args()
    store = FeatureStore(args.store)
    rows = {r["row"]: r for r in json.loads(args.results.read_text()) if r.get("input", "features") == "features"}
    if args.row not in rows:
        raise SystemExit(f"{args.results}: no row {args.row!r} (rows: {', '.join(rows)})")
    r = rows[args.row]
    checkpoint = args.checkpoint or Path(r["checkpoint"])
    card = {
        "data": "ExpW (5,705 faces in 5,408 web photos; the dataset's face boxes and train/val/test splits)",
        "recipe": "benchmarks/expw_ablation.py: Adam 1e-4, batch 32, face dropout 0.2, early stopping on val macro mAP",
        "command": r.get("command", "python benchmarks/expw_ablation.py --rows 15")
        + " && python scripts/export_context_model.py",
        "test_accuracy": r["accuracy"],
        "test_accuracy_ci95": r["accuracy_ci"],
        "test_macro_map": r["macro_map"],
        "test_macro_map_ci95": r["macro_map_ci"],
    }
    out = export_context_model(checkpoint, store.signature, args.out, card=card)
    loaded = load_context_model(out)  # round trip: the file that ships loads
    card.update(test_scores(loaded.model, store))
    out = export_context_model(checkpoint, store.signature, args.out, card=card)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {loaded.name}, labels {', '.join(loaded.labels)}")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
