#!/usr/bin/env bash
# The LipSim paper from ImageNet to the NIGHTS table with lipsim-tm alone (recipes/paper/README.md).
#
#   IMAGENET=/data/imagenet NIGHTS=/data/nights GPUS=8 bash recipes/paper/run.sh [stage]
#   SCALE=smoke WORK=/tmp/paper-smoke bash recipes/paper/run.sh        # the same commands in minutes on a CPU
#
# stage: all (default), distill, finetune, certify or robustness. Every stage can be re-run: training resumes
# from its newest checkpoint (--resume auto; a complete run is left as it is), evaluations are rewritten.
set -euo pipefail
SCALE=${SCALE:-paper}
WORK=${WORK:-$PWD/lipsim-paper}
STAGE=${1:-all}
LIPSIM=(python -m lipsim_tm.cli)

if [[ $SCALE == paper ]]; then
  : "${IMAGENET:?set IMAGENET to the ImageNet-1k folder holding train/<class>/*.JPEG}"
  : "${NIGHTS:?set NIGHTS to the NIGHTS folder holding data.csv, ref/ and distort/}"
  GPUS=${GPUS:-8}
  DEVICE=cuda
  TEACHER=${TEACHER:-dreamsim}
  # The official recipe (reference section 5); each value is also lipsim's default, spelled out here.
  STUDENT=(--model small)
  DISTILL=(--batch-size 512 --epochs 40 --lr 0.01 --betas 0.5 0.9 --warmup-steps 2000 --loss rmse
           --workers 8 --checkpoint-every 1000)
  FINETUNE=(--batch-size 32 --epochs 1 --margin 0.5 --workers 8)
  CERTIFY=(--batch-size 64 --workers 8)
  ROBUSTNESS=(--method apgd --steps 100 --restarts 1 --batch-size 64 --workers 8)
  RADII=(0 0.1412 0.2824 0.4235 1.0 2.0 3.0)   # 0, 36/255, 72/255, 108/255 (rounded), and the paper's l2 3.0
elif [[ $SCALE == smoke ]]; then
  IMAGENET=$WORK/data/imagenet
  NIGHTS=$WORK/data/nights
  GPUS=2   # two CPU processes (gloo) stand in for the GPUs
  DEVICE=cpu
  export LIPSIM_CACHE_DIR=$WORK/cache   # random teacher weights live here, never in the real cache
  export OMP_NUM_THREADS=1
  if [[ -z ${TEACHER:-} ]]; then
    if python -c "import dreamsim" 2>/dev/null; then TEACHER=dreamsim; else TEACHER=standin_teacher:make; fi
  fi
  export PYTHONPATH=recipes/paper${PYTHONPATH:+:$PYTHONPATH}   # standin_teacher, for machines without dreamsim
  STUDENT=(--model tiny32 --set-model channels=28 --set-model out_features=1792)   # 28 * 8 * 8 = 1792 features
  DISTILL=(--batch-size 8 --epochs 2 --warmup-steps 1 --workers 1 --checkpoint-every 2)
  FINETUNE=(--batch-size 4 --epochs 1 --margin 0.5 --image-size 32)
  CERTIFY=(--batch-size 3 --workers 1 --image-size 32)
  ROBUSTNESS=(--method apgd --steps 3 --restarts 1 --batch-size 3 --workers 1 --image-size 32)
  RADII=(0 0.1412 0.2824 0.4235 3.0)
  if [[ $STAGE == all || $STAGE == distill ]]; then
    random_teacher=()
    [[ $TEACHER == dreamsim ]] && random_teacher=(--dreamsim-random "$LIPSIM_CACHE_DIR")
    python recipes/paper/make_standins.py "$WORK/data" "${random_teacher[@]}"
  fi
else
  echo "SCALE must be paper or smoke, got $SCALE" >&2
  exit 2
fi
TORCHRUN=(python -m torch.distributed.run --standalone --nproc_per_node="$GPUS")
mkdir -p "$WORK/results"

if [[ $STAGE == all || $STAGE == distill ]]; then
  # Stage 1: distil the DreamSim ensemble (1792-d) into the 1-Lipschitz student on ImageNet, official views:
  # CenterCrop 224 + flip, and the colour-jittered copy. --batch-size is global (512 / GPUS per process).
  "${TORCHRUN[@]}" -m lipsim_tm.cli train distill --data-dir "$IMAGENET/train" --teacher "$TEACHER" \
    "${STUDENT[@]}" "${DISTILL[@]}" --crop center --device "$DEVICE" --out "$WORK/distill" \
    --resume auto --no-progress
fi
if [[ $STAGE == all || $STAGE == finetune ]]; then
  # Stage 2: fine-tune on NIGHTS train with the hinge loss, margin 0.5 (one process: one epoch of batch 32).
  "${LIPSIM[@]}" train finetune --init-from "$WORK/distill/export.pt" --format nights --data-dir "$NIGHTS" \
    "${FINETUNE[@]}" --device "$DEVICE" --out "$WORK/finetune" --resume auto --no-progress
fi
if [[ $STAGE == all || $STAGE == certify ]]; then
  # Natural 2AFC and certified accuracy on NIGHTS test at 36/72/108 /255 (per triplet in the JSON).
  "${TORCHRUN[@]}" -m lipsim_tm.cli certify "$NIGHTS" --format nights --weights "$WORK/finetune/export.pt" \
    --eps 36/255 72/255 108/255 "${CERTIFY[@]}" --device "$DEVICE" --per-triplet \
    --out "$WORK/results/certify.json" --no-progress
fi
if [[ $STAGE == all || $STAGE == robustness ]]; then
  # Certified and empirical (APGD, l2, on the reference) accuracy per budget on NIGHTS test.
  "${TORCHRUN[@]}" -m lipsim_tm.cli robustness "$NIGHTS" --format nights --weights "$WORK/finetune/export.pt" \
    --eps "${RADII[@]}" "${ROBUSTNESS[@]}" --device "$DEVICE" --out "$WORK/results" --no-progress
fi
