"""A torchrun process that dies (the OOM killer, a pre-empted node) never hangs the others and never leaves a report
or an export that looks complete: every process exits within a bounded time, the launcher says which rank failed,
and a training run resumes from its last checkpoint to exactly the uninterrupted result."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fault_tools import lipsim, same_weights
from writers import fresh

from dataset_writers import write_nights
from torch_threads import child_env

#: Seconds within which every process must have exited after one died (torchrun's own grace periods included).
BOUND = 120
TRAIN = ["--teacher", "training_fixtures:make_teacher", "--teacher-id", "linear-v1", "--model", "tiny32",
         "--batch-size", "4", "--epochs", "3", "--warmup-steps", "1", "--checkpoint-every", "1", "--log-every", "1",
         "--keep-last", "10", "--no-progress", "--device", "cpu", "--threads", "1"]  # fmt: skip


def timed(argv: list[str], **options) -> tuple[float, object]:
    start = time.monotonic()
    done = lipsim(argv, child_env(), torchrun=2, timeout=BOUND + 60, **options)
    return time.monotonic() - start, done


def test_torchrun_certify_with_a_dead_rank_exits_without_a_report(tmp_path):
    rows = [{"votes": 6, "p": 0.9 if i % 2 else 0.1, "split": "test"} for i in range(24)]
    root = write_nights(tmp_path / "nights", rows, size=24)
    out = tmp_path / "report.json"
    argv = ["certify", str(root), "--format", "nights", "--weights", "random:tiny32", "--image-size", "24",
            "--batch-size", "2", "--workers", "0", "--no-progress", "--out", str(out)]  # fmt: skip
    seconds, done = timed(argv, fault="lipsim_tm.data.nights:NightsDataset.__getitem__:calls:3", rank=1)
    assert done.returncode != 0
    assert seconds < BOUND, f"took {seconds:.0f} s"
    assert "exitcode  : 137" in done.stderr or "exitcode: 137" in done.stderr.replace(" ", ""), done.stderr[-3000:]
    assert not out.exists()
    assert not out.with_suffix(".png").exists()
    complete = lipsim(argv, child_env(), torchrun=2, timeout=BOUND)  # nothing left behind stops the rerun
    assert complete.returncode == 0, complete.stderr[-3000:]
    assert out.exists()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, photos_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = lipsim(["train", "distill", "--data-dir", str(photos_dir), "--out", str(run), *TRAIN], child_env(),
                  torchrun=2, timeout=BOUND)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_torchrun_training_with_a_dead_rank_resumes_to_the_uninterrupted_result(tmp_path, photos_dir, uninterrupted):
    run = fresh(tmp_path / "work") / "run"
    argv = ["train", "distill", "--data-dir", str(photos_dir), "--out", str(run), *TRAIN]
    seconds, died = timed(argv, fault="lipsim_tm.training.trainer:_Run._optimiser_step:calls:4", rank=1)
    assert died.returncode != 0
    assert seconds < BOUND, f"took {seconds:.0f} s"
    assert not (run / "export.pt").exists()
    checkpoints = sorted((run / "checkpoints").glob("checkpoint-*.pt"))
    assert [p.name for p in checkpoints] == [f"checkpoint-{step:09d}.pt" for step in (1, 2, 3)]
    for checkpoint in checkpoints:  # complete, and the uninterrupted run's
        assert same_weights(checkpoint, uninterrupted / "checkpoints" / checkpoint.name)
    resumed = lipsim([*argv, "--resume", "latest"], child_env(), torchrun=2, timeout=BOUND)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert same_weights(run / "export.pt", uninterrupted / "export.pt")
