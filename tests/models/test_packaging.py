"""The shipped default model and the demo photos are package data: found through importlib.resources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lipsim_tm.models import pretrained, registry

REPO = Path(__file__).resolve().parents[2]


def test_pretrained_dir_is_the_package_folder() -> None:
    assert Path(pretrained.__file__).parent == registry.PRETRAINED_DIR
    assert registry.local_path(registry.REGISTRY["default"]) == registry.PRETRAINED_DIR / pretrained.DEFAULT_FILENAME


@pytest.mark.slow
def test_wheel_holds_the_default_model_and_the_assets(tmp_path: Path) -> None:
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    (source / "src/lipsim_tm/models/pretrained" / pretrained.DEFAULT_FILENAME).write_bytes(b"stand-in")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"lipsim_tm/models/pretrained/{pretrained.DEFAULT_FILENAME}" in names
    assets = sorted(p.relative_to(REPO / "src").as_posix() for p in (REPO / "src/lipsim_tm/assets").rglob("*"))
    assert {a for a in assets if (REPO / "src" / a).is_file()} <= names
