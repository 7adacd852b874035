#!/usr/bin/env bash
# A "model soup" of the face CNN (Wortsman et al., ICML 2022, "Model soups: averaging weights of multiple
# fine-tuned models improves accuracy without increasing inference time"): several short fine-tunes of the
# shipped weights, each with its own seed (its own batch order and augmentation), their final weights averaged
# uniformly, batch-norm statistics re-estimated on the training faces. Inference costs what one model costs.
#
# Resumable: every ingredient checkpoints each epoch; rerunning the script continues where it stopped.
# Usage: bash scripts/face_cnn_soup.sh [OUT] [SEEDS...]      (default runs/face_cnn_soup, seeds 21 22 23)
# Then:  python scripts/train_face_cnn.py --out OUT --targets fer2013 --export --from swa.pt --export-to DIR
set -euo pipefail
out=${1:-runs/face_cnn_soup}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(21 22 23)
epochs=${SOUP_EPOCHS:-3}
lr=${SOUP_LR:-2e-4}
init=${SOUP_INIT:-src/emocontext/weights/face_cnn_fer2013.pt}
mkdir -p "$out"
finals=()
for seed in "${seeds[@]}"; do
    run="$out/seed_$seed"
    mkdir -p "$run"
    [ -e "$run/cache" ] || { [ -d "$out/cache" ] && ln -s "$(realpath "$out/cache")" "$run/cache"; } || true
    python scripts/train_face_cnn.py --init "$init" --out "$run" --epochs "$epochs" --targets fer2013 \
        --aux-ferplus 0.5 --logit-adjust 1.0 --lr "$lr" --seed "$seed" --keep-epochs --threads 2
    [ -d "$out/cache" ] || cp -r "$run/cache" "$out/cache"
    finals+=("$run/epoch_$((epochs - 1)).pt")
done
python scripts/train_face_cnn.py --out "$out" --targets fer2013 --average "${finals[@]}" --threads 2
