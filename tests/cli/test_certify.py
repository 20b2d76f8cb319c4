"""``lipsim certify``: NIGHTS- and BAPPS-layout folders against Certified2AFCAccuracy run directly."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import WEIGHTS, run_cli

from dataset_writers import write_bapps, write_nights
from lipsim_tm.data import BAPPS2AFCDataset, NightsDataset
from lipsim_tm.metrics import Certified2AFCAccuracy

EPS = [0.0, 0.05, 36 / 255]
NIGHTS_ROWS = [
    {"votes": 6, "p": 0.9, "split": "test"},
    {"votes": 7, "p": 0.1, "split": "test"},
    {"votes": 8, "p": 0.5, "split": "test"},
    {"votes": 9, "p": 1.0, "split": "test"},
    {"votes": 3, "p": 0.8, "split": "test"},
    {"votes": 6, "p": 0.7, "split": "val"},
]


def direct(dataset, certificate: str = "norm_aware") -> dict[str, float]:
    """Certified2AFCAccuracy on every triplet of ``dataset`` in one batch."""
    metric = Certified2AFCAccuracy(WEIGHTS, epsilons=EPS, certificate=certificate)
    ref, img0, img1, p = (torch.stack(parts) for parts in zip(*(dataset[i] for i in range(len(dataset))), strict=True))
    metric.update(ref, img0, img1, p)
    return {key: float(value) for key, value in metric.compute().items()}


def certify(root, fmt: str, out, *extra: str) -> list[str]:
    return [
        "certify",
        str(root),
        "--format",
        fmt,
        "--weights",
        WEIGHTS,
        "--eps",
        *map(str, EPS),
        "--json",
        str(out),
        *extra,
    ]


def check_report(report: dict, expected: dict[str, float], triplets: int) -> None:
    assert report["triplets"] == triplets
    assert report["natural_2afc"] == pytest.approx(expected["2afc"], rel=1e-6)
    assert [row["eps"] for row in report["rows"]] == pytest.approx(EPS)
    for row in report["rows"]:
        assert row["certified"] == pytest.approx(expected[f"certified_2afc@{row['eps']:.4g}"], rel=1e-6)
        assert row["certified_all"] == pytest.approx(expected[f"certified_2afc_all@{row['eps']:.4g}"], rel=1e-6)


@pytest.mark.parametrize("certificate", ["norm_aware", "plain"])
def test_nights_folder_matches_the_metric(tmp_path, capsys, certificate):
    root = write_nights(tmp_path / "nights", NIGHTS_ROWS, size=24)
    out = tmp_path / "out" / "nights.json"
    argv = certify(root, "nights", out, "--image-size", "24", "--batch-size", "2", "--certificate", certificate)
    code, stdout, stderr = run_cli(argv, capsys)
    assert code == 0, stderr
    report = json.loads(out.read_text())
    # test split, votes >= 6: rows 0-3 (row 4 has 3 votes, row 5 is val).
    check_report(report, direct(NightsDataset(root, "test", image_size=24), certificate), triplets=4)
    assert report["certificate"] == certificate
    assert report["split"] == "test"
    assert report["image_size"] == 24
    assert "4/4 triplets" in stderr  # progress bar
    assert f"natural 2AFC score: {report['natural_2afc']:.4f}" in stdout
    assert f"wrote {out}" in stdout


def test_nights_val_split_and_limit(tmp_path, capsys):
    root = write_nights(tmp_path / "nights", NIGHTS_ROWS, size=24)
    out = tmp_path / "n.json"
    code, _, stderr = run_cli([*certify(root, "nights", out, "--image-size", "24"), "--limit", "2"], capsys)
    assert code == 0, stderr
    dataset = NightsDataset(root, "test", image_size=24)
    limited = torch.utils.data.Subset(dataset, range(2))
    check_report(json.loads(out.read_text()), direct(limited), triplets=2)
    code, _, stderr = run_cli([*certify(root, "nights", out, "--image-size", "24"), "--split", "val"], capsys)
    assert code == 0, stderr
    assert json.loads(out.read_text())["triplets"] == 1


def test_bapps_folder_and_subset_match_the_metric(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.2, 0.9, 0.6], "traditional": [1.0, 0.0]}, size=16)
    out = tmp_path / "bapps.json"
    code, stdout, stderr = run_cli([*certify(root, "bapps", out), "--no-progress"], capsys)
    assert code == 0, stderr
    assert "triplets (" not in stderr
    assert "bapps val: 5 triplets, norm_aware rule" in stdout
    report = json.loads(out.read_text())
    check_report(report, direct(BAPPS2AFCDataset(root, "val", image_size=64)), triplets=5)
    assert report["image_size"] == 64  # read at BAPPS's own resolution by default
    code, _, stderr = run_cli([*certify(root, "bapps", out, "--image-size", "16"), "--subset", "traditional"], capsys)
    assert code == 0, stderr
    subset = BAPPS2AFCDataset(root, "val", subsets=["traditional"], image_size=16)
    check_report(json.loads(out.read_text()), direct(subset), triplets=2)


@pytest.mark.parametrize(
    ("fmt", "extra", "message"),
    [
        ("nights", ["--subset", "cnn"], "--subset applies to bapps only"),
        ("nights", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        ("nights", ["--limit", "0"], "--limit must be >= 1, got 0"),
        ("nights", ["--workers", "-1"], "--workers must be >= 0, got -1"),
        ("nights", ["--image-size", "0"], "--image-size must be >= 1, got 0"),
        ("nights", ["--split", "train"], "no triplets to evaluate"),
        ("nights", ["--split", "everything"], "split must be one of"),
        ("bapps", ["--subset", "nope"], "subsets must be a non-empty subset of"),
        ("bapps", ["--eps", "-0.1"], "argument --eps: must be finite and >= 0"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(tmp_path, capsys, fmt, extra, message):
    if fmt == "nights":
        root = write_nights(tmp_path / "data", NIGHTS_ROWS[:2], size=24)
    else:
        root = write_bapps(tmp_path / "data", {"cnn": [0.5]}, size=16)
    code, _, stderr = run_cli(["certify", str(root), "--format", fmt, "--weights", WEIGHTS, *extra], capsys)
    assert code == 2
    assert message in stderr


def test_missing_folders_are_reported(tmp_path, capsys):
    code, _, stderr = run_cli(["certify", str(tmp_path / "none"), "--format", "nights", "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "NIGHTS index not found" in stderr
    code, _, stderr = run_cli(["certify", str(tmp_path / "none"), "--format", "bapps", "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "BAPPS split folder not found" in stderr
    code, _, stderr = run_cli(["certify", str(tmp_path), "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "the following arguments are required: --format" in stderr


def test_device_option_gives_the_cpu_scores(tmp_path, capsys, device):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.2, 0.9, 1.0, 0.0]}, size=16)
    reports = []
    for target in ("cpu", str(device)):
        out = tmp_path / f"{target}.json"
        code, _, stderr = run_cli([*certify(root, "bapps", out, "--device", target, "--image-size", "16")], capsys)
        assert code == 0, stderr
        reports.append(json.loads(out.read_text()))
    assert reports[1]["natural_2afc"] == pytest.approx(reports[0]["natural_2afc"])
    for got, expected in zip(reports[1]["rows"], reports[0]["rows"], strict=True):
        assert got == pytest.approx(expected)


def test_undecided_judgments_give_null_certified_accuracy_in_strict_json(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.5, 0.5]}, size=16)
    out = tmp_path / "half.json"
    code, stdout, stderr = run_cli(certify(root, "bapps", out, "--image-size", "16"), capsys)
    assert code == 0, stderr
    report = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert report["natural_2afc"] == pytest.approx(0.5)
    assert all(row["certified"] is None and row["certified_all"] is None for row in report["rows"])
    assert "nan" in stdout


def test_json_path_that_is_a_folder_exits_2(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.9]}, size=16)
    code, _, stderr = run_cli(certify(root, "bapps", tmp_path, "--image-size", "16"), capsys)
    assert code == 2
    assert f"--json must name a file, got the folder {tmp_path}" in stderr
