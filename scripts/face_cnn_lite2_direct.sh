#!/usr/bin/env bash
# Trial (issue 20, FER2013 bar): one one-pass network on the larger EfficientNet-Lite2 trunk, trained from its
# ImageNet weights (no separate Lite2 teacher: the chain that reached 68.24 % took about 4 CPU hours), on version 9's
# faces (FER2013 train + two thirds of PublicTest + ExpW's training faces, aligned views P = 0.5) and distilled from the
# shipped versions 9, 8 and 7 (their flip-pass probabilities) beside the labels. benchmarks/face_lite2_direct_trial.md
# has the rule and the numbers.
#   stage 1: 12 epochs, learning rate 1e-3 (the Lite2 teacher's), one warm-up epoch then cosine, seed 141, about 6.8 CPU
#            minutes an epoch on 2 cores; then its last three epochs averaged (OUT/swa.pt, batch-norm statistics
#            averaged), which read higher on the held-out third of PublicTest than the last epoch (the trial's one
#            choice, on validation; both numbers are printed)
#   stage 2: 3 more epochs from OUT/swa.pt, learning rate 2e-4, seed 142 (OUT/stage2/epoch_2.pt), 21 CPU minutes
#   stage 3: 8 more epochs from OUT/stage2/epoch_2.pt (23 in all, near the ~25 of the Lite2 chain that reached 68 %),
#            learning rate 5e-4 (one warm-up epoch, cosine), seed 143, about 55 CPU minutes; then its last three epochs
#            averaged (OUT/stage3/swa.pt); the candidate is whichever of the two reads higher on the held-out third
# Every epoch checkpoints, so rerunning continues where it stopped.
# Usage: bash scripts/face_cnn_lite2_direct.sh V9 V8 V7 CACHE [OUT]
#   V9 V8 V7: the package files (git show <commit>:src/emocontext/weights/face_cnn_fer2013.pt; 51a4f50: 9, 946c68f: 8, 559a97f: 7)
#   CACHE: a run's cache folder holding the FER2013 splits and the aligned views (scripts/face_cnn_aligned.sh's OUT/cache)
#   The teachers' probabilities are computed on the first run (about 15 minutes) unless CACHE already holds them
#   (each teacher's are cached there by itself, keyed by the weights file's contents, its input side and the faces).
set -euo pipefail
usage="usage: face_cnn_lite2_direct.sh V9 V8 V7 CACHE [OUT]"
teachers=("${1:?$usage}" "${2:?$usage}" "${3:?$usage}")
cache=${4:?$usage}
out=${5:-runs/face_cnn_lite2_direct}
faces=(--targets fer2013 --val-train 0.67 --expw-faces "${EMOCONTEXT_DATA:-../shared/data}/packs/expw_faces64.npz")
train=("${faces[@]}" --aligned-views 0.5 --aux-ferplus 0.5 --logit-adjust 1.0 --keep-epochs --threads 2
    --teacher "${teachers[@]}" --distill 0.7)
link_cache() { mkdir -p "$1" && { [ -e "$1/cache" ] || ln -s "$(realpath "$cache")" "$1/cache"; }; }
# stage DIR INIT EPOCHS LR SEED: more epochs from INIT into DIR, with stage 1's faces, teachers (their probabilities
# cached in CACHE) and losses
stage() {
    link_cache "$1"
    python scripts/train_face_cnn.py --init "$2" --out "$1" --epochs "$3" --lr "$4" --seed "$5" "${train[@]}"
}
link_cache "$out"
python scripts/train_face_cnn.py --trunk efficientnet_lite2 --out "$out" --epochs 12 --lr 1e-3 --seed 141 "${train[@]}"
python scripts/train_face_cnn.py --out "$out" "${faces[@]}" --average 9-11 --bn average
stage "$out/stage2" "$out/swa.pt" 3 2e-4 142
stage "$out/stage3" "$out/stage2/epoch_2.pt" 8 5e-4 143
python scripts/train_face_cnn.py --out "$out/stage3" "${faces[@]}" --average 5-7 --bn average
