"""The writers of the package as the fault tests drive them: how to run each to completion, where it writes, and how
to compare what a rerun after a kill leaves with what an uninterrupted run leaves.

A writer is killed (``os._exit(137)``, as SIGKILL) once its atomic writes have passed N bytes; then, before any
rerun, every file it left must be complete (readable, equal to the uninterrupted run's), and a rerun (for the
trainer: ``--resume auto``) must end with exactly the uninterrupted result and no temporary file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from fault_tools import KILLED, bytes_fault, lipsim, log_rows, report, same_weights, temporaries
from PIL import Image

WEIGHTS = "random:tiny32"
TRAIN = ["--teacher", "training_fixtures:make_teacher", "--teacher-id", "linear-v1", "--model", "tiny32",
         "--batch-size", "4", "--epochs", "2", "--warmup-steps", "1", "--checkpoint-every", "1", "--log-every", "1",
         "--keep-last", "10", "--no-progress", "--device", "cpu", "--threads", "1"]  # fmt: skip


@dataclass
class Writer:
    """One writer: ``argv(work)`` runs it into ``work`` (a rerun is the same command); ``check_partial(work,
    reference)`` asserts that what a killed run left is complete; ``check_final(work, reference)`` that a finished
    rerun equals the reference; ``size(reference)`` the bytes an uninterrupted run writes; ``prepare(work)`` puts
    what the writer replaces in place first."""

    name: str
    argv: Callable[[Path], list[str]]
    check_partial: Callable[[Path, Path], None]
    check_final: Callable[[Path, Path], None]
    size: Callable[[Path], int]
    prepare: Callable[[Path], None] = lambda work: None


def _file_size(*names: str) -> Callable[[Path], int]:
    return lambda reference: sum((reference / name).stat().st_size for name in names)


# --- training (checkpoints, teacher-cache entries, the log's header, the export) ---------------------------------


def _train_argv(photos: Path) -> Callable[[Path], list[str]]:
    return lambda work: ["train", "distill", "--data-dir", str(photos), "--out", str(work / "run"),
                         "--teacher-cache", str(work / "cache"), *TRAIN, "--resume", "auto"]  # fmt: skip


def _train_partial(work: Path, reference: Path) -> None:
    for checkpoint in sorted((work / "run" / "checkpoints").glob("checkpoint-*.pt")):
        assert same_weights(checkpoint, reference / "run" / "checkpoints" / checkpoint.name), checkpoint.name
    if (work / "run" / "export.pt").exists():
        assert same_weights(work / "run" / "export.pt", reference / "run" / "export.pt")
    for entry in (work / "cache").rglob("*.pt"):
        assert torch.load(entry, weights_only=True)["embedding"].ndim == 1


def _train_final(work: Path, reference: Path) -> None:
    assert same_weights(work / "run" / "export.pt", reference / "run" / "export.pt")
    assert log_rows(work / "run" / "log.csv") == log_rows(reference / "run" / "log.csv")
    assert sorted(p.name for p in (work / "cache").rglob("*.pt")) == sorted(
        p.name for p in (reference / "cache").rglob("*.pt")
    )


def _train_size(reference: Path) -> int:
    checkpoints = sum(p.stat().st_size for p in (reference / "run" / "checkpoints").glob("*.pt"))
    cache = sum(p.stat().st_size for p in (reference / "cache").rglob("*.pt"))
    return checkpoints + cache + (reference / "run" / "export.pt").stat().st_size


# --- the other writers: one file each (and a plot beside some) -------------------------------------------------

PREVIOUS = b"the previous file"


def _one_file(
    name: str, argv: Callable[[Path], list[str]], main: str, same: Callable[[Path, Path], bool], *plots: str
) -> Writer:
    """A command that ``argv(out)`` runs into the folder ``out`` (``work/out``): it writes the file ``main`` there
    over a previous one, and the ``plots`` beside it. A killed run leaves the previous file or the complete new
    one, and each plot absent or whole."""

    def partial(work: Path, reference: Path) -> None:
        out = work / "out"
        assert (out / main).read_bytes() == PREVIOUS or same(out / main, reference / "out" / main), out / main
        for plot in plots:
            if (out / plot).exists():
                with Image.open(out / plot) as image:
                    image.load()  # a truncated PNG raises here

    def final(work: Path, reference: Path) -> None:
        out = work / "out"
        assert same(out / main, reference / "out" / main), f"the rerun in {work} did not give the reference's"
        assert all((out / plot).is_file() for plot in plots)

    def prepare(work: Path) -> None:
        (work / "out").mkdir(parents=True, exist_ok=True)
        (work / "out" / main).write_bytes(PREVIOUS)

    sizes = _file_size(*(f"out/{file}" for file in (main, *plots)))
    return Writer(name, lambda work: argv(work / "out"), partial, final, sizes, prepare=prepare)


def writers(photos: Path, run: Path, nights: Path) -> list[Writer]:
    """Every writer, on the inputs of the fault tests: ``photos`` (a photo folder), ``run`` (a finished training
    run, for the export command) and ``nights`` (a NIGHTS-layout folder)."""
    index = ["retrieve", "index", str(photos), "--weights", WEIGHTS, "--no-progress"]
    pairs = ["distance", str(photos), str(photos), "--weights", WEIGHTS, "--workers", "0", "--no-progress"]
    certify = ["certify", str(nights), "--format", "nights", "--weights", WEIGHTS, "--image-size", "32",
               "--workers", "0", "--no-progress", "--per-triplet"]  # fmt: skip
    robustness = ["robustness", str(nights), "--format", "nights", "--weights", WEIGHTS, "--image-size", "32",
                  "--steps", "3", "--restarts", "1", "--workers", "0", "--no-progress"]  # fmt: skip
    return [
        Writer("training", _train_argv(photos), _train_partial, _train_final, _train_size),
        _one_file("export", lambda out: ["export", str(run), str(out / "model.pt")], "model.pt", same_weights),
        _one_file("gallery", lambda out: [*index, "--out", str(out / "g.pt")], "g.pt", _same_gallery),
        _one_file("scores", lambda out: [*pairs, "--out", str(out / "rows.csv")], "rows.csv", _same_bytes),
        _one_file(
            "report",
            lambda out: [*certify, "--out", str(out / "report.json")],
            "report.json",
            _same_report,
            "report.png",
        ),
        _one_file(
            "robustness",
            lambda out: [*robustness, "--out", str(out)],
            "robustness.json",
            _same_report,
            "robustness.png",
        ),
    ]


def _same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def _same_report(a: Path, b: Path) -> bool:
    return report(a) == report(b)


def _same_gallery(a: Path, b: Path) -> bool:
    left, right = (torch.load(p, weights_only=True) for p in (a, b))
    return torch.equal(left["embeddings"], right["embeddings"]) and left["labels"] == right["labels"]


# --- running a writer with a kill --------------------------------------------------------------------------------


def reference_run(writer: Writer, folder: Path, env: dict[str, str]) -> Path:
    """``folder`` after an uninterrupted run of ``writer``."""
    writer.prepare(folder)
    done = lipsim(writer.argv(folder), env)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def kill_and_rerun(writer: Writer, work: Path, reference: Path, env: dict[str, str], limit: int) -> str:
    """Run ``writer`` into ``work``, killed after ``limit`` bytes of atomic writes; check what it left; rerun it to
    the end and check the result. Returns what the killed run said on stderr (for the failure message)."""
    writer.prepare(work)
    killed = lipsim(writer.argv(work), env, fault=bytes_fault(limit))
    if killed.returncode == 0:  # the whole run wrote fewer bytes than the limit
        writer.check_final(work, reference)
        return killed.stderr
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    writer.check_partial(work, reference)
    done = lipsim(writer.argv(work), env)
    assert done.returncode == 0, f"rerun after a kill at byte {limit}:\n{done.stderr[-3000:]}"
    writer.check_final(work, reference)
    assert temporaries(work) == [], f"temporary files left after a kill at byte {limit}: {temporaries(work)}"
    return killed.stderr


def fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
