#!/usr/bin/env bash
# Trial (issue 20, FER2013 bar): one one-pass network on the larger EfficientNet-Lite2 trunk, trained from its
# ImageNet weights in one run (no separate Lite2 teacher: the chain that reached 68.24 % took about 4 CPU hours), on
# version 9's faces (FER2013 train + two thirds of PublicTest + ExpW's training faces, aligned views P = 0.5) and
# distilled from the shipped versions 9, 8 and 7 (their cached flip-pass probabilities, the version 10 trial's), beside
# the labels; 12 epochs, learning rate 1e-3 (the Lite2 teacher's), one warm-up epoch then cosine; seed 141. About 7.7
# CPU minutes an epoch on 2 cores; every epoch checkpoints, so rerunning continues where it stopped. What is measured
# and shipped is the last epoch (no choice among epochs): benchmarks/face_lite2_direct_trial.md.
# Usage: bash scripts/face_cnn_lite2_direct.sh V9 V8 V7 CACHE [OUT]
#   V9 V8 V7: the package files (git show <commit>:src/emocontext/weights/face_cnn_fer2013.pt; 51a4f50: 9, 946c68f: 8, 559a97f: 7)
#   CACHE: a run's cache folder holding the FER2013 splits and the aligned views (scripts/face_cnn_aligned.sh's OUT/cache)
#   The teachers' probabilities are computed on the first run (about 15 minutes) unless OUT/teacher_probs.npz exists
#   (e.g. copied from the version 10 trial's OUT/student_131: the same teachers, named alike, on the same faces).
set -euo pipefail
usage="usage: face_cnn_lite2_direct.sh V9 V8 V7 CACHE [OUT]"
teachers=("${1:?$usage}" "${2:?$usage}" "${3:?$usage}")
cache=${4:?$usage}
out=${5:-runs/face_cnn_lite2_direct}
mkdir -p "$out"
[ -e "$out/cache" ] || ln -s "$(realpath "$cache")" "$out/cache"
python scripts/train_face_cnn.py --trunk efficientnet_lite2 --out "$out" --epochs 12 --lr 1e-3 --targets fer2013 \
    --aux-ferplus 0.5 --logit-adjust 1.0 --seed 141 --keep-epochs --threads 2 --teacher "${teachers[@]}" --distill 0.7 \
    --val-train 0.67 --expw-faces "${EMOCONTEXT_DATA:-../shared/data}/packs/expw_faces64.npz" --aligned-views 0.5
