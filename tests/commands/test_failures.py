"""Every failure a user can meet is an error line: ``lipsim CMD: error: ...``, exit status 2, and never a traceback,
an ``[Errno N]`` string or a library's advice. One test per failure class: offline downloads, galleries (missing,
corrupt, not a gallery, arguments swapped), a folder where a file is expected, an output that cannot be written,
and a full disk (a file-size limit) for every writer, which must leave no partial file and keep the previous one."""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cli_helpers import WEIGHTS, run_cli

from lipsim_tm.models import registry, weights
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.checkpoints.export import save_export
from weights_server import LocalServer, serving

FORBIDDEN = ("Traceback", "[Errno", "Errno ", "weights_only", "Please file an issue")
TRAIN = ["--teacher", "training_fixtures:make_teacher", "--model", "tiny32", "--batch-size", "4", "--epochs", "1",
         "--warmup-steps", "1", "--no-progress", "--device", "cpu", "--threads", "1"]  # fmt: skip


def assert_error_line(code: int, stderr: str, command: str, *needles: str) -> None:
    """Exit status 2, ``lipsim COMMAND: error:`` first, every needle in the message, nothing forbidden."""
    assert code == 2, stderr
    assert f"lipsim {command}: error: " in stderr, stderr
    for text in FORBIDDEN:
        assert text not in stderr, stderr
    for needle in needles:
        assert needle in stderr, stderr


@pytest.fixture
def images(write_image) -> tuple[Path, Path]:
    return write_image("a.png", 1), write_image("b.png", 2)


@pytest.fixture
def gallery(tmp_path: Path, images, capsys) -> Path:
    path = tmp_path / "g.pt"
    folder = images[0].parent
    code, _, err = run_cli(["retrieve", "index", str(folder), "--out", str(path), "--weights", WEIGHTS], capsys)
    assert code == 0, err
    return path


# --- downloads --------------------------------------------------------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The released checkpoints' URLs point at a closed port on 127.0.0.1; an empty cache folder."""
    monkeypatch.setenv("LIPSIM_CACHE_DIR", str(tmp_path / "cache"))
    for name, entry in list(registry.REGISTRY.items()):
        if entry.urls:
            monkeypatch.setitem(registry.REGISTRY, name, dataclasses.replace(entry, urls=("http://127.0.0.1:9/x",)))
    weights.clear_backbone_cache()
    yield
    weights.clear_backbone_cache()


def test_offline_download_is_an_error_line_naming_where_to_put_the_file(offline, images, capsys):
    code, _, err = run_cli(["distance", *map(str, images), "--weights", "lipsim-margin0.5"], capsys)
    assert_error_line(code, err, "distance", "127.0.0.1:9", "lipsim-margin0.5")


def test_offline_compare_paper_is_an_error_line(offline, tmp_path, capsys):
    from dataset_writers import write_nights

    root = write_nights(tmp_path / "nights", [{"votes": 6, "p": 1.0, "split": "test"}] * 2)
    argv = ["certify", str(root), "--format", "nights", "--weights", "lipsim-margin0.5", "--normalization", "plain",
            "--compare-paper"]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert_error_line(code, err, "certify", "127.0.0.1:9")


# --- galleries --------------------------------------------------------------------------------------------------


def test_missing_gallery(tmp_path, images, capsys):
    code, _, err = run_cli(["retrieve", "query", str(tmp_path / "none.pt"), str(images[0])], capsys)
    assert_error_line(code, err, "retrieve", "gallery file not found", "none.pt")


def test_corrupt_and_truncated_galleries(tmp_path, gallery, images, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(gallery.read_bytes()[: gallery.stat().st_size // 2])
    for path in (garbage, truncated):
        code, _, err = run_cli(["retrieve", "query", str(path), str(images[0])], capsys)
        assert_error_line(code, err, "retrieve", f"cannot read gallery '{path}'", "corrupted, truncated")


def test_files_that_are_not_galleries(tmp_path, images, capsys):
    export = tmp_path / "model.pt"
    save_export(LipSimBackbone("tiny32"), export)
    plain = tmp_path / "dict.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    for path in (export, plain):
        code, _, err = run_cli(["retrieve", "query", str(path), str(images[0])], capsys)
        assert_error_line(code, err, "retrieve", str(path), "not a gallery", "lipsim retrieve index")


def test_swapped_query_arguments_say_which_comes_first(gallery, images, capsys):
    code, _, err = run_cli(["retrieve", "query", str(images[0]), str(gallery)], capsys)
    assert_error_line(code, err, "retrieve", "is an image, not a gallery", "lipsim retrieve query GALLERY")


# --- a folder where a file is expected (and the other way round) ------------------------------------------------


def test_folders_given_for_files(tmp_path, images, gallery, capsys):
    folder = images[0].parent
    cases = [
        (["distance", str(folder), str(images[1])], "distance", "is a folder but the other is not"),
        (["2afc", str(images[0]), str(folder), str(images[1])], "2afc", "got the folder"),
        (["retrieve", "query", str(gallery), str(folder)], "retrieve", "got the folder"),
        (["retrieve", "query", str(folder), str(images[0])], "retrieve", "got the folder"),
        (["distance", *map(str, images), "--weights", str(folder)], "distance", "got the folder"),
        (
            ["retrieve", "index", str(images[0]), "--out", str(tmp_path / "g2.pt")],
            "retrieve",
            "expected an image folder",
        ),
        (["certify", str(images[0]), "--format", "nights"], "certify", "expected a data folder"),
        (["distance", "--pairs", str(folder)], "distance", "got the folder"),
    ]
    for argv, command, needle in cases:
        code, _, err = run_cli([*argv, "--weights", WEIGHTS] if "--weights" not in argv else argv, capsys)
        assert_error_line(code, err, command, needle)


# --- outputs that cannot be written -----------------------------------------------------------------------------


def test_outputs_under_a_file_are_refused_before_any_work(tmp_path, images, gallery, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    out = blocker / "sub" / "out"
    folder = images[0].parent
    cases = [
        (["distance", *map(str, images), "--out", f"{out}.csv"], "distance"),
        (["distance", str(folder), str(folder), "--out", f"{out}.jsonl"], "distance"),
        (["retrieve", "index", str(folder), "--out", f"{out}.pt"], "retrieve"),
        (["retrieve", "query", str(gallery), str(images[0]), "--out", f"{out}.json"], "retrieve"),
    ]
    for argv, command in cases:
        code, _, err = run_cli([*argv, "--weights", WEIGHTS], capsys)
        assert_error_line(code, err, command, "cannot write", str(blocker))
    code, _, err = run_cli(["train", "distill", "--out", str(out), "--data-dir", str(folder), *TRAIN], capsys)
    assert_error_line(code, err, "train", str(blocker))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder(tmp_path, images, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run_cli(
            ["distance", *map(str, images), "--weights", WEIGHTS, "--out", f"{folder}/s.csv"], capsys
        )
    finally:
        folder.chmod(0o755)
    assert_error_line(code, err, "distance", "cannot write the scores file", "permission denied")


def test_an_output_that_is_a_folder(tmp_path, images, capsys):
    code, _, err = run_cli(["distance", *map(str, images), "--weights", WEIGHTS, "--out", str(tmp_path)], capsys)
    assert_error_line(code, err, "distance", "got the folder")


# --- a full disk: every writer under a file-size limit ----------------------------------------------------------


def limited_run(argv: list[str], env: dict[str, str], limit: int, cwd: Path) -> subprocess.CompletedProcess:
    """``lipsim argv`` in a child whose files may not grow past ``limit`` bytes (``ulimit -f``)."""

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "lipsim_tm.cli", *argv],
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size,
    )


def no_partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def assert_full_disk_error(
    proc: subprocess.CompletedProcess, command: str, target: Path, previous: bytes, failed: Path | None = None
) -> None:
    """The error names the file that failed (``failed``, default ``target``); ``target`` still holds ``previous``."""
    failed = failed or target
    assert_error_line(proc.returncode, proc.stderr, command, str(failed), "file-size limit", "nothing was written")
    if failed == target:
        assert f"the previous {target.name} is kept" in proc.stderr
    assert target.read_bytes() == previous
    assert no_partial_files(target.parent) == []


@pytest.fixture
def previous_file():
    def write(path: Path) -> bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"the previous good file")
        return path.read_bytes()

    return write


def test_full_disk_training_checkpoint(tmp_path, photos_dir, subprocess_env):
    out = tmp_path / "run"
    argv = ["train", "distill", "--out", str(out), "--data-dir", str(photos_dir), *TRAIN]
    proc = limited_run(argv, subprocess_env, 500_000, tmp_path)  # a tiny32 checkpoint is ~825 KB
    assert_error_line(proc.returncode, proc.stderr, "train", "checkpoint-", "file-size limit")
    assert "--resume latest continues from the start (no checkpoint was saved yet)" in proc.stderr
    assert list((out / "checkpoints").glob("*")) == []


def test_full_disk_training_checkpoint_keeps_the_last_good_one(tmp_path, photos_dir, subprocess_env):
    out = tmp_path / "run"
    argv = ["train", "distill", "--out", str(out), "--data-dir", str(photos_dir), *TRAIN]
    first = subprocess.run([sys.executable, "-m", "lipsim_tm.cli", *argv], env=subprocess_env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert first.returncode == 0, first.stderr
    (saved,) = (out / "checkpoints").glob("checkpoint-*.pt")
    before = saved.read_bytes()
    again = [*argv, "--epochs", "2", "--resume", "latest", "--allow-changed-settings"]
    proc = limited_run(again, subprocess_env, 500_000, tmp_path)
    assert_error_line(proc.returncode, proc.stderr, "train", "file-size limit", f"continues from {saved.name}")
    assert sorted((out / "checkpoints").glob("*")) == [saved]
    assert saved.read_bytes() == before


def test_full_disk_export(tmp_path, photos_dir, subprocess_env, previous_file):
    run = tmp_path / "run"
    argv = ["train", "distill", "--out", str(run), "--data-dir", str(photos_dir), *TRAIN]
    done = subprocess.run([sys.executable, "-m", "lipsim_tm.cli", *argv], env=subprocess_env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    target = tmp_path / "exports" / "model.pt"
    previous = previous_file(target)
    proc = limited_run(["export", str(run), str(target)], subprocess_env, 100_000, tmp_path)
    assert_full_disk_error(proc, "export", target, previous)


def test_full_disk_reports_galleries_and_scores(tmp_path, images, subprocess_env, previous_file):
    folder = images[0].parent
    # --workers 0: the file-size limit also caps DataLoader workers' shared memory, and torch's DataLoader then
    # waits forever for the batch a worker could not send (a torch limitation, not a writer's failure).
    scores = ["distance", str(folder), str(folder), "--workers", "0", "--out"]
    cases = [
        (scores, tmp_path / "out" / "scores.csv", "distance"),
        (["retrieve", "index", str(folder), "--out"], tmp_path / "out" / "g.pt", "retrieve"),
    ]
    for argv, target, command in cases:
        previous = previous_file(target)
        proc = limited_run([*argv, str(target), "--weights", WEIGHTS], subprocess_env, 64, tmp_path)
        assert_full_disk_error(proc, command, target, previous)


def test_full_disk_certify_report(tmp_path, subprocess_env, previous_file):
    from dataset_writers import write_nights

    root = write_nights(tmp_path / "nights", [{"votes": 6, "p": 1.0, "split": "test"}] * 2, size=32)
    target = tmp_path / "out" / "report.json"
    previous = previous_file(target)
    argv = ["certify", str(root), "--format", "nights", "--weights", WEIGHTS, "--image-size", "32", "--workers", "0",
            "--out", str(target)]  # fmt: skip
    proc = limited_run(argv, subprocess_env, 64, tmp_path)
    assert_full_disk_error(proc, "certify", target, previous, failed=target.with_suffix(".png"))  # the plot is first


@pytest.fixture
def served() -> Iterator[LocalServer]:
    with serving({"w.pt": os.urandom(300_000)}) as server:
        yield server


def test_full_disk_download(tmp_path, served, images, subprocess_env):
    cache = tmp_path / "cache"
    url = served.url("/files/w.pt")
    script = (
        "import dataclasses, sys\n"
        "from lipsim_tm.models import registry\n"
        "from lipsim_tm.cli import main\n"
        "entry = registry.REGISTRY['lipsim-margin0.5']\n"
        f"registry.REGISTRY[entry.name] = dataclasses.replace(entry, urls=({url!r},))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["distance", *map(str, images), "--weights", "lipsim-margin0.5"]

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        env={**subprocess_env, "PYTHONDONTWRITEBYTECODE": "1", "LIPSIM_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size,
    )
    assert_error_line(proc.returncode, proc.stderr, "distance", "file-size limit", "nothing was written")
    assert [p for p in cache.rglob("*") if p.is_file()] == []
