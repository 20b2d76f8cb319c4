"""Paths users give, checked before any work (:func:`check_file`, :func:`check_folder`, :func:`check_writable`,
:func:`make_folder`); writing files so that a failure never leaves a partial file nor costs the previous good
one, and says why; and one process's claim on an output folder (:class:`FolderLock`).

Every writer of the package (checkpoints, exports, teacher-cache entries, galleries, reports, scores files,
downloads) writes through :func:`atomic_file`: a temporary file in the target's folder, flushed and fsynced, then
``os.replace``-d onto the target, so a reader sees the old file or the complete new one, never a part. The
temporary file of a process killed while writing is removed by the next write of the same file. A failure
of the file system (no space, the file-size limit, a read-only folder, a quota, no permission) becomes a
:class:`WriteError` that names the file and the cause in words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: File-system failures a user can act on, in words.
CAUSES: dict[int, str] = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "the file would exceed the file-size limit (ulimit -f)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class WriteError(OSError):
    """A file could not be written; the message names it, says why, and that the previous file is kept. ``errno``
    is the operating system's code (``errno.ENOSPC``, ...); ``str()`` is the message alone."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file here: ``0o666`` less the process umask (read without changing it,
    where the platform allows; else ``0o644``)."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("Umask:"))
        return 0o666 & ~int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError):
        return 0o644


def write_error(path: Path, error: OSError, what: str) -> WriteError:
    """``error`` (a failed write of ``what`` at ``path``) as a :class:`WriteError` in words."""
    cause = CAUSES.get(error.errno or 0, error.strerror or str(error))
    return WriteError(
        f"cannot write the {what} {path}: {cause}; nothing was written"
        + (f" and the previous {path.name} is kept" if path.exists() else ""),
        error.errno,
    )


def _article(what: str) -> str:
    return f"{'an' if what[0].lower() in 'aeiou' else 'a'} {what}"


def check_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a ``Path`` if it is an existing file (``what``: "image file", "CSV table", ...); else
    ``IsADirectoryError`` (a folder) or ``FileNotFoundError``, naming ``what`` and ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"expected {_article(what)}, got the folder {path}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def check_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a ``Path`` if it is an existing folder (``what``: "image folder", "data folder", ...); else
    ``NotADirectoryError`` (a file) or ``FileNotFoundError``, naming ``what`` and ``path``."""
    path = Path(path)
    if path.is_file():
        raise NotADirectoryError(f"expected {_article(what)}, got the file {path}")
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing part of ``path`` (itself or a parent) when that part is a file, not a folder."""
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def _create_folder(folder: Path, path: Path, what: str) -> None:
    """Create ``folder`` (with its parents) for the ``what`` at ``path``, or raise a :class:`WriteError`."""
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise WriteError(f"cannot write the {what} {path}: {blocker} is a file, not a folder", errno.ENOTDIR)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(path, error, what) from error
    if not os.access(folder, os.W_OK):
        raise write_error(path, PermissionError(errno.EACCES, "permission denied"), what)


def make_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a ``Path``, an output folder created if needed (with its parents) and writable; else
    ``NotADirectoryError`` (it is a file) or :class:`WriteError` (it cannot be created or written)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"expected {_article(what)}, got the file {path}")
    _create_folder(path, path, what)
    return path


def check_writable(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a ``Path`` if a file can be written there (checked before any work starts): not a folder, and its
    folder exists or can be created, and is writable. Raises ``IsADirectoryError`` or :class:`WriteError`."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"expected {_article(what)}, got the folder {path}")
    _create_folder(path.parent, path, what)
    return path


class _Recorder:
    """A file's ``write`` that remembers the ``OSError`` it raised (``torch.save`` reports it as a RuntimeError)."""

    def __init__(self, handle: IO[Any]) -> None:
        self.handle, self.error = handle, None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def _temporary_prefix(path: Path) -> str:
    """Temporary files of ``path`` are ``.<name>.<host>.<pid>.<random>.tmp``: their writer can be told dead."""
    return f".{path.name}.{socket.gethostname()}."


def _remove_dead_temporaries(path: Path) -> None:
    """Remove the temporary files of ``path`` left by processes of this host that died while writing it (killed,
    out of memory): nothing else could ever remove them. A live writer's temporary file is left alone."""
    prefix = _temporary_prefix(path)
    try:
        entries = [entry.name for entry in os.scandir(path.parent) if entry.name.startswith(prefix)]
    except OSError:
        return
    for name in entries:
        pid = name[len(prefix) :].split(".", 1)[0]
        if name.endswith(".tmp") and pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                (path.parent / name).unlink()


@contextmanager
def atomic_file(path: str | os.PathLike[str], what: str, *, text: bool = False) -> Iterator[IO[Any]]:
    """A file to write ``what`` (e.g. "checkpoint") at ``path`` in, replacing ``path`` only when the block ends
    without an error; on any error the temporary file is removed and ``path`` is untouched. The new file gets the
    permissions of any newly created file (``0o666`` less the umask), not a temporary file's ``0o600``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"expected {_article(what)}, got the folder {path}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write the {what} {path}: its folder {path.parent} does not exist")
    _remove_dead_temporaries(path)
    try:
        fd, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f"{_temporary_prefix(path)}{os.getpid()}.", suffix=".tmp"
        )
    except OSError as error:
        raise write_error(path, error, what) from error
    recorder = None
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "w" if text else "wb", encoding="utf-8" if text else None) as handle:
            recorder = _Recorder(handle)
            yield recorder  # type: ignore[misc]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        cause = error if isinstance(error, OSError) else getattr(recorder, "error", None)
        if cause is not None and not isinstance(cause, WriteError) and cause.errno in CAUSES:
            raise write_error(path, cause, what) from error
        raise


def atomic_torch_save(obj: object, path: str | os.PathLike[str], what: str = "file") -> None:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_file`."""
    import torch

    with atomic_file(path, what) as handle:
        torch.save(obj, handle)


def atomic_write_text(path: str | os.PathLike[str], text: str, what: str = "file") -> None:
    """``text`` (UTF-8) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, what, text=True) as handle:
        handle.write(text)


class FolderBusyError(ValueError):
    """Another live process holds the lock of a folder (:class:`FolderLock`)."""


class FolderLock:
    """An exclusive claim on an output folder by one process: the file ``.<name>.lock`` beside the folder (so it
    survives the folder being moved aside), created atomically (``O_EXCL``) and holding ``host pid``.

    :meth:`acquire` raises :class:`FolderBusyError` while a live process on this host holds it, or a process on
    another host (whose liveness cannot be seen from here: the message names the file to delete); a lock left
    by a process that died (killed, crashed) is taken over with a note. :meth:`release` removes it.
    """

    def __init__(self, folder: str | os.PathLike[str], what: str) -> None:
        folder = Path(folder)
        self.path = folder.parent / f".{folder.name}.lock"
        self.folder, self.what = folder, what
        self.held = False

    @staticmethod
    def _owner() -> str:
        return f"{socket.gethostname()} {os.getpid()}"

    def _holder(self) -> tuple[str, int] | None:
        """``(host, pid)`` written in the lock file, or None when it is unreadable or empty (being written)."""
        try:
            host, pid = self.path.read_text(encoding="utf-8").split()
            return host, int(pid)
        except (OSError, ValueError):
            return None

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # the second try after removing a dead process's lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, default_file_mode())
            except FileExistsError:
                written = holder = self._holder()
                if holder is None and self._age() > 10.0:  # created by a process killed before it wrote its name
                    holder = (socket.gethostname(), -1)
                if holder is None or holder[0] != socket.gethostname() or _alive(holder[1]):
                    who = f"process {holder[1]} on {holder[0]}" if holder else "another process"
                    raise FolderBusyError(
                        f"the {self.what} {self.folder} is in use by {who} (lock {self.path}): wait for it to finish"
                        f" or choose another folder; if no run is using it, delete {self.path}"
                    ) from None
                print(
                    f"note: taking over the lock of {self.folder} left by process {holder[1]}, which has ended",
                    file=sys.stderr,
                )
                if self._holder() == written:  # not taken over by another process meanwhile
                    self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self._owner() + "\n")
            self.held = True
            return self
        raise FolderBusyError(f"cannot lock the {self.what} {self.folder}: {self.path} keeps reappearing")

    def release(self) -> None:
        if self.held and self._holder() == (socket.gethostname(), os.getpid()):
            self.path.unlink(missing_ok=True)
        self.held = False


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
