"""Running ``lipsim`` in a child process that dies like a SIGKILL at a chosen point (``hook/sitecustomize.py``), and
comparing what a rerun leaves with what an uninterrupted run leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

HOOK = Path(__file__).resolve().parent / "hook"
#: Every atomic write of the package goes through this method (``lipsim_tm.files.atomic_file``).
WRITES = "lipsim_tm.files:_Recorder.write"
KILLED = 137


def command(
    argv: list[str],
    env: dict[str, str],
    *,
    fault: str | None = None,
    rank: int | None = None,
    sleep: float | None = None,
    torchrun: int = 1,
    program: tuple[str, ...] = ("-m", "lipsim_tm.cli"),
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``lipsim argv`` (``torchrun`` processes when ``torchrun > 1``; another
    Python ``program`` when given) with the fault ``fault`` (see the hook's docstring) injected, in the process of
    ``rank`` only when given."""
    env = {**env, "PYTHONPATH": os.pathsep.join([str(HOOK), env.get("PYTHONPATH", "")])}
    env.pop("LIPSIM_FAULT", None)
    if fault is not None:
        env["LIPSIM_FAULT"] = fault
    if rank is not None:
        env["LIPSIM_FAULT_RANK"] = str(rank)
    if sleep is not None:
        env["LIPSIM_FAULT_SLEEP"] = str(sleep)
    launcher = [sys.executable, *program]
    if torchrun > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
                    *program]  # fmt: skip
    return [*launcher, *argv], env


def lipsim(
    argv: list[str], env: dict[str, str], *, timeout: float = 300, cwd: Path | None = None, **fault: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``lipsim argv`` to its end (:func:`command` for the fault options)."""
    line, env = command(argv, env, **fault)
    return subprocess.run(line, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def start(argv: list[str], env: dict[str, str], **fault: Any) -> subprocess.Popen[str]:
    """Start ``lipsim argv`` without waiting for it (:func:`command` for the fault options)."""
    line, env = command(argv, env, **fault)
    return subprocess.Popen(line, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


#: ``python -c DOWNLOAD URL PATH``: one download into a cache, as ``--weights URL`` does it.
DOWNLOAD = (
    "import sys\n"
    "from lipsim_tm.models.download import download_file\n"
    "download_file([sys.argv[1]], sys.argv[2], progress=False)\n"
)


def download(url: str, target: Path, env: dict[str, str], **fault: Any) -> subprocess.CompletedProcess[str]:
    """Download ``url`` to ``target`` in a child (:func:`command` for the fault options)."""
    return lipsim([url, str(target)], env, program=("-c", DOWNLOAD), timeout=120, **fault)


def bytes_fault(limit: int) -> str:
    """Die when the atomic writes of the process have passed ``limit`` bytes in all."""
    return f"{WRITES}:bytes:{limit}"


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The model weights of an export, a training checkpoint or a gallery's embeddings (weights-only read)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "embeddings"):
        if key in payload:
            value = payload[key]
            return value if isinstance(value, dict) else {key: value}
    raise KeyError(f"{path} holds none of model, state_dict, embeddings: {sorted(payload)}")


def same_weights(a: Path, b: Path) -> bool:
    left, right = weights(a), weights(b)
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def report(path: Path, volatile: tuple[str, ...] = ("seconds", "plot")) -> dict:
    """A JSON report without the keys that differ between two runs of the same evaluation."""
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in volatile}


def log_rows(path: Path, columns: tuple[str, ...] = ("step", "epoch", "loss", "lr")) -> list[tuple[str, ...]]:
    """The rows of a training log, in the columns that are the same for two runs of the same training."""
    import csv

    with path.open(newline="") as handle:
        return [tuple(row[c] for c in columns) for row in csv.DictReader(handle)]
