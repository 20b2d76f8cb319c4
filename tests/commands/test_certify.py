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
        "--out",
        str(out),
        *extra,
    ]


def check_report(report: dict, expected: dict[str, float], triplets: int) -> None:
    assert report["triplets"] == triplets
    assert report["score_2afc"] == pytest.approx(expected["score_2afc"], rel=1e-6)
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
    assert "2AFC score (soft) [95%]" in stdout
    assert f"{report['score_2afc']:.4f} [" in stdout
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
        ("nights", ["--batch-size", "0"], "argument --batch-size: must be an int >= 1, got '0'"),
        ("nights", ["--limit", "0"], "argument --limit: must be an int >= 1, got '0'"),
        ("nights", ["--workers", "-1"], "argument --workers: must be an int >= 0, got '-1'"),
        ("nights", ["--image-size", "0"], "argument --image-size: must be an int >= 1, got '0'"),
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
    assert f"data folder not found: {tmp_path / 'none'}" in stderr
    code, _, stderr = run_cli(["certify", str(tmp_path), "--format", "nights", "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "NIGHTS index not found" in stderr
    code, _, stderr = run_cli(["certify", str(tmp_path), "--format", "bapps", "--weights", WEIGHTS], capsys)
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
    assert reports[1]["score_2afc"] == pytest.approx(reports[0]["score_2afc"])
    for got, expected in zip(reports[1]["rows"], reports[0]["rows"], strict=True):
        assert got == pytest.approx(expected)


def test_undecided_judgments_give_null_certified_accuracy_in_strict_json(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.5, 0.5]}, size=16)
    out = tmp_path / "half.json"
    code, stdout, stderr = run_cli(certify(root, "bapps", out, "--image-size", "16"), capsys)
    assert code == 0, stderr
    report = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert report["score_2afc"] == pytest.approx(0.5)
    assert all(row["certified"] is None and row["certified_all"] is None for row in report["rows"])
    assert report["natural_accuracy"] is None
    assert "n/a" in stdout


def test_json_path_that_is_a_folder_exits_2(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.9]}, size=16)
    code, _, stderr = run_cli(certify(root, "bapps", tmp_path, "--image-size", "16"), capsys)
    assert code == 2
    assert f"expected a JSON report, got the folder {tmp_path}" in stderr


def _summary_matches(entry: dict, dataset, certificate: str = "norm_aware") -> None:
    """One subset of a certify report against Certified2AFCAccuracy run directly on ``dataset``."""
    expected = direct(dataset, certificate)
    assert entry["triplets"] == len(dataset)
    assert entry["score_2afc"]["value"] == pytest.approx(expected["score_2afc"], rel=1e-6)
    assert entry["natural_accuracy"]["value"] == pytest.approx(expected["natural_accuracy"], rel=1e-6)
    for row in entry["certified"]:
        assert row["reference"]["value"] == pytest.approx(expected[f"certified_2afc@{row['eps']:.4g}"], rel=1e-6)
        assert row["all"]["value"] == pytest.approx(expected[f"certified_2afc_all@{row['eps']:.4g}"], rel=1e-6)
        for key in ("reference", "all"):  # certified never above the hard natural accuracy, intervals hold it
            estimate = row[key]
            assert estimate["value"] <= entry["natural_accuracy"]["value"]
            assert estimate["low"] <= estimate["value"] <= estimate["high"]


def test_nights_test_split_reports_imagenet_no_imagenet_and_overall(tmp_path, capsys):
    rows = [
        {"votes": 6, "p": p, "split": "test", "is_imagenet": i % 3 == 0}
        for i, p in enumerate([0.9, 0.1, 0.8, 0.3, 1.0, 0.0, 0.6, 0.5])
    ]
    root = write_nights(tmp_path / "nights", [*rows, {"votes": 9, "p": 0.2, "split": "val", "is_imagenet": True}])
    out = tmp_path / "n.json"
    code, stdout, stderr = run_cli(certify(root, "nights", out, "--image-size", "24", "--batch-size", "3"), capsys)
    assert code == 0, stderr
    report = json.loads(out.read_text())
    names = [entry["subset"] for entry in report["results"]]
    assert names == ["imagenet", "no_imagenet", "overall"]
    for entry, split in zip(report["results"], ["test_imagenet", "test_no_imagenet", "test"], strict=True):
        _summary_matches(entry, NightsDataset(root, split, image_size=24))
    assert [e["triplets"] for e in report["results"]] == [3, 5, 8]
    assert report["decided"] == 7  # p = 0.5 excluded from the accuracies
    assert report["natural_accuracy"] == pytest.approx(report["results"][-1]["natural_accuracy"]["value"])
    for line in ("imagenet", "no_imagenet", "overall", "natural accuracy [95%]", "2AFC score (soft) [95%]"):
        assert line in stdout
    png = out.with_suffix(".png")
    assert report["plot"] == str(png)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bapps_reports_each_subset_and_their_count_weighted_combination(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.9, 0.2, 0.7], "traditional": [0.1, 0.8]}, size=16)
    out = tmp_path / "b.json"
    code, _, stderr = run_cli(certify(root, "bapps", out, "--image-size", "16"), capsys)
    assert code == 0, stderr
    report = json.loads(out.read_text())
    assert [e["subset"] for e in report["results"]] == ["cnn", "traditional", "combined"]
    _summary_matches(report["results"][0], BAPPS2AFCDataset(root, "val", subsets=["cnn"], image_size=16))
    _summary_matches(report["results"][1], BAPPS2AFCDataset(root, "val", subsets=["traditional"], image_size=16))
    _summary_matches(report["results"][2], BAPPS2AFCDataset(root, "val", image_size=16))
    cnn, traditional, combined = (e["natural_accuracy"] for e in report["results"])
    assert combined["value"] == pytest.approx((3 * cnn["value"] + 2 * traditional["value"]) / 5)


def test_compare_paper_needs_a_released_checkpoint(tmp_path, capsys):
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.9]}, size=16)
    code, _, stderr = run_cli([*certify(root, "bapps", tmp_path / "o.json"), "--compare-paper"], capsys)
    assert code == 2
    assert "--compare-paper needs one of the paper's released checkpoints" in stderr


def test_the_paper_column_shows_the_reference_numbers_beside_ours():
    from lipsim_tm.commands.paper import paper_results
    from lipsim_tm.functional.confidence import mean_interval, wilson
    from lipsim_tm.functional.two_afc import CertifiedRow, TwoAFCSummary, two_afc_table

    paper = paper_results("lipsim-margin0.2", "bapps")
    rows = tuple(CertifiedRow(eps, wilson(3, 10), wilson(2, 10)) for eps in sorted(paper["certified"]))
    summary = TwoAFCSummary(10, 10, mean_interval(7.0, 5.5, 10), wilson(7, 10), rows)
    text = "\n".join(two_afc_table([("combined", summary)], paper))
    assert "0.7347" in text  # the paper's natural score
    for value in ("0.3000", "0.1296", "0.0533"):
        assert value in text
    assert "[-1, 1] inputs" in text
    assert paper_results("lipsim-margin0.5", "nights") == {"score": 0.851}


def test_per_triplet_records_equal_the_metrics_per_sample_values(tmp_path, capsys):
    """--per-triplet on BAPPS (two subsets, batches straddling them): each record, in index order, against the
    metric's own per-sample values of one batch of all triplets."""
    root = write_bapps(tmp_path / "bapps", {"cnn": [0.2, 0.9, 0.5], "traditional": [1.0, 0.3]}, size=32)
    out = tmp_path / "b.json"
    argv = [*certify(root, "bapps", out, "--image-size", "32", "--batch-size", "2"), "--per-triplet"]
    code, _, stderr = run_cli(argv, capsys)
    assert code == 0, stderr
    records = json.loads(out.read_text())["per_triplet"]
    dataset = BAPPS2AFCDataset(root, "val", image_size=32)
    metric = Certified2AFCAccuracy(WEIGHTS, epsilons=EPS, per_sample=True)
    ref, img0, img1, p = (torch.stack(parts) for parts in zip(*(dataset[i] for i in range(len(dataset))), strict=True))
    metric.update(ref, img0, img1, p)
    expected = metric.compute()
    assert [r["index"] for r in records] == list(range(5))
    assert [r["subset"] for r in records] == ["cnn"] * 3 + ["traditional"] * 2
    for key in ("d0", "d1", "target", "radius_reference", "radius_all"):
        assert [r[key] for r in records] == pytest.approx(expected[key].tolist(), rel=1e-5, abs=1e-7), key


def test_paper_numbers_say_when_the_embedding_map_differs_from_the_papers():
    from lipsim_tm.commands.paper import paper_results

    assert "note" not in paper_results("lipsim-margin0.5", "nights", "plain")
    note = paper_results("lipsim-margin0.5", "nights", "augment")["note"]
    assert "--normalization plain" in note
    assert "these use augment" in note
    bapps = paper_results("lipsim-margin0.2", "bapps", "augment")["note"]
    assert bapps.startswith("BAPPS certified numbers from the authors' rebuttal")
    assert "these use augment" in bapps
    assert paper_results("lipsim-margin0.5", "bapps", "augment") == {}
