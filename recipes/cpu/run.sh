#!/usr/bin/env bash
# Recipe "cpu-tiny64": a small LipSim metric trained on a laptop CPU in minutes, from any folder of photos.
#
#     bash recipes/cpu/run.sh [PHOTOS] [WORK]
#
# PHOTOS defaults to the three photos shipped with the package; WORK (default runs/cpu-tiny64) receives the run
# (checkpoints/, log.csv, eval.csv, export.pt) and report/ (robustness.json and .png). The student is the tiny64
# architecture (64x64 input), trained from scratch with the 2AFC hinge loss on synthetic triplets: crops of the
# photos with two distortions of one family at different strengths, the milder one the "human" choice. Re-running
# resumes (or leaves a complete run as it is). Measured results: README, "Train a model on a CPU".
set -euo pipefail
PHOTOS=${1:-$(python -c "from importlib.resources import files; print(files('lipsim_tm.assets') / 'photos')")}
WORK=${2:-runs/cpu-tiny64}
lipsim train finetune --format synthetic --data-dir "$PHOTOS" --model tiny64 \
  --synthetic-length 4096 --synthetic-val-length 512 --batch-size 32 --epochs 2 \
  --threads 2 --out "$WORK" --resume auto --no-progress
lipsim robustness "$PHOTOS" --format synthetic --weights "$WORK/export.pt" --length 512 --seed 1 \
  --eps 0 36/255 72/255 108/255 --steps 20 --threads 2 --out "$WORK/report" --no-progress
