"""Every earlier option spelling still works for one release: it parses to what the new spelling gives, and says
once what the option is called now."""

from __future__ import annotations

import json

import pytest
from cli_helpers import WEIGHTS, run_cli

from lipsim_tm.cli import build_parser

TRAIN = ["--teacher", "m:f", "--data-dir", "d/"]
FINETUNE = ["--format", "nights", "--data-dir", "d/"]

#: (command line with the old spelling, the same with the new one)
RENAMED = [
    (["robustness", "d/", "--format", "nights", "--epsilons", "0", "36/255"],
     ["robustness", "d/", "--format", "nights", "--eps", "0", "36/255"]),
    (["robustness", "d/", "--format", "nights", "--max-triplets", "5"],
     ["robustness", "d/", "--format", "nights", "--limit", "5"]),
    (["robustness", "d/", "--format", "nights", "--output-dir", "r/"],
     ["robustness", "d/", "--format", "nights", "--out", "r/"]),
    (["train", "distill", *TRAIN, "--output-dir", "runs/a"], ["train", "distill", *TRAIN, "--out", "runs/a"]),
    (["train", "distill", *TRAIN, "--num-workers", "3"], ["train", "distill", *TRAIN, "--workers", "3"]),
    (["train", "finetune", "--dataset", "nights", "--data-dir", "d/"], ["train", "finetune", *FINETUNE]),
    (["train", "finetune", *FINETUNE, "--eval-radii", "0.1", "36/255"],
     ["train", "finetune", *FINETUNE, "--eval-eps", "0.1", "36/255"]),
    (["train", "finetune", *FINETUNE, "--eval-max-triplets", "7"],
     ["train", "finetune", *FINETUNE, "--eval-limit", "7"]),
    (["certify", "d/", "--format", "nights", "--json", "r.json"],
     ["certify", "d/", "--format", "nights", "--out", "r.json"]),
    (["retrieve", "query", "g.pt", "q.png", "--json", "r.json"],
     ["retrieve", "query", "g.pt", "q.png", "--out", "r.json"]),
]  # fmt: skip


def parsed(argv: list[str]) -> dict:
    return {key: value for key, value in vars(build_parser(argv[0]).parse_args(argv)).items() if key != "func"}


@pytest.mark.parametrize(("old", "new"), RENAMED, ids=lambda argv: " ".join(argv[:2]) if argv else "")
def test_an_old_spelling_parses_like_the_new_one_with_a_note(old, new, capsys):
    assert parsed(old) == parsed(new)
    notes = capsys.readouterr().err
    assert "note:" in notes
    assert "works until the next release" in notes


def test_the_old_json_out_takes_only_a_json_file(capsys):
    """``--json`` before a path that is not a .json file is a misplaced flag, never a file to overwrite."""
    with pytest.raises(SystemExit):
        parsed(["retrieve", "query", "g.pt", "q1.png", "--json", "q2.png"])
    assert "--json takes no value" in capsys.readouterr().err


def test_the_old_robustness_positional_layout_runs(photos_dir, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["robustness", "synthetic", str(photos_dir), "--weights", WEIGHTS, "--length", "4", "--epsilons", "0",
            "0.5", "--max-triplets", "4", "--output-dir", str(out), "--steps", "2", "--no-progress"]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "'robustness synthetic DATA_DIR' is now 'robustness DATA_DIR --format synthetic'" in err
    report = json.loads((out / "robustness.json").read_text())
    assert report["triplets"] == 4
    code, _, err = run_cli(["robustness", "nights", str(photos_dir), "--format", "synthetic"], capsys)
    assert code == 2
    assert "give the layout once" in err
