"""The layering of docs/architecture.md, checked on the source: no import runs up a layer, none in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "lipsim_tm"

#: Layer of each top-level part of the package (docs/architecture.md).
LAYERS: dict[str, int] = {
    "checks": 0,
    "nn": 1,
    "distributed": 1,
    "files": 1,
    "data": 1,
    "attacks": 1,
    "plotting": 1,
    "models": 2,
    "functional": 3,
    "metrics": 4,
    "losses": 4,
    "retrieval": 4,
    "training": 5,
    "robustness": 5,
    "commands": 6,
    "cli": 6,
    "__init__": 6,
}
#: Order inside the certificates package: a module imports only modules of a smaller rank.
CERTIFICATE_RANKS: dict[str, int] = {
    "policy": 0,
    "margins": 1,
    "plain": 2,
    "norm_aware": 2,
    "intervals": 3,
    "__init__": 4,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``lipsim_tm`` module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lipsim_tm"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("lipsim_tm"))
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_a_layer(path: Path) -> None:
    own = LAYERS[_part(_module_name(path))]
    for target in _imports(path):
        part = _part(target)
        if part in LAYERS:
            where = f"{path.relative_to(PACKAGE)} (layer {own})"
            assert LAYERS[part] <= own, f"{where} imports {target} (layer {LAYERS[part]})"


def test_the_certificates_package_flows_one_way() -> None:
    folder = PACKAGE / "functional" / "certificates"
    for path in folder.glob("*.py"):
        rank = CERTIFICATE_RANKS[path.stem]
        for target in _imports(path):
            if target.startswith("lipsim_tm.functional.certificates."):
                name = target.split(".")[3]
                if name in CERTIFICATE_RANKS:
                    assert CERTIFICATE_RANKS[name] < rank, f"{path.name} imports {target}"
            elif target.startswith("lipsim_tm.functional"):
                assert target.startswith("lipsim_tm.functional.normalization"), f"{path.name} imports {target}"


#: The pieces of the pipeline after the network (normalise -> distances -> certificates), which only the functional
#: cores (``functional/distance.py``, ``functional/two_afc.py``) compose.
PIPELINE_PIECES = (
    "apply_normalization",
    "embedding_distance",
    "distance_from_embeddings",
    "norm_and_floor",
    "triplet_margins",
    "plain_radii",
    "norm_aware_radii",
    "invert_shift",
    "distance_shift",
    "distance_interval",
)


@pytest.mark.parametrize(
    "path",
    [p for p in SOURCES if p.parent.name in ("metrics", "commands")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_metrics_and_commands_call_the_core_not_its_pieces(path: Path) -> None:
    names = {target.rsplit(".", 1)[-1] for target in _imports(path)}
    assert not names & set(PIPELINE_PIECES), f"{path.relative_to(PACKAGE)} uses {sorted(names & set(PIPELINE_PIECES))}"


def test_there_is_no_import_cycle() -> None:
    graph = {_module_name(path): _imports(path) for path in SOURCES}
    modules = set(graph)
    edges = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}
    # A package's __init__ re-exporting its own submodules is not a cycle of code; skip parent -> child edges.
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
