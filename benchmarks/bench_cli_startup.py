"""Wall time of the one-pair command line (``lipsim distance a.jpg b.jpg``, default model) against a bare
``python -c "import torch"``, each a whole fresh process, alternated A B A B so machine drift hits both.

Target (issue 15): at most 1.5 s above the bare torch import. Also times ``import lipsim_tm`` and
``import torchmetrics`` alone, to show what the lazy metric import saves.

    python benchmarks/bench_cli_startup.py --repeats 10
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_description, timing_parser, write_json

TARGET_OVERHEAD_S = 1.5


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = timing_parser(__doc__, repeats=10)
    args = parser.parse_args()
    from lipsim_tm.commands.demo import shipped_photos

    python = sys.executable
    with shipped_photos() as photos, tempfile.TemporaryDirectory():
        a, b = (str(p) for p in photos[:2])
        commands = {
            "import torch": [python, "-c", "import torch"],
            "lipsim distance (default model)": [python, "-m", "lipsim_tm.cli", "distance", a, b],
            "import lipsim_tm": [python, "-c", "import lipsim_tm"],
            "import torchmetrics": [python, "-c", "import torchmetrics"],
        }
        for command in commands.values():  # warm-up: file cache, bytecode
            wall(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                times[name].append(wall(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    overhead = medians["lipsim distance (default model)"] - medians["import torch"]
    result = {
        "machine": machine_description(),
        "command": "python benchmarks/bench_cli_startup.py " + " ".join(sys.argv[1:]),
        "photos": [Path(a).name, Path(b).name],
        "median_wall_s": medians,
        "min_wall_s": {name: min(values) for name, values in times.items()},
        "cli_overhead_over_import_torch_s": overhead,
        "target_s": TARGET_OVERHEAD_S,
        "target_met": overhead <= TARGET_OVERHEAD_S,
    }
    print(f"{'command':<34}{'median s':>10}{'min s':>10}")
    for name in commands:
        print(f"{name:<34}{medians[name]:>10.3f}{result['min_wall_s'][name]:>10.3f}")
    verdict = "met" if result["target_met"] else "MISSED"
    print(f"one-pair CLI minus bare import torch: {overhead:.3f} s (target <= {TARGET_OVERHEAD_S} s: {verdict})")
    print(f"wrote {write_json('cli-startup', result, args.out_dir)}")


if __name__ == "__main__":
    main()
