#!/usr/bin/env bash
# Everything that depends on the face CNN, in order, after a new face CNN is exported into the package
# (scripts/train_face_cnn.py --export). Each step writes its results file in benchmarks/; each is resumable
# or cheap. About 1 hour on 2 cores. Run from the repository root with the package installed:
#     bash benchmarks/rerun_face_cnn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

# 1. the face CNN itself: FER+ / FER2013 through FaceExtractor, and through the CLI (predict --detector none)
python scripts/train_face_cnn.py --measure
python benchmarks/ferplus_predict.py --out benchmarks/ferplus_predict.md
# 2. zero-shot transfer (ExpW faces at two crop margins, CK+ sequences) and the temporal aggregation study
python benchmarks/face_cnn_transfer.py --out benchmarks/face_cnn_transfer.md
python benchmarks/temporal_aggregation.py --out benchmarks/temporal_aggregation.md
# 3. ExpW rows on frozen features (a new store: the face CNN's signature changed) and the shipped context model
rm -rf runs/expw_store runs/expw_ablation
python benchmarks/expw_ablation.py --rows 0,1,3,5,14,15 --epochs 20 --patience 5 --out benchmarks/expw_ablation.md
python scripts/export_context_model.py
# 4. CK+ cross-validation, CREMA-D predictions, pipeline speed
python benchmarks/ckplus_cv.py --out benchmarks/ckplus_cv.md
python benchmarks/crema_d_predictions.py --out benchmarks/crema_d_predictions.md
python benchmarks/pipeline_speed.py --detector mtcnn --out benchmarks/pipeline_speed.md
