"""Everything the package reads back, damaged as a crash, a full disk or an interrupted copy leaves it, is handled as
its kind demands: cache entries are recomputed (or downloaded again, ``tests/models/test_download.py``) with a
note; a damaged newest checkpoint is skipped for the newest readable one with a note; damaged exports, galleries
and user files stop with an error line naming the file and what it is."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fault_tools import lipsim, log_rows, same_weights
from writers import TRAIN, fresh

from dataset_writers import write_bapps, write_nights
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.checkpoints.export import save_export
from torch_threads import child_env

FORBIDDEN = ("Traceback", "miniz", "[Errno")


def train(photos: Path, work: Path, *extra: str):
    argv = ["train", "distill", "--data-dir", str(photos), "--out", str(work / "run"),
            "--teacher-cache", str(work / "cache"), *TRAIN, *extra]  # fmt: skip
    return lipsim(argv, child_env())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, photos_dir: Path) -> Path:
    work = tmp_path_factory.mktemp("reference")
    done = train(photos_dir, work)
    assert done.returncode == 0, done.stderr[-2000:]
    return work


def damage(path: Path) -> None:
    """What an interrupted copy or a full disk leaves: the first 10 bytes."""
    path.write_bytes(path.read_bytes()[:10])


def test_damaged_teacher_cache_entries_are_recomputed(tmp_path, photos_dir, reference):
    work = fresh(tmp_path / "work")
    (work / "cache").mkdir()
    for entry in (reference / "cache").rglob("*.pt"):
        target = work / "cache" / entry.relative_to(reference / "cache")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(entry.read_bytes())
    entries = sorted((work / "cache").rglob("*.pt"))
    for entry in entries[::2]:
        damage(entry)
    done = train(photos_dir, work)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"note: recomputed {len(entries[::2])} damaged teacher-cache entries in {work / 'cache'}" in done.stderr
    assert same_weights(work / "run" / "export.pt", reference / "run" / "export.pt")
    for entry in entries:  # rewritten: each reads as its reference twin (recomputed in smaller batches: to rounding)
        twin = reference / "cache" / entry.relative_to(work / "cache")
        stored, expected = (torch.load(p, weights_only=True) for p in (entry, twin))
        assert stored["key"] == expected["key"]
        assert torch.allclose(stored["embedding"], expected["embedding"], rtol=1e-12, atol=0)


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, photos_dir, reference):
    """A run crashed after its third checkpoint, which the crash damaged: ``--resume latest`` continues from the
    second and ends with the uninterrupted run's weights and log."""
    work = fresh(tmp_path / "work")
    (work / "run" / "checkpoints").mkdir(parents=True)
    for step in (1, 2, 3):
        name = f"checkpoint-{step:09d}.pt"
        (work / "run" / "checkpoints" / name).write_bytes((reference / "run" / "checkpoints" / name).read_bytes())
    (work / "run" / "log.csv").write_bytes((reference / "run" / "log.csv").read_bytes())
    newest = work / "run" / "checkpoints" / "checkpoint-000000003.pt"
    damage(newest)
    done = train(photos_dir, work, "--resume", "latest")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "note: skipping checkpoint-000000003.pt is damaged (cannot read training checkpoint" in done.stderr
    assert "note: resuming from checkpoint-000000002.pt, the newest readable checkpoint" in done.stderr
    assert same_weights(work / "run" / "export.pt", reference / "run" / "export.pt")
    assert log_rows(work / "run" / "log.csv") == log_rows(reference / "run" / "log.csv")
    assert same_weights(newest, reference / "run" / "checkpoints" / newest.name)  # rewritten by the resumed run


def test_a_damaged_training_log_is_named_and_the_run_resumes_without_it(tmp_path, photos_dir, reference):
    """The log is the run's record, not recomputable: a damaged one stops the resume with an error naming it; moved
    aside, the run resumes to the uninterrupted weights with a log from the resumed step."""
    work = fresh(tmp_path / "work")
    (work / "run" / "checkpoints").mkdir(parents=True)
    name = "checkpoint-000000002.pt"
    (work / "run" / "checkpoints" / name).write_bytes((reference / "run" / "checkpoints" / name).read_bytes())
    log = work / "run" / "log.csv"
    log.write_bytes(bytes(range(256)) + b"\n")
    failed = train(photos_dir, work, "--resume", "latest")
    assert failed.returncode == 2, failed.stderr[-2000:]
    assert f"error: cannot read the training log {log}: it is damaged (" in failed.stderr
    assert "move it aside to continue the run" in failed.stderr
    assert "Traceback" not in failed.stderr
    log.rename(log.with_name("log.damaged.csv"))
    done = train(photos_dir, work, "--resume", "latest")
    assert done.returncode == 0, done.stderr[-2000:]
    assert same_weights(work / "run" / "export.pt", reference / "run" / "export.pt")
    assert log_rows(log) == log_rows(reference / "run" / "log.csv")[2:]


def test_export_of_a_run_skips_a_damaged_newest_checkpoint(tmp_path, reference):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for step in (3, 4):
        name = f"checkpoint-{step:09d}.pt"
        (run / "checkpoints" / name).write_bytes((reference / "run" / "checkpoints" / name).read_bytes())
    damage(run / "checkpoints" / "checkpoint-000000004.pt")
    done = lipsim(["export", str(run), str(tmp_path / "out.pt")], child_env())
    assert done.returncode == 0, done.stderr
    assert "skipping checkpoint-000000004.pt is damaged" in done.stderr
    assert same_weights(tmp_path / "out.pt", reference / "run" / "checkpoints" / "checkpoint-000000003.pt")
    damage(run / "checkpoints" / "checkpoint-000000003.pt")
    failed = lipsim(["export", str(run), str(tmp_path / "out.pt")], child_env())
    assert failed.returncode == 2
    assert "lipsim export: error: no readable checkpoint in" in failed.stderr


def test_damaged_files_are_named_with_what_they_are(tmp_path, write_image_pair):
    a, b = write_image_pair
    export = tmp_path / "model.pt"
    save_export(LipSimBackbone("tiny32"), export)
    damage(export)
    gallery = tmp_path / "g.pt"
    gallery.write_bytes(b"PK\x03\x04 truncated")
    broken_image = tmp_path / "broken.png"
    broken_image.write_bytes(a.read_bytes()[:40])
    table = tmp_path / "pairs.csv"
    table.write_bytes(bytes(range(256)))
    nights = write_nights(tmp_path / "nights", [{"votes": 6, "p": 0.9, "split": "test"}], size=32)
    (nights / "data.csv").write_bytes(bytes(range(256)))
    bapps = write_bapps(tmp_path / "bapps", {"cnn": [0.5]}, size=32)
    judge = next((bapps / "2afc" / "val" / "cnn" / "judge").glob("*.npy"))
    damage(judge)
    cases = [
        (["distance", str(a), str(b), "--weights", str(export)], f"cannot read weights '{export}'"),
        (
            [
                "train",
                "distill",
                "--data-dir",
                str(a.parent),
                "--teacher",
                f"export:{export}",
                "--out",
                str(tmp_path / "r"),
                "--model",
                "tiny32",
            ],
            f"cannot read weights '{export}'",
        ),
        (["retrieve", "query", str(gallery), str(a)], f"cannot read gallery '{gallery}'"),
        (
            ["distance", str(a), str(broken_image), "--weights", "random:tiny32"],
            f"cannot decode image file {broken_image}",
        ),
        (["distance", "--pairs", str(table), "--weights", "random:tiny32"], f"{table} is not a readable CSV table"),
        (
            ["certify", str(nights), "--format", "nights", "--weights", "random:tiny32", "--image-size", "32"],
            f"{nights / 'data.csv'} is not a readable NIGHTS index",
        ),
        (
            ["certify", str(bapps), "--format", "bapps", "--weights", "random:tiny32", "--workers", "0"],
            f"cannot read judge file {judge}",
        ),
    ]
    for argv, needle in cases:
        done = lipsim(argv, child_env())
        assert done.returncode == 2, (argv, done.stderr)
        assert needle in done.stderr, done.stderr
        assert "checkpoint" not in done.stderr.split("error:")[1].split("\n")[0] or "weights" in needle
        for text in FORBIDDEN:
            assert text not in done.stderr, done.stderr
