#!/usr/bin/env bash
# Trial (issue 20, framing bar): version 8's students again, now also reading each training face as predict frames it
# (--aligned-views 0.5: found by MTCNN in the framing test's 384 px picture, aligned on the template). About 65 CPU
# minutes on 2 cores; every step checkpoints or is cheap, so rerunning the script continues where it stopped.
#   three students warm-started from version 8 (its package file), each distilled from the mean flip-pass
#   probabilities of the shipped versions 8, 7 and 6 (package files: git show <commit>:src/emocontext/weights/
#   face_cnn_fer2013.pt; the Lite2 and 112 px teachers of version 8 were not kept) beside the labels, version 8's
#   schedule and faces (3 epochs, learning rate 2e-4, --distill 0.7, --val-train 0.67, ExpW's training faces),
#   seeds 121-123, then their last epochs averaged (OUT/students/swa.pt). Fixed in advance, no choice among
#   candidates. Version 10's trial is the same with version 9 as start and first teacher, versions 8 and 7 beside it,
#   SEEDS="131 132 133" (benchmarks/face_aligned_views_trial.md).
# SEEDS (environment; default "121 122 123"): one student a seed.
# Usage: bash scripts/face_cnn_aligned.sh V8 V7 V6 [OUT]
#   e.g. mkdir -p runs/pkg && git show 946c68f:src/emocontext/weights/face_cnn_fer2013.pt > runs/pkg/v8.pt
#        (559a97f: version 7, 2101a88: version 6)
# Then:  python benchmarks/face_teacher_ensemble.py OUT/students/swa.pt --out benchmarks/face_aligned_views.json
#        python benchmarks/framing_alignment.py --weights OUT/students/swa.pt ...
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: face_cnn_aligned.sh V8 V7 V6 [OUT]" >&2
    exit 2
fi
out=${4:-runs/face_cnn_aligned}
mkdir -p "$out/cache"
# the first teacher is also where the students start
DATA_ARGS="--val-train 0.67 --expw-faces ${EMOCONTEXT_DATA:-../shared/data}/packs/expw_faces64.npz --aligned-views 0.5" \
    bash scripts/face_cnn_students.sh "$1" "$out/cache" "$out" ${SEEDS:-121 122 123} -- "$1" "$2" "$3"
