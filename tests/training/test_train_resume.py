"""A run killed mid-way (SIGKILL, or SIGTERM/Ctrl-C) and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from lipsim_tm.models.checkpoints.export import load_export
from lipsim_tm.training.checkpointing import load_training_checkpoint
from training_fixtures import PYTHON, REPO


def command(out: Path, photos: Path, *extra: str) -> list[str]:
    return [
        PYTHON, "-m", "lipsim_tm.cli", "train", "distill", "--out", str(out), "--data-dir", str(photos),
        "--teacher", "training_fixtures:make_slow_teacher", "--model", "tiny32", "--batch-size", "4",
        "--epochs", "4", "--warmup-steps", "2", "--checkpoint-every", "2", "--keep-last", "10", "--seed", "1",
        "--no-progress", "--log-every", "1", *extra,
    ]  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended (code {process.returncode}) before writing {path}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, photos_dir):
    out = tmp_path_factory.mktemp("uninterrupted")
    env = _env()
    subprocess.run(command(out, photos_dir), env=env, check=True, timeout=300, capture_output=True)
    return out


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), str(REPO / "tests"), str(REPO / "src")])
    return env


def assert_same_final_state(a: Path, b: Path) -> None:
    model_a, _ = load_export(a / "export.pt")
    model_b, _ = load_export(b / "export.pt")
    for (name, x), (_, y) in zip(model_a.state_dict().items(), model_b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    final_a = load_training_checkpoint(a / "checkpoints" / "checkpoint-000000008.pt")
    final_b = load_training_checkpoint(b / "checkpoints" / "checkpoint-000000008.pt")
    assert final_a["scheduler"] == final_b["scheduler"]
    for sa, sb in zip(final_a["optimizer"]["state"].values(), final_b["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, photos_dir, uninterrupted, how):
    env = _env()
    process = subprocess.Popen(command(tmp_path, photos_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(tmp_path / "checkpoints" / "checkpoint-000000004.pt", process)
    process.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
    stdout, _ = process.communicate(timeout=120)
    if how == "sigkill":
        assert process.returncode == -signal.SIGKILL
        latest = 4
    else:
        assert process.returncode == 130  # stopped after the current step, with a checkpoint
        assert b"interrupted at step" in stdout
        latest = load_training_checkpoint(sorted((tmp_path / "checkpoints").glob("*.pt"))[-1])["step"]
        assert 4 <= latest < 8
    assert not (tmp_path / "export.pt").exists()
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    assert load_training_checkpoint(sorted((tmp_path / "checkpoints").glob("*.pt"))[-1])["step"] >= latest
    subprocess.run(command(tmp_path, photos_dir, "--resume", "latest"), env=env, check=True, timeout=300)
    assert_same_final_state(uninterrupted, tmp_path)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,")
    assert rows[-1].startswith("8,")


def test_resume_refuses_a_different_architecture(tmp_path, uninterrupted, photos_dir):
    from lipsim_tm.cli import main

    checkpoint = uninterrupted / "checkpoints" / "checkpoint-000000008.pt"
    argv = command(tmp_path, photos_dir, "--resume", str(checkpoint), "--model", "tiny64")[3:]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
