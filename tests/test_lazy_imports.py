"""Start-up cost: ``import lipsim_tm`` and the one-pair commands never import torchmetrics, torchvision or
matplotlib, and a command loads only what it runs; the metrics still import on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

HEAVY = ("torchmetrics", "torchvision", "matplotlib")
#: The parts of the package ``lipsim distance`` and ``lipsim 2afc`` must not load.
OTHER_COMMANDS = ("lipsim_tm.training", "lipsim_tm.attacks", "lipsim_tm.robustness", "lipsim_tm.retrieval")


def _loaded_after(code: str, watched: tuple[str, ...] = HEAVY) -> list[str]:
    probe = f"{code}\nimport sys\nprint('LOADED:' + ','.join(m for m in {watched!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in result.stdout.rsplit("LOADED:", 1)[1].strip().split(",") if m]


def test_import_lipsim_tm_does_not_import_torchmetrics() -> None:
    assert _loaded_after("import lipsim_tm, lipsim_tm.functional, lipsim_tm.cli") == []


def _images(tmp_path: Path) -> list[str]:
    paths = []
    for i, colour in enumerate(((200, 30, 30), (190, 40, 30), (20, 30, 200))):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 30), colour).save(path)
        paths.append(str(path))
    return paths


def test_distance_and_2afc_commands_never_import_torchmetrics(tmp_path: Path) -> None:
    paths = _images(tmp_path)
    code = (
        "from lipsim_tm.cli import main\n"
        f"assert main(['distance', {paths[0]!r}, {paths[1]!r}, '--weights', 'random:tiny32']) == 0\n"
        f"assert main(['2afc', *{paths!r}, '--weights', 'random:tiny32']) == 0"
    )
    assert _loaded_after(code) == []


def test_metrics_import_on_first_use() -> None:
    code = "import lipsim_tm\nassert lipsim_tm.LipSimDistance.__name__ == 'LipSimDistance'"
    assert "torchmetrics" in _loaded_after(code)
    assert "Certified2AFCAccuracy" in dir(__import__("lipsim_tm"))


def test_distance_and_2afc_load_neither_the_trainer_nor_attacks_robustness_or_retrieval(tmp_path: Path) -> None:
    paths = _images(tmp_path)
    code = (
        "from lipsim_tm.cli import main\n"
        f"assert main(['distance', {paths[0]!r}, {paths[1]!r}, '--weights', 'random:tiny32']) == 0\n"
        f"assert main(['2afc', *{paths!r}, '--weights', 'random:tiny32']) == 0"
    )
    assert _loaded_after(code, OTHER_COMMANDS) == []


def test_building_the_parser_imports_no_command() -> None:
    code = "from lipsim_tm.cli import build_parser\nbuild_parser()"
    assert _loaded_after(code, ("torch", "lipsim_tm.commands.train", "lipsim_tm.commands.distance")) == []


def test_version_prints_the_package_version() -> None:
    import lipsim_tm

    result = subprocess.run([sys.executable, "-m", "lipsim_tm.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"lipsim-tm {lipsim_tm.__version__}"
