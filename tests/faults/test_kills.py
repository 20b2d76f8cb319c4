"""Kills at arbitrary points never cost a result: every writer of the package (training checkpoints, teacher-cache
entries, the training log, exports, galleries, scores files, certify and robustness reports with their plots,
downloads) is killed (as SIGKILL) after N bytes of its writes; what it left must be complete, and a rerun
(``--resume auto`` for training) must end with exactly the uninterrupted run's result and no temporary file. The
default suite kills each writer at a few points; ``-m slow`` at 50 random points per writer."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from fault_tools import KILLED, bytes_fault, download, lipsim, temporaries
from writers import fresh, kill_and_rerun, reference_run, writers

from dataset_writers import write_nights
from torch_threads import child_env
from weights_server import serving

NAMES = ["training", "export", "gallery", "scores", "report", "robustness"]
#: Kill points of the default suite, as fractions of the bytes an uninterrupted run writes.
FRACTIONS = {"training": (0.002, 0.3, 0.65, 0.995), "default": (0.1, 0.6, 0.97)}
SWEEP = 50


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, photos_dir: Path) -> dict:
    """The writers, their inputs, and one uninterrupted reference run of each."""
    root = tmp_path_factory.mktemp("faults")
    env = child_env()
    nights = write_nights(root / "nights", [{"votes": 6, "p": p, "split": "test"} for p in (0.9, 0.2, 0.7, 0.0)],
                          size=32)  # fmt: skip
    training = reference_run(writers(photos_dir, root / "unused", nights)[0], fresh(root / "ref-training"), env)
    every = {w.name: w for w in writers(photos_dir, training / "run", nights)}
    references = {"training": training}
    for name in NAMES[1:]:
        references[name] = reference_run(every[name], fresh(root / f"ref-{name}"), env)
    return {"root": root, "env": env, "writers": every, "references": references}


def kill_points(name: str, total: int, *, sweep: bool) -> list[int]:
    if sweep:
        generator = random.Random(f"{name}-{total}")
        return sorted(generator.randint(1, total) for _ in range(SWEEP))
    return [max(1, int(total * f)) for f in FRACTIONS.get(name, FRACTIONS["default"])]


def run_kills(setup: dict, name: str, *, sweep: bool) -> None:
    writer, reference = setup["writers"][name], setup["references"][name]
    total = writer.size(reference)
    for i, limit in enumerate(kill_points(name, total, sweep=sweep)):
        kill_and_rerun(writer, fresh(setup["root"] / f"{name}-{i}"), reference, setup["env"], limit)


@pytest.mark.parametrize("name", NAMES)
def test_a_killed_writer_leaves_only_complete_files_and_a_rerun_finishes_the_job(setup, name):
    run_kills(setup, name, sweep=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_randomised_kill_sweep(setup, name):
    run_kills(setup, name, sweep=True)


# --- downloads ---------------------------------------------------------------------------------------------------

PAYLOAD = bytes(random.Random(0).randbytes(300_000))


@pytest.mark.parametrize("sweep", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["points", "sweep"])
def test_a_killed_download_is_never_taken_for_the_file(tmp_path, sweep):
    env = child_env()
    points = kill_points("download", len(PAYLOAD), sweep=sweep)
    with serving({"w.pt": PAYLOAD}) as server:
        for i, limit in enumerate(points):
            target = tmp_path / f"cache-{i}" / "w.pt"
            killed = download(server.url("/files/w.pt"), target, env, fault=bytes_fault(limit))
            assert killed.returncode == KILLED, killed.stderr
            assert not target.exists()  # a reader finds no file, never a part of one
            done = download(server.url("/files/w.pt"), target, env)
            assert done.returncode == 0, done.stderr
            assert target.read_bytes() == PAYLOAD
            recorded = (target.parent / "w.pt.sha256").read_text().split()[0]
            assert recorded == hashlib.sha256(PAYLOAD).hexdigest()
            assert temporaries(target.parent) == []


def test_the_training_log_of_a_killed_run_is_repaired(tmp_path, capsys):
    """A kill while appending a row leaves an unfinished last line: it is dropped when the log is opened again."""
    from lipsim_tm.training.logging import CSVLogger

    log = tmp_path / "log.csv"
    log.write_text("step,loss\n1,0.5\n2,0.4\n3,0.")
    logger = CSVLogger(log)
    assert log.read_text() == "step,loss\n1,0.5\n2,0.4\n"
    assert "dropped the unfinished last line" in capsys.readouterr().err
    logger.log({"step": 3, "loss": 0.3})
    assert log.read_text() == "step,loss\n1,0.5\n2,0.4\n3,0.3\n"


def test_a_kill_before_the_first_checkpoint_reruns_from_the_start(setup, photos_dir):
    """Killed after writing its log but before any checkpoint: ``--resume auto`` starts the run again (the
    uninterrupted result), where a fresh run would refuse the folder as an earlier run's."""
    writer, reference = setup["writers"]["training"], setup["references"]["training"]
    work = fresh(setup["root"] / "before-checkpoint")
    killed = lipsim(
        writer.argv(work), setup["env"], fault="lipsim_tm.training.checkpointing:CheckpointManager.save:calls:1"
    )
    assert killed.returncode == KILLED
    assert (work / "run" / "log.csv").exists()
    assert not list((work / "run" / "checkpoints").glob("*.pt")) if (work / "run" / "checkpoints").exists() else True
    done = lipsim(writer.argv(work), setup["env"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "holds no checkpoint of its earlier run: starting it again" in done.stderr
    writer.check_final(work, reference)
