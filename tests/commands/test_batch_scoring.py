"""Scoring many files: ``lipsim distance DIR_A DIR_B`` / ``--pairs`` and ``lipsim 2afc --triplets``: one row per item,
error rows for unreadable files, values equal to the one-item command, the 2AFC report against the metric, and the
same rows file from two torchrun processes as from one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import WEIGHTS, photo_array, run_cli, run_json
from PIL import Image

from lipsim_tm.data import read_image
from lipsim_tm.metrics import Certified2AFCAccuracy

SIZES = [(40, 48), (40, 48), (32, 32), (50, 36), (40, 48), (28, 60)]
EPS = ["0.01", "36/255"]


def write(path: Path, seed: int, size: tuple[int, int], mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo_array(seed, *size, channels=1 if mode == "L" else 3)).save(path)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders of six pairs (mixed sizes, one grey pair, one nested), a corrupt file, names on one side only."""
    a, b = tmp_path / "a", tmp_path / "b"
    for i, size in enumerate(SIZES):
        name = f"sub/{i}.png" if i == 4 else f"{i}.png"
        mode = "L" if i == 5 else "RGB"
        write(a / name, i, size, mode)
        write(b / name, 100 + i, size, mode)
    (b / "3.png").write_bytes(b"not an image")  # the corrupt one
    write(a / "only_a.png", 50, (32, 32))
    write(b / "only_b.png", 51, (32, 32))
    return a, b


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_folders_give_a_row_per_pair_an_error_row_and_the_single_pair_values(folders, tmp_path, capsys):
    a, b = folders
    out = tmp_path / "rows.csv"
    code, stdout, stderr = run_cli(["distance", str(a), str(b), "--weights", WEIGHTS, "--eps", *EPS, "--out", str(out)],
                                   capsys)  # fmt: skip
    assert code == 1  # one pair failed
    assert "left out, only in" in stdout
    assert "only_a.png" in stdout
    assert "only_b.png" in stdout
    assert "scored 5 of 6 pairs (1 failed)" in stdout
    assert "Traceback" not in stderr
    rows = read_rows(out)
    names = [Path(r["image_a"]).relative_to(a).as_posix() for r in rows]
    assert names == ["0.png", "1.png", "2.png", "3.png", "5.png", "sub/4.png"]  # one row per pair, in name order
    failed = [r for r in rows if r["error"]]
    assert len(failed) == 1
    assert failed[0]["image_b"].endswith("3.png")
    assert "cannot decode image file" in failed[0]["error"]
    assert failed[0]["distance"] == ""
    for row in rows:
        if row["error"]:
            continue
        single = run_json(["distance", row["image_a"], row["image_b"], "--weights", WEIGHTS, "--eps", *EPS], capsys)
        assert float(row["distance"]) == pytest.approx(single["distance"], rel=1e-6, abs=1e-7)
        for interval in single["intervals"]:
            key = f"{interval['eps']:.4g}"
            assert float(row[f"lower@{key}"]) == pytest.approx(interval["lower"], rel=1e-6, abs=1e-7)
            assert float(row[f"upper@{key}"]) == pytest.approx(interval["upper"], rel=1e-6, abs=1e-7)


def test_a_pairs_table_with_relative_and_absolute_paths_and_jsonl_rows(folders, tmp_path, capsys):
    a, b = folders
    table = tmp_path / "tables" / "pairs.csv"
    table.parent.mkdir()
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_a", "image_b", "note"])
        writer.writerow(["../a/0.png", "../b/0.png", "relative to the table"])
        writer.writerow([str(a / "2.png"), str(b / "2.png"), "absolute"])
        writer.writerow(["../a/0.png", "../a/0.png", "an image with itself"])
    out = tmp_path / "rows.jsonl"
    code, stdout, _ = run_cli(["distance", "--pairs", str(table), "--weights", WEIGHTS, "--out", str(out), "--json"],
                              capsys)  # fmt: skip
    assert code == 0
    summary = json.loads(stdout)
    assert (summary["pairs"], summary["scored"], summary["failed"]) == (3, 3, 0)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["image_a"] for row in rows] == ["../a/0.png", str(a / "2.png"), "../a/0.png"]
    assert rows[2]["distance"] == pytest.approx(0.0, abs=1e-6)
    assert summary["mean"]["value"] == pytest.approx(sum(row["distance"] for row in rows) / 3)
    assert all(row["error"] == "" for row in rows)


def test_without_out_the_rows_go_to_standard_output(folders, capsys):
    a, b = folders
    code, stdout, stderr = run_cli(["distance", str(a), str(b), "--weights", WEIGHTS, "--no-progress"], capsys)
    assert code == 1
    assert stdout.splitlines()[0].startswith("image_a,image_b,distance,lower@0.1412")
    assert len(stdout.splitlines()) == 7
    assert "scored 5 of 6 pairs" in stderr


def test_on_error_stop_writes_no_rows_and_says_which_file_failed(folders, tmp_path, capsys):
    a, b = folders
    out = tmp_path / "rows.csv"
    argv = ["distance", str(a), str(b), "--weights", WEIGHTS, "--out", str(out), "--on-error", "stop"]
    code, _, stderr = run_cli(argv, capsys)
    assert code == 1
    assert "lipsim distance: error: cannot decode image file" in stderr
    assert "no rows were written" in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["distance", "{a}", "{b}/0.png"], "is a folder but the other is not: give two files or two folders"),
        (["distance", "{a}/0.png"], "give two image files, two folders of images, or --pairs TABLE.csv"),
        (["distance", "--pairs", "{a}"], "expected a CSV table, got the folder"),
        (["distance", "{a}", "{b}", "--out", "{a}/rows.txt"], "--out must name a .csv or .jsonl file"),
        (["2afc", "--triplets", "{a}/none.csv"], "table not found"),
        (["2afc", "{a}/0.png", "{a}", "{a}/1.png"], "expected an image file, got the folder"),
    ],
)
def test_bad_inputs_exit_2_before_any_model_loads(folders, capsys, argv, message):
    a, b = folders
    argv = [part.format(a=a, b=b) for part in argv]
    code, _, stderr = run_cli([*argv, "--weights", "no-such-weights"], capsys)
    assert code == 2
    assert message in stderr
    assert "no-such-weights" not in stderr  # refused before the weights were looked at


def test_triplets_with_targets_give_the_2afc_report_of_the_metric(tmp_path, capsys):
    targets = [0.0, 1.0, 0.5, 0.8, 0.2, 1.0, 0.0]
    votes = [3, 5, 4, 9, 1, 7, 2]
    rows = []
    for i, target in enumerate(targets):
        paths = [write(tmp_path / "img" / f"{i}_{k}.png", 10 * i + k, (36, 36)) for k in range(3)]
        rows.append([f"img/{p.name}" for p in paths] + [target, votes[i]])
    table = tmp_path / "triplets.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "img0", "img1", "target", "votes"])
        writer.writerows(rows)
    argv = ["2afc", "--triplets", str(table), "--weights", WEIGHTS, "--eps", *EPS, "--min-votes", "2", "--json"]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0
    result = json.loads(stdout)
    kept = [i for i, v in enumerate(votes) if v >= 2]
    assert result["left_out"] == {"votes": ["line 6"]}
    assert result["triplets"] == len(kept)
    metric = Certified2AFCAccuracy(WEIGHTS, epsilons=[0.01, 36 / 255])
    images = [[read_image(tmp_path / rows[i][k]) for i in kept] for k in range(3)]
    metric.update(*(torch.cat(part) for part in images), torch.tensor([targets[i] for i in kept]))
    expected = metric.summary().to_dict()
    report = result["report"]
    assert report["natural_accuracy"] == pytest.approx(expected["natural_accuracy"])
    assert report["score_2afc"]["value"] == pytest.approx(expected["score_2afc"]["value"])
    for got, want in zip(report["certified"], expected["certified"], strict=True):
        for key in ("reference", "all"):
            assert got[key]["value"] == pytest.approx(want[key]["value"])
            assert got[key]["count"] == want[key]["count"]
    decisions = {row["ref"]: row for row in result["rows"]}
    for i in kept:
        single = run_json(["2afc", *(str(tmp_path / p) for p in rows[i][:3]), "--weights", WEIGHTS], capsys)
        row = decisions[rows[i][0]]
        assert row["closer"] == single["closer"]
        assert row["radius_reference"] == pytest.approx(single["radius_reference"], rel=1e-5, abs=1e-6)
        majority = "img1" if targets[i] > 0.5 else "img0"
        assert row["correct"] == (None if targets[i] == 0.5 else single["closer"] == majority)


def test_a_table_needs_its_columns_and_targets_on_every_row_or_none(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("ref,img0\na.png,b.png\n")
    code, _, stderr = run_cli(["2afc", "--triplets", str(table), "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "the header must name the columns ['ref', 'img0', 'img1']; missing ['img1']" in stderr
    table.write_text("ref,img0,img1,target\na.png,b.png,c.png,0.5\na.png,b.png,c.png,\n")
    code, _, stderr = run_cli(["2afc", "--triplets", str(table), "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "t.csv:3: column target must be a number" in stderr
    table.write_text("ref,img0,img1\na.png,b.png,c.png\n")
    code, _, stderr = run_cli(["2afc", "--triplets", str(table), "--min-votes", "3", "--weights", WEIGHTS], capsys)
    assert code == 2
    assert "--min-votes needs a votes column" in stderr


def test_torchrun_writes_the_rows_file_one_process_writes(folders, tmp_path, subprocess_env):
    a, b = folders
    env = subprocess_env
    outputs = []
    for processes in (1, 2):
        out = tmp_path / f"rows{processes}.csv"
        launcher = [sys.executable, "-m", "lipsim_tm.cli"]
        if processes > 1:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "lipsim_tm.cli"]  # fmt: skip
        args = ["distance", str(a), str(b), "--weights", WEIGHTS, "--batch-size", "2", "--workers", "0",
                "--out", str(out), "--no-progress"]  # fmt: skip
        done = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr[-3000:]  # the corrupt pair
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 7
