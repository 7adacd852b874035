#!/usr/bin/env bash
# The chain that made face CNN version 6 (the shipped weights), from version 5. About 100 CPU minutes on 2 cores;
# every step checkpoints or is cheap, so rerunning the script continues where it stopped.
#   1. a model soup of version 5 (scripts/face_cnn_soup.sh: three 3-epoch fine-tunes, seeds 21-23), averaged
#      with the batch-norm statistics averaged too (--bn average): FER2013 67.3 %, CK+ 76.1 % / 66.9 % with the
#      flip pass (benchmarks/face_soup_trial.md);
#   2. two students warm-started from that soup, each distilled (Hinton et al., 2015) from the three ingredients'
#      flip-pass probabilities on the training faces (--teacher, --distill 0.7) beside the labels, 3 epochs,
#      seeds 31 and 32;
#   3. the students' average (statistics averaged), exported: version 6 reads each face once (no flip pass).
#   (steps 2 and 3: scripts/face_cnn_students.sh)
# Usage: bash scripts/face_cnn_v6.sh V5_WEIGHTS [OUT]
#   V5_WEIGHTS: version 5's file: git show 507c840:src/emocontext/weights/face_cnn_fer2013.pt > v5.pt
# Then:  python scripts/train_face_cnn.py --out OUT/students --targets fer2013 --export --from swa.pt \
#            --report benchmarks/face_cnn.md         (writes the package weights)
#        python scripts/export_onnx.py --only face     (the int8 graph predict runs; its SHA-256 into the record)
set -euo pipefail
v5=${1:?usage: face_cnn_v6.sh V5_WEIGHTS [OUT]}
out=${2:-runs/face_cnn_v6}
mkdir -p "$out"
SOUP_INIT="$v5" bash scripts/face_cnn_soup.sh "$out/soup" 21 22 23
ingredients=("$out"/soup/seed_{21,22,23}/epoch_2.pt)
python scripts/train_face_cnn.py --out "$out/soup" --targets fer2013 --bn average --average "${ingredients[@]}"
bash scripts/face_cnn_students.sh "$out/soup/swa.pt" "$out/soup/cache" "$out" 31 32 -- "${ingredients[@]}"
