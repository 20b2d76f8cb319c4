#!/usr/bin/env bash
# The CUDA checks of issue 5 in one run, for a machine with an NVIDIA GPU (about 10 minutes on an H200):
#
#     OUT=/some/folder bash benchmarks/gpu_check.sh
#
# 1. the CUDA-parametrised tests (the `device` fixture adds "cuda" whenever CUDA is present; the hypothesis
#    Lipschitz property tests among them), 2. bench_peers.py --device cuda: every section but compile,
#    3. the compile section (inductor + triton) with what time is left. Needs python3 with torch (CUDA),
#    torchmetrics, numpy, pillow, pytest and hypothesis; the package runs from src/ (no install).
# Results (8 files): $OUT/gpu.txt, cuda-tests.log, bench.log, peers.json, peers.md, compile.log, compile/peers.{json,md}.
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 2)" || { echo "no CUDA GPU here"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" >>"$OUT/gpu.txt"
timeout 180 python3 -m pytest tests -q -k cuda -p no:cacheprovider 2>&1 | tee "$OUT/cuda-tests.log"
timeout 300 python3 benchmarks/bench_peers.py --device cuda --repeats 5 --default-weights default --out-dir "$OUT" \
    --sections pairs two_afc latency memory scaling roofline 2>&1 | tee "$OUT/bench.log"
mkdir -p "$OUT/compile"
timeout 150 python3 benchmarks/bench_peers.py --device cuda --repeats 5 --default-weights default \
    --out-dir "$OUT/compile" --sections compile 2>&1 | tee "$OUT/compile.log"
