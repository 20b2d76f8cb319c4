"""The paper recipe's smoke run: ``SCALE=smoke bash recipes/paper/run.sh``, the same commands as the full recipe
(torchrun distill with the DreamSim teacher, NIGHTS fine-tuning, torchrun certify and robustness) on stand-ins.

With the dreamsim package (``tox -e teachers``) the teacher is ``--teacher dreamsim`` built from random weights in
the run's own cache; without it, a stand-in teacher of the same interface (``recipes/paper/standin_teacher.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from lipsim_tm.models.checkpoints.export import load_export

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "paper"


def run_recipe(work: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update({"SCALE": "smoke", "WORK": str(work), "PYTHONUNBUFFERED": "1"})
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # `python` is ours
    env.pop("TEACHER", None)
    done = subprocess.run(["bash", str(RECIPE / "run.sh")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def test_smoke_recipe_runs_end_to_end_and_reruns(tmp_path):
    work = tmp_path / "paper"
    first = run_recipe(work)
    _, distilled = load_export(work / "distill" / "export.pt")
    teacher_id = distilled["training"]["teacher_id"]
    if find_spec("dreamsim") is not None:
        assert teacher_id.startswith("dreamsim:ensemble|dreamsim==")
        assert (work / "cache" / "teachers" / "dreamsim" / "ensemble_lora").is_dir()  # the run's own cache
    else:
        assert teacher_id.startswith("standin_teacher:make|")
    assert distilled["training"]["world_size"] == 2
    assert distilled["config"]["crop"] == "center"
    _, finetuned = load_export(work / "finetune" / "export.pt")
    assert finetuned["config"]["margin"] == 0.5
    certified = json.loads((work / "results" / "certify.json").read_text())
    assert certified["processes"] == 2
    assert certified["triplets"] == 8  # the stand-in NIGHTS test split
    assert [row["eps"] for row in certified["rows"]] == [36 / 255, 72 / 255, 108 / 255]
    assert [record["index"] for record in certified["per_triplet"]] == list(range(8))
    report = json.loads((work / "results" / "robustness.json").read_text())
    assert report["triplets"] == 8
    assert [row["eps"] for row in report["rows"]] == [0, 0.1412, 0.2824, 0.4235, 3.0]
    assert report["attack"]["method"] == "apgd"
    # Re-running into the same folder: training is complete and left as it is, the evaluations agree.
    second = run_recipe(work)
    assert second.stdout.count("nothing to train: the run is complete") == 2
    assert "done:" not in second.stdout
    again = json.loads((work / "results" / "certify.json").read_text())
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in certified.items() if k != "seconds"}
    assert json.loads((work / "results" / "robustness.json").read_text()) == report
    assert "done: 4 steps" in first.stdout


def test_readme_holds_the_commands_of_the_script():
    readme = (RECIPE / "README.md").read_text()
    script = (RECIPE / "run.sh").read_text()
    for command in ("train distill", "train finetune", "lipsim_tm.cli certify", "lipsim_tm.cli robustness"):
        assert command in script
        assert command.split()[-1] in readme
    assert "SCALE=smoke" in readme
    assert "--teacher dreamsim" in readme
