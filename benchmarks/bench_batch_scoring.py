"""Scoring many image pairs: ``lipsim distance DIR_A DIR_B`` against ``lipsim distance a b`` once per pair and
against ``LipSimDistance.update`` alone on tensors already in memory, at the same batch size.

    python benchmarks/bench_batch_scoring.py [--pairs 512] [--batch-size 32] [--workers 1] [--per-pair 8]

Pairs: crops of the photos shipped with the package (a: the crop, b: the crop JPEG-compressed and brightened),
written as PNG, either all 224x224 or of mixed sizes (sides 160-400 px; a and b of one size). The batch command and
the per-pair command are timed as whole processes (start-up, model load, decoding, the rows file); update alone is
timed in-process after a warm-up, on tensors decoded beforehand and grouped by size as the command groups them.
Writes benchmarks/results/batch-scoring.json.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageEnhance

from lipsim_tm.commands.demo import shipped_photos
from lipsim_tm.data import read_image
from lipsim_tm.metrics import LipSimDistance

from common import apply_timing_options, machine_description, timing_parser, write_json


def write_pairs(root: Path, count: int, *, mixed: bool, seed: int = 0) -> list[tuple[Path, Path]]:
    """``count`` pairs of PNG crops in ``root/a`` and ``root/b`` (same names)."""
    rng = random.Random(seed)
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    with shipped_photos() as photos:
        sources = [Image.open(p).convert("RGB") for p in photos]
    pairs = []
    for i in range(count):
        source = sources[i % len(sources)]
        width, height = (rng.randint(160, 400), rng.randint(160, 400)) if mixed else (224, 224)
        width, height = min(width, source.width), min(height, source.height)
        left, top = rng.randint(0, source.width - width), rng.randint(0, source.height - height)
        crop = source.crop((left, top, left + width, top + height))
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=rng.randint(20, 80))
        changed = ImageEnhance.Brightness(Image.open(buffer).convert("RGB")).enhance(rng.uniform(0.8, 1.2))
        name = f"pair{i:04d}.png"
        crop.save(root / "a" / name)
        changed.save(root / "b" / name)
        pairs.append((root / "a" / name, root / "b" / name))
    return pairs


def timed(argv: list[str]) -> float:
    """Seconds of one ``lipsim`` process; raises if it fails."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lipsim_tm.cli", *argv], check=True, capture_output=True)
    return time.perf_counter() - start


def update_alone(pairs: list[tuple[Path, Path]], batch_size: int, weights: str) -> float:
    """Seconds of ``LipSimDistance.update`` over every pair, batches of one size as the command makes them."""
    groups: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for a, b in pairs:
        x, y = read_image(a), read_image(b)
        groups.setdefault((tuple(x.shape), tuple(y.shape)), []).append((x, y))
    batches = []
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            batches.append((torch.cat([x for x, _ in chunk]), torch.cat([y for _, y in chunk])))
    metric = LipSimDistance(weights, certify_eps=36 / 255)
    metric.update(*batches[0])  # warm-up: rescaling caches, resize norms
    metric.reset()
    start = time.perf_counter()
    for x, y in batches:
        metric.update(x, y)
    metric.compute()
    return time.perf_counter() - start


def main() -> None:
    parser = timing_parser(__doc__, repeats=1)
    parser.add_argument("--pairs", type=int, default=512, help="pairs per case (default 512)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes of the batch command (default 1)")
    parser.add_argument("--per-pair", type=int, default=8, help="pairs scored one command each (default 8)")
    parser.add_argument("--weights", default="default", help="weights (default: the shipped model)")
    args = parser.parse_args()
    apply_timing_options(args)
    threads = ["--threads", str(torch.get_num_threads())]
    cases = []
    for mixed in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pairs = write_pairs(root, args.pairs, mixed=mixed)
            batch = ["distance", str(root / "a"), str(root / "b"), "--out", str(root / "rows.csv"), "--no-progress"]
            batch += ["--weights", args.weights, "--batch-size", str(args.batch_size), "--workers", str(args.workers)]
            batch_s = min(timed([*batch, *threads]) for _ in range(args.repeats))
            single = [["distance", str(a), str(b), "--weights", args.weights, *threads] for a, b in pairs]
            per_pair_s = sum(timed(argv) for argv in single[: args.per_pair]) / args.per_pair
            alone_s = update_alone(pairs, args.batch_size, args.weights)
        case = {
            "images": "mixed sizes (160-400 px sides)" if mixed else "224x224",
            "pairs": args.pairs,
            "batch_command_seconds": batch_s,
            "batch_command_pairs_per_s": args.pairs / batch_s,
            "per_pair_command_seconds": per_pair_s,
            "per_pair_command_pairs_per_s": 1 / per_pair_s,
            "update_alone_seconds": alone_s,
            "update_alone_pairs_per_s": args.pairs / alone_s,
        }
        case["batch_vs_update_alone"] = case["batch_command_pairs_per_s"] / case["update_alone_pairs_per_s"]
        case["batch_vs_per_pair"] = case["batch_command_pairs_per_s"] / case["per_pair_command_pairs_per_s"]
        cases.append(case)
        print(
            f"{case['images']}: batch command {case['batch_command_pairs_per_s']:.1f} pairs/s,"
            f" per-pair command {case['per_pair_command_pairs_per_s']:.2f} pairs/s,"
            f" update alone {case['update_alone_pairs_per_s']:.1f} pairs/s; batch/update alone"
            f" {case['batch_vs_update_alone']:.2f}x, batch/per-pair {case['batch_vs_per_pair']:.0f}x",
            flush=True,
        )
    result = {
        "machine": machine_description(),
        "command": "python benchmarks/bench_batch_scoring.py " + " ".join(sys.argv[1:]),
        "weights": args.weights,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "cases": cases,
        "targets": {"batch_vs_update_alone": 0.7, "batch_vs_per_pair": 20},
    }
    print(f"wrote {write_json('batch-scoring', result, args.out_dir)}")


if __name__ == "__main__":
    main()
