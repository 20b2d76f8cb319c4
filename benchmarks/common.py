"""Timing and machine-description helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the literal oracle lives in tests/oracle.py


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing_parser(description: str, *, repeats: int) -> argparse.ArgumentParser:
    """A parser with the options every timing script shares: ``--threads``, ``--repeats``, ``--out-dir``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=repeats, help=f"timed calls per number (default {repeats})")
    parser.add_argument("--out-dir", type=Path, default=BENCHMARKS_DIR / "results")
    return parser


def apply_timing_options(args: argparse.Namespace) -> None:
    """Check ``--repeats`` and set the torch thread count from ``--threads``."""
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def machine_description() -> dict[str, object]:
    """CPU model, core count, Python and torch versions, and the date, for results files."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_json(name: str, payload: dict[str, object], out_dir: Path | None = None) -> Path:
    """Write ``payload`` to ``<out_dir>/<name>.json`` (default ``benchmarks/results``) and return the path."""
    path = (BENCHMARKS_DIR / "results" if out_dir is None else out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
