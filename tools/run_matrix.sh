#!/usr/bin/env bash
# Run tox envs one after another (default: every torch/torchmetrics env of tox.ini), each from scratch, and keep
# per env its log, wall time and disk use in LOGDIR (default .tox-logs); each env folder is deleted after its run
# (the CUDA builds take ~7 GB each). Then: python tools/compat_table.py LOGDIR
set -uo pipefail
cd "$(dirname "$0")/.."
logdir=${LOGDIR:-.tox-logs}
mkdir -p "$logdir"
envs=("$@")
[ ${#envs[@]} -gt 0 ] || envs=(floor floor-numpy1 middle core newest-tm-floor full)
for env in "${envs[@]}"; do
  start=$(date +%s)
  tox -e "$env" -r >"$logdir/$env.log" 2>&1
  code=$?
  end=$(date +%s)
  disk=$(du -sm ".tox/$env" 2>/dev/null | cut -f1)
  printf '{"env": "%s", "exit": %d, "seconds": %d, "disk_mb": %s, "date": "%s"}\n' \
    "$env" "$code" "$((end - start))" "${disk:-0}" "$(date -u +%Y-%m-%dT%H:%MZ)" >"$logdir/$env.json"
  rm -rf ".tox/$env"
done
