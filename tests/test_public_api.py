"""The public API is small and documented: at most 60 names across the packages' ``__all__`` lists, each listed
with one line in ``docs/api.md``, each importable; the names earlier READMEs imported from ``lipsim_tm`` still work."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import lipsim_tm

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lipsim_tm"


def _exported() -> set[str]:
    """``module.name`` for every entry of every ``__all__`` list under ``src/lipsim_tm``."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                assert path.name == "__init__.py", f"{path.relative_to(ROOT)}: only packages declare __all__"
                module = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
                names.update(f"{module}.{element.value}" for element in node.value.elts)
    return names


def test_at_most_60_public_names() -> None:
    assert len(_exported()) <= 60, sorted(_exported())


def test_docs_api_lists_exactly_the_public_names_once_each() -> None:
    lines = re.findall(r"^- `(lipsim_tm[\w.]*)`: \S", (ROOT / "docs" / "api.md").read_text(), re.M)
    assert len(lines) == len(set(lines)), "a name is listed twice"
    assert set(lines) == _exported()


def test_every_public_name_imports() -> None:
    for dotted in sorted(_exported()):
        module, name = dotted.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is not None, dotted


def test_names_earlier_readmes_imported_from_the_top_level_still_work() -> None:
    from lipsim_tm.models import load_export, load_official_checkpoint, save_export
    from lipsim_tm.models.backbone import NAMED_CONFIGS, LipSimConfig

    assert lipsim_tm.LipSimConfig is LipSimConfig
    assert lipsim_tm.NAMED_CONFIGS is NAMED_CONFIGS
    assert (lipsim_tm.load_export, lipsim_tm.save_export) == (load_export, save_export)
    assert lipsim_tm.load_official_checkpoint is load_official_checkpoint
