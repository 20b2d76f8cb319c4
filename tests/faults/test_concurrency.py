"""Concurrent use: two processes sharing one cache folder (teacher cache, weights cache) both finish with the result
one process alone gets; two runs pointed at one run folder cannot both write it (the second refuses, naming the
process that holds it, and the first finishes undisturbed)."""

from __future__ import annotations

import hashlib
import random
import signal
import socket
import time
from pathlib import Path

import pytest
from fault_tools import DOWNLOAD, WRITES, lipsim, log_rows, same_weights, start, temporaries
from writers import TRAIN

from torch_threads import child_env
from weights_server import serving

#: Every teacher call sleeps this long in the concurrent runs, so that their cache reads and writes interleave.
SLOW = {"fault": "lipsim_tm.training.teacher_cache:TeacherCache.embed:calls:1000000", "sleep": 0.5}
PAYLOAD = random.Random(1).randbytes(400_000)


def distill(photos: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "distill", "--data-dir", str(photos), "--out", str(run), *TRAIN, *extra]


def finish(process, timeout: float = 300) -> str:
    """Wait for ``process``; its stderr (it must have succeeded)."""
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory, photos_dir: Path) -> Path:
    """A run folder of the training alone, without a teacher cache."""
    run = tmp_path_factory.mktemp("alone") / "run"
    done = lipsim(distill(photos_dir, run), child_env())
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_two_runs_sharing_one_teacher_cache_both_get_the_result_of_a_run_alone(tmp_path, photos_dir, alone):
    env, cache = child_env(), tmp_path / "cache"
    runs = [tmp_path / "a", tmp_path / "b"]
    processes = [start(distill(photos_dir, run, "--teacher-cache", str(cache)), env, **SLOW) for run in runs]
    for process in processes:
        finish(process)
    for run in runs:
        assert same_weights(run / "export.pt", alone / "export.pt")
        assert log_rows(run / "log.csv") == log_rows(alone / "log.csv")
    reread = lipsim(distill(photos_dir, tmp_path / "c", "--teacher-cache", str(cache)), env)  # every entry readable
    assert reread.returncode == 0, reread.stderr[-3000:]
    assert "replaced" not in reread.stderr
    assert same_weights(tmp_path / "c" / "export.pt", alone / "export.pt")
    assert temporaries(cache) == []


def test_two_downloads_into_one_weights_cache_both_finish_with_the_file(tmp_path):
    env, target = child_env(), tmp_path / "cache" / "w.pt"
    with serving({"w.pt": PAYLOAD}) as server:
        argv = [server.url("/files/w.pt"), str(target)]
        slow = {"fault": f"{WRITES}:calls:1000000", "sleep": 1.0, "program": ("-c", DOWNLOAD)}
        processes = [start(argv, env, **slow) for _ in range(2)]
        for process in processes:
            finish(process, timeout=120)
    assert target.read_bytes() == PAYLOAD
    assert (target.parent / "w.pt.sha256").read_text().split()[0] == hashlib.sha256(PAYLOAD).hexdigest()
    assert temporaries(target.parent) == []


def _wait_for_lock(lock: Path, pid: int, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.is_file() and lock.read_text().split() == [socket.gethostname(), str(pid)]:
            return
        if process.poll() is not None:
            raise AssertionError(f"the first run ended before taking the lock: {process.communicate()[1][-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no lock {lock} after {timeout} s")


def test_a_second_run_on_a_folder_in_use_refuses_and_the_first_finishes_undisturbed(tmp_path, photos_dir, alone):
    env, run = child_env(), tmp_path / "run"
    first = start(distill(photos_dir, run), env)
    _wait_for_lock(tmp_path / ".run.lock", first.pid, first)
    first.send_signal(signal.SIGSTOP)  # held in the middle of its run, alive
    try:
        for extra in ((), ("--resume", "latest"), ("--resume", "auto"), ("--overwrite",)):
            second = lipsim(distill(photos_dir, run, *extra), env)
            assert second.returncode == 2, (extra, second.stderr[-3000:])
            assert f"is in use by process {first.pid} on {socket.gethostname()}" in second.stderr, second.stderr
            assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    finish(first)
    assert same_weights(run / "export.pt", alone / "export.pt")
    assert log_rows(run / "log.csv") == log_rows(alone / "log.csv")
    assert not (tmp_path / ".run.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # --overwrite moved nothing aside
