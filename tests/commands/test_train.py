"""The ``lipsim`` command line: help for every option, training runs, exports the metrics load, clear errors."""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import pytest
import torch

from dataset_writers import write_bapps, write_nights
from lipsim_tm.cli import build_parser, main
from lipsim_tm.models.checkpoints.auto import load_backbone
from lipsim_tm.models.checkpoints.export import load_export

TINY = ["--model", "tiny32", "--no-progress", "--device", "cpu", "--threads", "1"]


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from _subparsers(sub)


def test_every_option_of_every_command_has_help():
    commands = dict(_subparsers(build_parser(every=True)))
    assert {"train", "distill", "finetune", "export"} <= set(commands)
    for name, parser in commands.items():
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{name}: option {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize(
    "argv", [["--help"], ["train", "--help"], ["train", "distill", "--help"], ["export", "--help"]]
)
def test_help_exits_cleanly(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: lipsim" in capsys.readouterr().out


def test_distill_cli_writes_checkpoints_log_and_an_export_the_metrics_load(tmp_path, photos_dir, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "distill",
            "--out",
            str(out),
            "--data-dir",
            str(photos_dir),
            "--teacher",
            "training_fixtures:make_teacher",
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--warmup-steps",
            "1",
            "--log-every",
            "1",
            "--teacher-cache",
            str(tmp_path / "cache"),
            "--teacher-id",
            "linear-v1",
            *TINY,
        ]
    )
    assert code == 0
    assert "sha256=" in capsys.readouterr().out
    backbone, metadata = load_export(out / "export.pt")
    assert metadata["training"]["steps"] == 2
    assert metadata["training"]["teacher_id"] == "linear-v1"
    assert metadata["config"]["model"] == "tiny32"
    assert torch.equal(load_backbone(out / "export.pt").dense[0].weight, backbone.dense[0].weight)
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert {"loss", "lr", "images_per_s"} <= set(rows[0])
    documented = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    columns = re.search(r"`log.csv` \(columns ([^)]*)\)", documented).group(1)
    assert re.findall(r"`(\w+)`", columns) == list(rows[0])  # docs/training.md names the log's columns
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 8  # one teacher embedding per view
    # lipsim export re-exports the last checkpoint with the same weights.
    assert main(["export", str(out), str(tmp_path / "again.pt")]) == 0
    again, meta = load_export(tmp_path / "again.pt")
    assert meta["training"]["steps"] == 2
    assert all(
        torch.equal(a, b) for a, b in zip(again.state_dict().values(), backbone.state_dict().values(), strict=True)
    )


def test_finetune_cli_on_nights_and_bapps_fixtures(tmp_path):
    rows = [{"votes": 6, "p": float(i % 2), "split": "train" if i < 8 else "val"} for i in range(12)]
    nights = write_nights(tmp_path / "nights", rows, size=40)
    code = main(
        [
            "train",
            "finetune",
            "--format",
            "nights",
            "--data-dir",
            str(nights),
            "--out",
            str(tmp_path / "ft_nights"),
            "--batch-size",
            "4",
            "--epochs",
            "2",
            "--margin",
            "0.2",
            *TINY,
        ]
    )
    assert code == 0
    evals = list(csv.DictReader((tmp_path / "ft_nights" / "eval.csv").open()))
    assert [int(e["epoch"]) for e in evals] == [1, 2]
    assert {"score_2afc", "certified_2afc@0.1412", "certified_2afc@0.2824", "certified_2afc@0.4235"} <= set(evals[0])
    # Fine-tune further from the export, on BAPPS (64 px images resized to the student's 32).
    bapps = write_bapps(tmp_path / "bapps", {"traditional": [0.0, 1.0, 0.3, 0.8]}, split="train", size=16)
    write_bapps(bapps, {"traditional": [0.5, 1.0]}, split="val", size=16)
    code = main(
        [
            "train",
            "finetune",
            "--format",
            "bapps",
            "--data-dir",
            str(bapps),
            "--out",
            str(tmp_path / "ft_bapps"),
            "--batch-size",
            "2",
            "--init-from",
            str(tmp_path / "ft_nights" / "export.pt"),
            "--eval-eps",
            "0.01",
            *TINY,
        ]
    )
    assert code == 0
    _, metadata = load_export(tmp_path / "ft_bapps" / "export.pt")
    assert (  # certified accuracy is bounded by the hard natural accuracy (not by the soft 2AFC score)
        metadata["training"]["evaluations"][-1]["certified_2afc@0.01"]
        <= metadata["training"]["evaluations"][-1]["natural_accuracy"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lr", "-1"], "lr must be a finite number > 0, got -1.0"),
        (["--threads", "0"], "argument --threads: must be an int >= 1"),
        (["--set-model", "unshuffle=3"], "input_size must be a multiple"),
        (["--batch-size", "100"], "not one full global batch of 100"),
        (["--teacher", "no_such_module:make"], "cannot import teacher factory"),
    ],
)
def test_bad_configuration_exits_2_with_a_clear_message(tmp_path, photos_dir, capsys, extra, message):
    argv = [
        "train",
        "distill",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(photos_dir),
        "--teacher",
        "training_fixtures:make_teacher",
        *TINY,
        *extra,
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_set_model_needs_key_value(capsys):
    with pytest.raises(SystemExit):
        main(["train", "distill", "--out", "o", "--data-dir", "d", "--teacher", "m:f", "--set-model", "unshuffle"])
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_finetune_cli_on_teacher_labelled_synthetic_triplets(tmp_path, photos_dir, capsys):
    out = tmp_path / "ft"
    argv = ["train", "finetune", "--format", "synthetic", "--data-dir", str(photos_dir), "--out", str(out),
            "--synthetic-length", "8", "--synthetic-val-length", "6", "--synthetic-cross-family", "0.5",
            "--synthetic-labeller", "training_fixtures:make_teacher", "--batch-size", "4", *TINY]  # fmt: skip
    assert main(argv) == 0
    _, metadata = load_export(out / "export.pt")
    assert metadata["config"]["synthetic_labeller"] == "training_fixtures:make_teacher"
    assert 0.0 <= metadata["training"]["evaluations"][-1]["score_2afc"] <= 1.0
    without_labeller = [a for a in argv if a not in ("--synthetic-labeller", "training_fixtures:make_teacher")]
    with pytest.raises(SystemExit) as exit_info:
        main(without_labeller)
    assert exit_info.value.code == 2
    assert "needs synthetic_labeller" in capsys.readouterr().err


@pytest.mark.parametrize("image_size", [16, 24])
def test_finetune_evaluation_equals_certify_at_the_same_image_size(tmp_path, image_size, capsys):
    import json

    bapps = tmp_path / "bapps"
    write_bapps(bapps, {"cnn": [0.9, 0.1, 0.8, 0.3]}, split="train", size=20)
    write_bapps(bapps, {"cnn": [0.7, 0.2, 1.0], "color": [0.0, 0.6]}, split="val", size=20)
    out = tmp_path / "ft"
    argv = ["train", "finetune", "--format", "bapps", "--data-dir", str(bapps), "--out", str(out),
            "--batch-size", "2", "--image-size", str(image_size), *TINY]  # fmt: skip
    assert main(argv) == 0
    with (out / "eval.csv").open(newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    assert int(last["image_size"]) == image_size
    report = tmp_path / "certify.json"
    argv = ["certify", str(bapps), "--format", "bapps", "--split", "val", "--weights", str(out / "export.pt"),
            "--image-size", str(image_size), "--out", str(report), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    certified = json.loads(report.read_text())
    assert certified["image_size"] == image_size
    assert float(last["score_2afc"]) == pytest.approx(certified["score_2afc"], rel=1e-6)
    assert float(last["natural_accuracy"]) == pytest.approx(certified["natural_accuracy"], rel=1e-6)
    for row in certified["rows"]:
        assert float(last[f"certified_2afc@{row['eps']:.4g}"]) == pytest.approx(row["certified"], rel=1e-6)
        assert float(last[f"certified_2afc_all@{row['eps']:.4g}"]) == pytest.approx(row["certified_all"], rel=1e-6)
