"""``lipsim_tm.files``: path checks, and atomic writes that keep the previous file and say why they failed."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lipsim_tm.files import (
    FolderBusyError,
    FolderLock,
    WriteError,
    atomic_file,
    atomic_torch_save,
    atomic_write_text,
    check_file,
    check_folder,
    check_writable,
    default_file_mode,
    make_folder,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def write_then_fail(path: Path, text: str, error: BaseException, what: str = "scores file") -> None:
    """Write ``text`` to ``path`` through :func:`atomic_file`, then raise ``error`` inside the block."""
    with atomic_file(path, what, text=True) as handle:
        handle.write(text)
        raise error


def save_on_a_full_disk(path: Path, room: int) -> None:
    """``torch.save`` through :func:`atomic_file` onto a disk that fills after ``room`` bytes."""

    class FullDisk:
        def __init__(self, handle) -> None:
            self.handle, self.room = handle, room

        def write(self, data) -> int:
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self.handle.write(data)

        def flush(self) -> None:
            self.handle.flush()

    with atomic_file(path, "checkpoint") as handle:
        handle.handle = FullDisk(handle.handle)
        torch.save({"x": torch.zeros(10_000)}, handle)


def test_a_completed_write_replaces_the_file_with_the_default_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    atomic_write_text(target, "new", "report")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == default_file_mode()
    assert leftovers(tmp_path) == []
    atomic_torch_save({"x": torch.arange(3)}, tmp_path / "t.pt", "tensor file")
    assert torch.equal(torch.load(tmp_path / "t.pt", weights_only=True)["x"], torch.arange(3))


def test_an_error_inside_the_block_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    target.write_text("previous")
    with pytest.raises(KeyboardInterrupt):
        write_then_fail(target, "half a row", KeyboardInterrupt())
    assert target.read_text() == "previous"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EFBIG, "file-size limit"),
        (errno.EDQUOT, "disk quota"),
        (errno.EROFS, "read-only"),
    ],
)
def test_file_system_failures_become_write_errors_in_words(tmp_path: Path, code: int, words: str) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"good")
    with pytest.raises(WriteError) as caught:
        write_then_fail(target, "part", OSError(code, os.strerror(code)), what="export")
    message = str(caught.value)
    assert message.startswith(f"cannot write the export {target}: ")
    assert words in message
    assert "nothing was written and the previous model.pt is kept" in message
    assert "Errno" not in message
    assert caught.value.errno == code
    assert target.read_bytes() == b"good"
    assert leftovers(tmp_path) == []


def test_torch_save_failures_are_recognised_through_the_file_handle(tmp_path: Path) -> None:
    """``torch.save`` reports a failed write as a RuntimeError; the handle remembers the OSError behind it."""
    target = tmp_path / "c.pt"
    with pytest.raises(WriteError, match="no space left"):
        save_on_a_full_disk(target, 1000)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_other_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a file-system failure"):
        write_then_fail(tmp_path / "x", "", ValueError("not a file-system failure"))


def test_path_checks_name_what_was_expected_and_what_came(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    assert check_file(image, "image file") == image
    with pytest.raises(IsADirectoryError, match=f"expected an image file, got the folder {tmp_path}"):
        check_file(tmp_path, "image file")
    with pytest.raises(FileNotFoundError, match="CSV table not found"):
        check_file(tmp_path / "none.csv", "CSV table")
    assert check_folder(tmp_path, "data folder") == tmp_path
    with pytest.raises(NotADirectoryError, match=f"expected a data folder, got the file {image}"):
        check_folder(image, "data folder")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        check_folder(tmp_path / "none", "image folder")


def test_output_checks_create_folders_and_refuse_files(tmp_path: Path) -> None:
    assert make_folder(tmp_path / "a" / "b", "run folder").is_dir()
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="expected a run folder, got the file"):
        make_folder(blocker, "run folder")
    with pytest.raises(WriteError, match=f"{blocker} is a file, not a folder"):
        make_folder(blocker / "run" / "sub", "run folder")
    assert check_writable(tmp_path / "new" / "g.pt", "gallery") == tmp_path / "new" / "g.pt"
    with pytest.raises(IsADirectoryError, match="expected a gallery, got the folder"):
        check_writable(tmp_path, "gallery")
    with pytest.raises(WriteError, match=f"cannot write the gallery {blocker / 'g.pt'}: {blocker} is a file, not a"):
        check_writable(blocker / "g.pt", "gallery")
    with pytest.raises(FileNotFoundError, match=r"its folder .* does not exist"):
        write_then_fail(tmp_path / "none" / "x.pt", "", ValueError("never reached"))


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_a_folder_lock_is_exclusive_while_its_holder_lives(tmp_path: Path) -> None:
    run = tmp_path / "run"
    lock = FolderLock(run, "run folder").acquire()
    assert (tmp_path / ".run.lock").read_text() == f"{socket.gethostname()} {os.getpid()}\n"
    with pytest.raises(FolderBusyError, match=rf"the run folder {run} is in use by process {os.getpid()} on "):
        FolderLock(run, "run folder").acquire()
    FolderLock(run, "run folder").release()  # a lock not acquired releases nothing
    assert (tmp_path / ".run.lock").exists()
    lock.release()
    assert not (tmp_path / ".run.lock").exists()
    FolderLock(run, "run folder").acquire().release()  # free again


def test_the_lock_of_a_process_that_died_is_taken_over_with_a_note(tmp_path: Path, capsys) -> None:
    pid = dead_pid()
    (tmp_path / ".run.lock").write_text(f"{socket.gethostname()} {pid}\n")
    lock = FolderLock(tmp_path / "run", "run folder").acquire()
    note = f"taking over the lock of {tmp_path / 'run'} left by process {pid}, which has ended"
    assert note in capsys.readouterr().err
    assert (tmp_path / ".run.lock").read_text().split() == [socket.gethostname(), str(os.getpid())]
    lock.release()


def test_a_lock_that_cannot_be_judged_here_is_respected(tmp_path: Path) -> None:
    """Another host's lock (its process cannot be seen) and a lock still being written (empty, recent) refuse; an
    empty lock older than 10 s (its writer died before writing its name) is taken over."""
    lock_file = tmp_path / ".run.lock"
    lock_file.write_text("elsewhere 12345\n")
    with pytest.raises(FolderBusyError, match=rf"in use by process 12345 on elsewhere .*delete {lock_file}"):
        FolderLock(tmp_path / "run", "run folder").acquire()
    lock_file.write_text("")
    with pytest.raises(FolderBusyError, match="in use by another process"):
        FolderLock(tmp_path / "run", "run folder").acquire()
    old = time.time() - 60
    os.utime(lock_file, (old, old))
    FolderLock(tmp_path / "run", "run folder").acquire().release()


def test_temporary_files_of_dead_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "g.pt"
    host = socket.gethostname()
    dead = tmp_path / f".g.pt.{host}.{dead_pid()}.abc.tmp"
    live = tmp_path / f".g.pt.{host}.{os.getpid()}.def.tmp"  # a write in progress (this process's)
    other = tmp_path / f".other.pt.{host}.{dead_pid()}.ghi.tmp"  # another file's: left to that file's writes
    for path in (dead, live, other):
        path.write_bytes(b"part")
    atomic_write_text(target, "done")
    assert target.read_text() == "done"
    assert sorted(leftovers(tmp_path)) == sorted([live.name, other.name])
