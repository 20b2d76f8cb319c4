"""``lipsim robustness``: help, a run on synthetic triplets with an export file, and its errors."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lipsim_tm.cli import main

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["robustness", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--weights", "--eps", "--attack-all", "--method", "--steps", "--out", "synthetic", "examples:"):
        assert option in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "robustness" in capsys.readouterr().out


def test_run_on_synthetic_triplets_writes_table_json_and_plot(trained, photos, tmp_path, capsys):
    _, export = trained
    output = tmp_path / "out"
    argv = ["robustness", str(photos), "--format", "synthetic", "--weights", str(export), "--out", str(output)]
    argv += ["--length", "6", "--eps", "0", "0.3", "--steps", "3", "--attack-all", "--threads", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "triplets: 6" in captured.out
    assert f"wrote {output / 'robustness.json'}" in captured.out
    data = json.loads((output / "robustness.json").read_text())
    assert data["triplets"] == 6
    assert [row["eps"] for row in data["rows"]] == [0.0, 0.3]
    assert all(row["certified"] <= row["empirical"] <= data["natural_accuracy"] for row in data["rows"])
    assert all(row["empirical_all"] is not None for row in data["rows"])
    if HAS_MATPLOTLIB:
        assert (output / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    else:
        assert "matplotlib is not installed" in captured.err
        assert not (output / "robustness.png").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--split", "test"], "--split applies to nights and bapps"),
        (["--eps", "-1"], "argument --eps: must be finite and >= 0, got '-1'"),
        (["--threads", "0"], "argument --threads: must be an int >= 1"),
        (["--image-size", "0"], "argument --image-size: must be an int >= 1"),
        (["--workers", "-1"], "argument --workers: must be an int >= 0, got '-1'"),
        (["--batch-size", "0"], "argument --batch-size: must be an int >= 1, got '0'"),
        (["--limit", "-2"], "argument --limit: must be an int >= 1, got '-2'"),
        (["--device", "mps"], "--device mps: MPS is not available"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(photos, tmp_path, capsys, extra, match):
    argv = ["robustness", str(photos), "--format", "synthetic", "--weights", "random:tiny32", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--length", "2", *extra])
    assert exit_info.value.code == 2
    assert match in capsys.readouterr().err


def test_missing_nights_folder_is_reported(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["robustness", str(tmp_path / "nowhere"), "--format", "nights", "--weights", "random:tiny32"])
    assert exit_info.value.code == 2
    assert f"data folder not found: {tmp_path / 'nowhere'}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["robustness", str(tmp_path), "--format", "nights", "--weights", "random:tiny32"])
    assert exit_info.value.code == 2
    assert "NIGHTS index not found" in capsys.readouterr().err
