"""Start-up cost: ``import lipsim_tm`` and the one-pair commands never import torchmetrics, torchvision or
matplotlib; the metrics still import on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

HEAVY = ("torchmetrics", "torchvision", "matplotlib")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in result.stdout.rsplit("LOADED:", 1)[1].strip().split(",") if m]


def test_import_lipsim_tm_does_not_import_torchmetrics() -> None:
    assert _loaded_after("import lipsim_tm, lipsim_tm.functional, lipsim_tm.cli") == []


def test_distance_and_2afc_commands_never_import_torchmetrics(tmp_path: Path) -> None:
    paths = []
    for i, colour in enumerate(((200, 30, 30), (190, 40, 30), (20, 30, 200))):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 30), colour).save(path)
        paths.append(str(path))
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
