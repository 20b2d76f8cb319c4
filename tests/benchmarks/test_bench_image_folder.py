"""Smoke test: the image-folder benchmark runs end to end on a tiny tree and writes positive rates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_image_folder


def test_quick_run_writes_listing_and_view_rates(tmp_path: Path) -> None:
    argv = ["--classes", "2", "--per-class", "16", "--batch-size", "8", "--workers", "0", "1",
            "--list-classes", "3", "--list-per-class", "10", "--repeats", "1", "--out-dir", str(tmp_path)]  # fmt: skip
    bench_image_folder.main(argv)
    saved = json.loads((tmp_path / "image-folder.json").read_text())
    assert saved["listing"]["files"] == 30
    assert saved["listing"]["speedup"] > 0
    assert [(row["workers"], row["jitter"]) for row in saved["views"]["rows"]] == [
        (0, True),
        (1, True),
        (0, False),
        (1, False),
    ]
    assert all(row["images_per_s"] > 0 for row in saved["views"]["rows"])
