#!/usr/bin/env bash
# Distilled students of the face CNN and their average (the last steps of scripts/face_cnn_v6.sh and face_cnn_v7.sh):
# one student a seed, warm-started from INIT and distilled (Hinton et al., 2015) from the TEACHERS' flip-pass
# probabilities on the training faces beside the labels (--teacher, --distill 0.7; 3 epochs, learning rate 2e-4,
# version 5's loss), then the students' last epochs averaged with their batch-norm statistics (--bn average) into
# OUT/students/swa.pt, the first student's history beside it (the export report's epoch table).
# CONSISTENT=1 (environment): the teachers read each augmented batch as the student sees it (--consistent; Beyer et
# al., CVPR 2022, "Knowledge distillation: a good teacher is patient and consistent"), one pass each, not the flip pass.
# EPOCHS, LR (environment; default 3 and 2e-4): the students' schedule; each student is on INIT's trunk.
# DISTILL (environment; default 0.7): the weight of the teachers' probabilities in the loss (--distill).
# DATA_ARGS (environment, optional): more training faces, passed to every step, e.g.
#   "--val-train 0.67 --expw-faces $EMOCONTEXT_DATA/packs/expw_faces64.npz"
# The teachers' probabilities are computed once, by the first student, and shared with the others through CACHE.
# Resumable: every student checkpoints each epoch; rerunning continues where it stopped.
# Usage: bash scripts/face_cnn_students.sh INIT CACHE OUT SEED... -- TEACHER...
#   CACHE: a run's FER2013 cache folder to share (train_face_cnn.py writes OUT/cache); students in OUT/student_SEED
set -euo pipefail
init=${1:?usage: face_cnn_students.sh INIT CACHE OUT SEED... -- TEACHER...}
cache=${2:?CACHE}
out=${3:?OUT}
shift 3
seeds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do seeds+=("$1"); shift; done
shift || true
teachers=("$@")
if [ ${#seeds[@]} -eq 0 ] || [ ${#teachers[@]} -eq 0 ]; then
    echo "usage: face_cnn_students.sh INIT CACHE OUT SEED... -- TEACHER..." >&2
    exit 2
fi
extra=()
[ "${CONSISTENT:-0}" = 1 ] && extra=(--consistent)
read -r -a data_args <<< "${DATA_ARGS:-}"
epochs=${EPOCHS:-3}
students=()
for seed in "${seeds[@]}"; do
    run="$out/student_$seed"
    mkdir -p "$run"
    [ -e "$run/cache" ] || ln -s "$(realpath "$cache")" "$run/cache"
    python scripts/train_face_cnn.py --init "$init" --out "$run" --epochs "$epochs" --targets fer2013 \
        --aux-ferplus 0.5 --logit-adjust 1.0 --lr "${LR:-2e-4}" --seed "$seed" --keep-epochs --threads 2 \
        --teacher "${teachers[@]}" --distill "${DISTILL:-0.7}" "${extra[@]}" "${data_args[@]}"
    students+=("$run/epoch_$((epochs - 1)).pt")
done
mkdir -p "$out/students"
[ -e "$out/students/cache" ] || ln -s "$(realpath "$cache")" "$out/students/cache"
cp "$out/student_${seeds[0]}/history.json" "$out/students/history.json"
python scripts/train_face_cnn.py --out "$out/students" --targets fer2013 --bn average "${data_args[@]}" --average "${students[@]}"
