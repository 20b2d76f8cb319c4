"""torchrun with 2 real CPU processes (gloo) gives the same parameters on both ranks and as one process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from lipsim_tm.models.checkpoints.export import load_export
from training_fixtures import PYTHON

ENTRY = Path(__file__).parent / "ddp_entry.py"


def test_two_process_ddp_equals_single_process(tmp_path, photos_dir, subprocess_env):
    single, multi = tmp_path / "single", tmp_path / "multi"
    single.mkdir()
    multi.mkdir()
    subprocess.run([PYTHON, str(ENTRY), str(single), str(photos_dir)], env=subprocess_env, check=True, timeout=300)
    launched = subprocess.run(
        [
            PYTHON,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(ENTRY),
            str(multi),
            str(photos_dir),
        ],
        env=subprocess_env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    reference = torch.load(single / "rank0.pt", weights_only=True)
    ranks = [torch.load(multi / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert reference["world_size"] == 1
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert reference["steps"] == ranks[0]["steps"] == ranks[1]["steps"] == 6  # 8 photos / batch 4 * 3 epochs
    initial = torch.load(multi / "checkpoints" / "checkpoint-000000006.pt", weights_only=True)["model"]
    for name, value in reference["state"].items():
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name]), name  # identical across ranks
        assert torch.allclose(ranks[0]["state"][name], value, rtol=1e-10, atol=1e-12), name  # = one process
        assert torch.equal(initial[name], ranks[0]["state"][name]), name  # rank 0 checkpointed the same
    moved = sum(float((reference["state"][k] - v).abs().sum()) for k, v in _fresh_state().items())
    assert moved > 1e-3  # the runs really trained


def _fresh_state() -> dict[str, torch.Tensor]:
    from lipsim_tm import LipSimBackbone
    from lipsim_tm.training.trainer import seed_everything

    seed_everything(3)
    return LipSimBackbone("tiny32").double().state_dict()


@pytest.mark.slow
def test_cli_under_torchrun_matches_the_cli_on_one_process(tmp_path, photos_dir, subprocess_env):
    args = ["train", "distill", "--data-dir", str(photos_dir), "--teacher", "training_fixtures:make_teacher",
            "--model", "tiny32", "--dtype", "float64", "--batch-size", "4", "--epochs", "2", "--warmup-steps", "1",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    subprocess.run([PYTHON, "-m", "lipsim_tm.cli", *args, "--out", str(tmp_path / "one")],
                   env=subprocess_env, check=True, timeout=300)  # fmt: skip
    torchrun = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lipsim_tm.cli"]
    subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two")],
                   env=subprocess_env, check=True, timeout=300)  # fmt: skip
    one, _ = load_export(tmp_path / "one" / "export.pt")
    two, meta = load_export(tmp_path / "two" / "export.pt")
    assert meta["training"]["world_size"] == 2
    for (name, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items(), strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), name
