"""The docs are code: every Python block of every Markdown file runs, every ``lipsim ...`` command line parses with
the real parser, every repository path, module name and relative link they name exists, and none refers to a file
outside the repository. The checkers are tested on broken samples, so a stale doc fails here.

Python blocks run in a fresh interpreter in a folder holding the files they name: ``a.png``, ``b.png``,
``ref.png``, ``img0.png``, ``img1.png`` (photos of one size), ``photos/`` (8 photos of mixed sizes) and
``pairs.csv`` / ``triplets.csv`` (the README's table formats).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from lipsim_tm.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "lipsim_tm"
SKIPPED_FOLDERS = {".git", ".venv", ".tox", "build", "dist", "node_modules", "__pycache__", ".pytest_cache"}
#: First path parts that mean "a file of this repository" (top-level folders, and the package's own folders).
REPO_ROOTS = {"src", "tests", "benchmarks", "docs", "recipes", "tools", ".ci"}
PACKAGE_ROOTS = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
PATH_SUFFIXES = ("py", "md", "sh", "json", "toml", "ini", "txt", "csv", "png", "pt", "pth", "yaml", "yml", "cfg")
#: A relative path that climbs folders (``../x``): it must stay inside the repository, which is all users have.
CLIMBING = re.compile(r"(?:\.\./)+[\w.-][^\s)`'\"]*")


def markdown_files() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*.md")):
        parts = path.relative_to(ROOT).parts
        if not any(part in SKIPPED_FOLDERS or part.endswith(".egg-info") for part in parts):
            found.append(path)
    return found


DOCS = markdown_files()


def doc_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- extracting what a document says -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language (``""`` when none), first line number and text."""

    language: str
    line: int
    text: str


def fenced_blocks(text: str) -> list[Block]:
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if match:
            indent, language, start, body = match.group(1), match.group(2), i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            blocks.append(Block(language, start + 1, "\n".join(body)))
        i += 1
    return blocks


def code_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, command)`` of every line of an indented or fenced code block, with ``\\`` continuations
    joined."""
    found, pending, start, in_fence = [], "", 0, False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("```"):
            in_fence = not in_fence
            continue
        is_code = in_fence or line.startswith("    ")
        if not is_code and not pending:
            continue
        stripped = line.strip()
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        found.append((start, pending + stripped))
        pending = ""
    return found


def lipsim_arguments(command: str) -> list[str] | None:
    """The arguments after ``lipsim`` / ``-m lipsim_tm.cli`` / ``"${LIPSIM[@]}"`` in a shell line, else None."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word == "lipsim" or word == '"${LIPSIM[@]}"' or word.startswith("${LIPSIM"):
            return words[i + 1 :]
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "lipsim_tm.cli":
            return words[i + 2 :]
    return None


def inline_spans(text: str) -> list[str]:
    """Every inline code span (outside fenced blocks)."""
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return re.findall(r"`([^`\n]+)`", outside)


# --- the checkers: each returns its problems ---------------------------------------------------------------------


def command_problems(text: str) -> list[str]:
    """Command lines of ``text`` that the real parser refuses."""
    problems = []
    candidates = list(code_lines(text))
    candidates += [(0, span) for span in inline_spans(text) if span.startswith("lipsim ")]
    for number, command in candidates:
        arguments = lipsim_arguments(command)
        if arguments is None or "..." in arguments or any(a.endswith("...") for a in arguments):
            continue
        if not [a for a in arguments if not a.startswith("-")] and not arguments:
            continue
        if number == 0 and all(not a.startswith("-") for a in arguments) and len(arguments) <= 2:
            if arguments and arguments[0] not in COMMANDS:  # prose naming a command: the command must exist
                problems.append(f"`{command}`: no command {arguments[0]!r}")
            continue
        notes = io.StringIO()
        try:
            with contextlib.redirect_stderr(notes), contextlib.redirect_stdout(io.StringIO()):
                build_parser(every=True).parse_args(arguments)
        except SystemExit as exit_info:
            if exit_info.code not in (0, None):
                problems.append(f"line {number}: `{command}` does not parse")
                continue
        if "note:" in notes.getvalue():  # an earlier spelling, still accepted: the docs use today's
            problems.append(f"line {number}: `{command}` uses an old spelling")
    return problems


def path_problems(text: str, where: Path) -> list[str]:
    """Relative links and repository paths of ``text`` (a document in the folder ``where``) that do not exist."""
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^(https?:|mailto:|#)", target):
            continue
        resolved = (where / target.split("#")[0]).resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"link {target} points outside the repository")
        elif not resolved.exists():
            problems.append(f"link {target} does not exist")
    for span in inline_spans(text) + [w for _, c in code_lines(text) for w in c.split()]:
        token, _, test = span.strip().rstrip(".,;:)").partition("::")  # tests/x.py::test_name[id]: a test
        if test and (ROOT / token).is_file():
            if not re.search(rf"^\s*def {re.escape(test.split('[')[0])}\(", (ROOT / token).read_text(), re.MULTILINE):
                problems.append(f"test {token}::{test} does not exist")
            continue
        if "/" not in token or " " in token or any(c in token for c in "$<>*{}~"):
            continue
        first = token.split("/")[0]
        suffix_ok = token.endswith("/") or token.rsplit(".", 1)[-1] in PATH_SUFFIXES
        if not suffix_ok or (first not in REPO_ROOTS and first not in PACKAGE_ROOTS):
            continue
        bases = [ROOT, where, PACKAGE] if first in PACKAGE_ROOTS else [ROOT, where]
        if not any((base / token).exists() for base in bases):
            problems.append(f"path {token} does not exist")
    return sorted(set(problems))


def module_problems(text: str) -> list[str]:
    """Dotted ``lipsim_tm.`` names of ``text`` that do not import (a module, or an attribute of one)."""
    problems = []
    for name in sorted(set(re.findall(r"\blipsim_tm(?:\.[A-Za-z_]\w*)+", text))):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attribute in parts[cut:]:
                    obj = getattr(obj, attribute)
            except AttributeError:
                problems.append(f"{name} does not exist")
            break
    return problems


def old_spellings() -> set[str]:
    """Every earlier option spelling the parser still accepts (with a note)."""
    from lipsim_tm.commands._options import _Renamed

    found, parsers = set(), [build_parser(every=True)]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, _Renamed):
                found.update(action.option_strings)
            for sub in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict) and hasattr(action.choices[sub], "_actions"):
                    parsers.append(action.choices[sub])
    return found


OLD_SPELLINGS = old_spellings()


def spelling_problems(text: str) -> list[str]:
    """Earlier option spellings named in ``text``, outside lines that say they are the earlier spelling."""
    problems = []
    for line in text.splitlines():
        if "earlier spelling" in line.lower() or "old spelling" in line.lower():
            continue
        problems += [f"{old} is an earlier spelling" for old in OLD_SPELLINGS if re.search(rf"{old}(?![\w-])", line)]
    return sorted(set(problems))


def outside_problems(text: str, where: Path) -> list[str]:
    """Relative paths of ``text`` (a document in the folder ``where``) that lead out of the repository."""
    paths = [m.group(0).rstrip(".,;:") for m in CLIMBING.finditer(text)]
    return [f"refers outside the repository: {p}" for p in paths if not (where / p).resolve().is_relative_to(ROOT)]


# --- the documents -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_command_lines_parse(doc: Path) -> None:
    assert command_problems(doc.read_text()) == []


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_paths_links_and_modules_exist(doc: Path) -> None:
    text = doc.read_text()
    assert path_problems(text, doc.parent) + module_problems(text) + outside_problems(text, doc.parent) == []
    assert spelling_problems(text) == []


RECIPE_SCRIPTS = sorted((ROOT / "recipes").rglob("*.sh"))


@pytest.mark.parametrize("script", RECIPE_SCRIPTS, ids=doc_id)
def test_recipe_scripts_parse(script: Path) -> None:
    """The ``lipsim`` lines of the recipes' shell scripts (lines spreading a bash array are left out)."""
    lines = []
    for _, command in code_lines(textwrap.indent(script.read_text(), "    ")):
        if "[@]}" not in command.replace('"${LIPSIM[@]}"', "").replace("${LIPSIM[@]}", ""):
            lines.append(f"    {command}")
    assert command_problems("\n".join(lines)) == []
    assert spelling_problems(script.read_text()) == []


PYTHON_BLOCKS = [(doc, block) for doc in DOCS for block in fenced_blocks(doc.read_text()) if block.language == "python"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the docs' Python blocks name (module docstring)."""
    from PIL import Image

    from dataset_writers import synthetic_photo, write_photos

    folder = tmp_path_factory.mktemp("docs")
    for seed, name in enumerate(["a.png", "b.png", "ref.png", "img0.png", "img1.png"]):
        Image.fromarray(synthetic_photo(seed, 64, 64)).save(folder / name)
    write_photos(folder / "photos", 8)
    (folder / "pairs.csv").write_text("image_a,image_b\na.png,b.png\nref.png,img0.png\n")
    (folder / "triplets.csv").write_text("ref,img0,img1,target,votes\nref.png,img0.png,img1.png,0.8,5\n")
    return folder


@pytest.mark.parametrize(("doc", "block"), PYTHON_BLOCKS, ids=[f"{doc_id(d)}:{b.line}" for d, b in PYTHON_BLOCKS])
def test_python_blocks_run(doc: Path, block: Block, workdir: Path, subprocess_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", block.text], cwd=workdir, env=subprocess_env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"{doc_id(doc)} line {block.line}:\n{proc.stderr[-3000:]}"


def test_the_readme_names_every_dependency() -> None:
    """The install paragraph names each run-time dependency of pyproject.toml (pillow was missing once)."""
    import tomllib

    setup = (ROOT / "README.md").read_text().split("## Score a folder")[0]
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        assert f"`{requirement}`" in setup or f"`{name}" in setup, requirement


def test_the_api_page_lists_what_two_afc_returns() -> None:
    """docs/api.md names TwoAFCResult's fields (an earlier README promised a "decision" field)."""
    from lipsim_tm.functional import TwoAFCResult

    line = next(line for line in (ROOT / "docs" / "api.md").read_text().splitlines() if "TwoAFCResult`:" in line)
    named = set(re.findall(r"`(\w+)`", line.split(":", 1)[1]))
    fields = set(TwoAFCResult._fields)
    assert named - {"two_afc"} <= fields, named - fields
    assert {"prefers_img1", "tie", "d0", "d1", "certificate"} <= named


# --- the checkers catch stale docs -------------------------------------------------------------------------------


BROKEN = textwrap.dedent(
    """\
    Run it:

        lipsim distance a.png b.png --no-such-option
        lipsim certify NIGHTS/ --format nights --max-triplets 5 \\
            --limit 2
        lipsim certify NIGHTS/ --format nights --json out.json
        lipsim robustness NIGHTS/ --format moon

    or `lipsim distans a b`, see [the guide](docs/nowhere.md) and `functional/norm_aware.py`,
    `benchmarks/bench_nothing.py`, `tests/test_files.py::test_no_such_test`,
    `tests/test_docs.py::test_a_failing_python_block_fails`, `lipsim_tm.models.registry.no_such_function`,
    `lipsim_tm.nomodule`,
    and ../elsewhere/notes.md.
    """
)


def test_the_checkers_report_each_kind_of_stale_doc() -> None:
    commands = command_problems(BROKEN)
    # the unknown option, an old spelling (--json OUT), certify's unknown --max-triplets, the unknown layout, the
    # unknown command
    assert len(commands) == 5, commands
    assert any("--json out.json" in problem for problem in commands)
    assert any("distans" in problem for problem in commands)
    paths = path_problems(BROKEN, ROOT)
    assert paths == [
        "link docs/nowhere.md does not exist",
        "path benchmarks/bench_nothing.py does not exist",
        "path functional/norm_aware.py does not exist",
        "test tests/test_files.py::test_no_such_test does not exist",
    ]
    assert module_problems(BROKEN) == [
        "lipsim_tm.models.registry.no_such_function does not exist",
        "lipsim_tm.nomodule does not exist",
    ]
    assert outside_problems(BROKEN, ROOT) == ["refers outside the repository: ../elsewhere/notes.md"]
    assert outside_problems("see ../README.md", ROOT / "docs") == []  # climbs, but stays inside
    assert spelling_problems(BROKEN) == ["--max-triplets is an earlier spelling"]
    assert "--num-workers" in OLD_SPELLINGS


def test_a_failing_python_block_fails(workdir: Path, subprocess_env: dict[str, str]) -> None:
    block = fenced_blocks("```python\nfrom lipsim_tm import NoSuchName\n```")[0]
    with pytest.raises(AssertionError, match="NoSuchName"):
        test_python_blocks_run(ROOT / "README.md", block, workdir, subprocess_env)
