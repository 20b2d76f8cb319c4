"""Smoke test: the whole peer benchmark suite runs end to end in --quick mode (tiny networks, 1 repeat)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_peers


def test_quick_suite_writes_every_section(tmp_path: Path, single_thread: None) -> None:
    result = bench_peers.main(["--quick", "--out-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "peers-quick.json").read_text())
    assert set(bench_peers.SECTIONS) <= set(saved)
    models = {row["model"] for row in saved["pairs"]}
    assert models == {"lipsim-small", "lipsim-default", "official-style-small", *bench_peers.PEERS}
    assert all(row["pairs_per_s"] > 0 for row in saved["pairs"])
    assert {row["dtype"] for row in saved["pairs"]} == {"float32", "bfloat16"}
    assert all(row["certificate_overhead"] > 0 for row in saved["two_afc"])
    assert saved["memory"]["updates"] == bench_peers.QUICK.memory_updates
    assert {row["model"] for row in saved["compile"]} == {"lipsim-small", "lipsim-default"}
    assert all(row.get("speedup", 1) > 0 for row in saved["compile"])
    assert [row["batch"] for row in saved["roofline"]] == list(bench_peers.QUICK.batches)
    assert all(row["fraction_as_implemented"] > 0 for row in saved["roofline"])
    assert "random" in saved["default_model"]["weights"]
    assert any(name.startswith("certificate overhead") for name in result["targets"])
    table = (tmp_path / "peers-quick.md").read_text()
    assert "| lpips-alex |" in table
    assert "### Targets" in table


def test_bad_repeats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--repeats must be >= 1, got 0"):
        bench_peers.main(["--quick", "--repeats", "0", "--out-dir", str(tmp_path)])


def test_roofline_bytes_of_the_small_layer() -> None:
    config = bench_peers.LipSimBackbone("small").config
    moved = bench_peers.sll_conv_bytes(config, batch=2)
    pixels = 2 * 224 * 224
    assert moved["minimal"] == 2 * 45 * pixels * 4  # read x, write the output
    assert moved["as_implemented"] == (5 * 45 + 4 * 5) * pixels * 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_device_without_cuda_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--device cuda needs CUDA"):
        bench_peers.main(["--quick", "--device", "cuda", "--out-dir", str(tmp_path)])
