"""A real Lightning ``Trainer`` on CPU, 1 process and 2 (ddp, gloo): LipSim metrics logged by object, by forward
value and through ``loggable()`` views give equal epoch values in both, equal to a direct computation; no
warning comes from our modules; a Lightning checkpoint holds no backbone weights and resumes exactly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("lightning")

from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance

SCRIPT = Path(__file__).resolve().parent / "lightning_run.py"
sys.path.insert(0, str(SCRIPT.parent))
import lightning_run  # noqa: E402

#: Warnings that would come from our modules, or that our modules would cause in Lightning or torchmetrics.
OURS = re.compile(r"eval mode|sync_dist|before the ``update``|lipsim|LipSim|Certified2AFC", re.IGNORECASE)


def _run(out: Path, *options: str) -> dict[str, Any]:
    command = [sys.executable, str(SCRIPT), "--out", str(out), *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    result["warnings"] = [w for path in sorted(out.glob("warnings-*.json")) for w in json.loads(path.read_text())]
    result["epochs"] = _epochs(result["rows"])
    return result


def _epochs(rows: list[dict[str, float]]) -> dict[int, dict[str, float]]:
    """Every logged value by epoch (validation and training rows of one epoch merged)."""
    epochs: dict[int, dict[str, float]] = {}
    for row in rows:
        epochs.setdefault(int(row["epoch"]), {}).update({k: v for k, v in row.items() if k not in ("epoch", "step")})
    return epochs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("lightning")
    one = _run(root / "one", "--devices", "1", "--max-epochs", "2")
    two = _run(root / "two", "--devices", "2", "--max-epochs", "2")
    first = _run(root / "first", "--devices", "1", "--max-epochs", "1")
    resumed = _run(
        root / "resumed", "--devices", "1", "--max-epochs", "2", "--resume", str(root / "first/checkpoints/last.ckpt")
    )
    return {"one": one, "two": two, "first": first, "resumed": resumed}


def test_two_processes_log_the_same_epoch_values_as_one(runs: dict[str, dict[str, Any]]) -> None:
    one, two = runs["one"], runs["two"]
    assert two["world_size"] == 2
    assert one["epochs"].keys() == two["epochs"].keys() == {0, 1}
    for epoch, values in one["epochs"].items():
        assert values.keys() == two["epochs"][epoch].keys()
        for key, value in values.items():
            assert two["epochs"][epoch][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (epoch, key)


def test_logged_values_equal_a_direct_computation(runs: dict[str, dict[str, Any]]) -> None:
    _, val = lightning_run.datasets()
    ref, img0, img1, target = val.tensors
    afc = Certified2AFCAccuracy(lightning_run.WEIGHTS, epsilons=lightning_run.EPSILONS)
    afc.update(ref, img0, img1, target)
    expected = {f"val/{key}": float(value) for key, value in afc.compute().items()}
    model = lightning_run.Restorer()
    model.conv.load_state_dict({k: torch.tensor(v) for k, v in runs["one"]["conv"].items()})
    distance = LipSimDistance(lightning_run.WEIGHTS, certify_eps=lightning_run.CERTIFY_EPS)
    with torch.no_grad():
        distance.update(model(ref), img0)
    expected.update({f"val/{key}": float(value) for key, value in distance.compute().items()})
    for run in ("one", "two"):
        for epoch, values in runs[run]["epochs"].items():
            for key, value in expected.items():
                if epoch == 1 or not key.startswith(("val/distance", "val/half_width")):  # these follow the model
                    assert values[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (run, epoch, key)


def test_the_metric_by_object_equals_its_forward_values(runs: dict[str, dict[str, Any]]) -> None:
    for run in ("one", "two"):
        for values in runs[run]["epochs"].values():
            assert values["train/distance"] == pytest.approx(values["train/loss"], rel=1e-6)


def test_no_warning_comes_from_our_modules(runs: dict[str, dict[str, Any]]) -> None:
    for name, run in runs.items():
        ours = [w for w in run["warnings"] if "lipsim_tm" in w["filename"] or OURS.search(w["message"])]
        assert ours == [], (name, ours)


def test_the_backbones_stay_frozen_in_eval_through_training(runs: dict[str, dict[str, Any]]) -> None:
    for run in runs.values():
        assert run["backbones"] == [{"training": False, "requires_grad": False}] * 3


def test_checkpoints_hold_no_backbone_weights_and_resume_exactly(runs: dict[str, dict[str, Any]]) -> None:
    for run in runs.values():
        assert run["checkpoint_keys"] == ["conv.bias", "conv.weight"]
    assert runs["resumed"]["epochs"].keys() == {1}  # the resumed run trains epoch 1 only
    for key, value in runs["one"]["epochs"][1].items():
        assert runs["resumed"]["epochs"][1][key] == pytest.approx(value, rel=1e-6, abs=1e-8), key
