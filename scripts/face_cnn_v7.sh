#!/usr/bin/env bash
# Face CNN version 7 (issue 20): a larger teacher, distilled into the shipped Lite0 network. About 200 CPU minutes on
# 2 cores; every step checkpoints or is cheap, so rerunning the script continues where it stopped.
#   1. a teacher on the EfficientNet-Lite2 ImageNet trunk (--trunk efficientnet_lite2; last stage at stride 1 as in
#      FaceExpressionCNN), trained from ImageNet on version 5's recipe (FER2013 labels, logit-adjusted loss, FER+ votes
#      as an auxiliary head), 14 epochs, 80 px; training only, it never runs in predict;
#   2. two students warm-started from version 6 (the shipped Lite0), each distilled (Hinton et al., 2015) from the
#      mean flip-pass probabilities of version 6 and the Lite2 teacher on the training faces (--teacher,
#      --distill 0.7) beside the labels, 3 epochs, seeds 71 and 72 (scripts/face_cnn_students.sh);
#   3. two more, seeds 73 and 74, with the teachers reading each augmented batch as the student sees it
#      (CONSISTENT=1: --consistent; Beyer et al., CVPR 2022), in OUT/consistent;
#   4. the soup (Wortsman et al., ICML 2022): the four students' last epochs averaged, batch-norm statistics
#      averaged (OUT/soup/swa.pt), exported: one pass a face, as version 6. Chosen on PublicTest's selection score
#      (0.6796) over the soup with version 6 as a fifth member (0.6790) and every student alone (0.667-0.679).
# Usage: bash scripts/face_cnn_v7.sh V6_WEIGHTS [OUT]
#   V6_WEIGHTS: version 6's file (git show b81a4e6:src/emocontext/weights/face_cnn_fer2013.pt > v6.pt)
#   TEACHERS (environment, optional): the teacher files, default version 6 itself and OUT/teacher/epoch_13.pt
# Then:  python scripts/train_face_cnn.py --out OUT/soup --targets fer2013 --export --from swa.pt \
#            --report benchmarks/face_cnn.md         (writes the package weights)
#        python scripts/export_onnx.py --only face     (the int8 graph predict runs; its SHA-256 into the record)
set -euo pipefail
v6=${1:?usage: face_cnn_v7.sh V6_WEIGHTS [OUT]}
out=${2:-runs/face_cnn_v7}
mkdir -p "$out/teacher"
python scripts/train_face_cnn.py --trunk efficientnet_lite2 --out "$out/teacher" --epochs 14 --lr 1e-3 \
    --targets fer2013 --aux-ferplus 0.5 --logit-adjust 1.0 --seed 61 --keep-epochs --threads 2
read -r -a teachers <<< "${TEACHERS:-$v6 $out/teacher/epoch_13.pt}"
cache="$out/teacher/cache"
bash scripts/face_cnn_students.sh "$v6" "$cache" "$out" 71 72 -- "${teachers[@]}"
CONSISTENT=1 bash scripts/face_cnn_students.sh "$v6" "$cache" "$out/consistent" 73 74 -- "${teachers[@]}"
mkdir -p "$out/soup"
[ -e "$out/soup/cache" ] || ln -s "$(realpath "$cache")" "$out/soup/cache"
cp "$out/consistent/student_73/history.json" "$out/soup/history.json"
python scripts/train_face_cnn.py --out "$out/soup" --targets fer2013 --bn average --average \
    "$out"/student_{71,72}/epoch_2.pt "$out"/consistent/student_{73,74}/epoch_2.pt
