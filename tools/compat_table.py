"""The compatibility table (markdown) from the logs of ``tools/run_matrix.sh``: one row per tox env with the
versions it really ran (the ``VERSIONS`` line tox.ini prints), pytest's passed/skipped/failed counts, wall
time, disk use and date. ``python tools/compat_table.py .tox-logs [--json docs/compatibility.json]``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

COUNTS = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?)")


def row(log: Path) -> dict[str, object]:
    text = log.read_text(errors="replace")
    meta = json.loads(log.with_suffix(".json").read_text())
    versions = re.search(r"VERSIONS python (\S+) torch (\S+) torchmetrics (\S+) numpy (\S+)", text)
    summary = [line for line in text.splitlines() if re.match(r"^=+ .*(passed|failed).* in [\d.]+s", line)]
    counts = {kind.rstrip("s"): int(n) for n, kind in COUNTS.findall(summary[-1])} if summary else {}
    python, torch, torchmetrics, numpy = versions.groups() if versions else ("?",) * 4
    return {
        "env": meta["env"],
        "python": python,
        "torch": torch,
        "torchmetrics": torchmetrics,
        "numpy": numpy,
        "passed": counts.get("passed", 0),
        "skipped": counts.get("skipped", 0),
        "failed": counts.get("failed", 0) + counts.get("error", 0),
        "exit": meta["exit"],
        "minutes": round(meta["seconds"] / 60, 1),
        "disk_gb": round(meta["disk_mb"] / 1024, 1),
        "date": meta["date"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = [row(log) for log in sorted(args.logdir.glob("*.log"))]
    print("| tox env | Python | torch | torchmetrics | numpy | passed | skipped | failed | minutes | disk GB | date |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['env']}` | {r['python']} | {r['torch']} | {r['torchmetrics']} | {r['numpy']} | {r['passed']}"
            f" | {r['skipped']} | {r['failed']} | {r['minutes']} | {r['disk_gb']} | {r['date']} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
