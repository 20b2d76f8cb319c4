"""Smoke tests: the certificate-arithmetic and CPU-kernel benchmarks run and record what they claim."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_certificates
import bench_cpu_kernels


def test_certificate_benchmark_times_every_rule(tmp_path: Path) -> None:
    rows = bench_certificates.main(
        ["--repeats", "1", "--batches", "1", "2", "--widths", "8", "--out-dir", str(tmp_path)]
    )
    saved = json.loads((tmp_path / "certificate-arithmetic.json").read_text())
    assert saved["rows"] == rows
    assert {(r["normalization"], r["certificate"]) for r in rows} == set(bench_certificates.CASES)
    assert all(r["ms"] > 0 for r in rows)


def test_kernel_variants_compute_the_library_layer(tmp_path: Path) -> None:
    result = bench_cpu_kernels.main(["--repeats", "1", "--threads", "1", "--out-dir", str(tmp_path)])
    assert result["sgemm_gmacs"] > 0
    assert len(result["rows"]) == 4
    for row in result["rows"]:
        assert row["max_difference"] < 1e-4, row  # every formulation is the same layer
        assert row["fraction_of_sgemm"] > 0
    assert (tmp_path / "cpu-kernels.json").exists()


@pytest.mark.parametrize("module", [bench_certificates, bench_cpu_kernels])
def test_bad_repeats_are_refused(module, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--repeats must be >= 1, got 0"):
        module.main(["--repeats", "0", "--out-dir", str(tmp_path)])
