"""The repository's promises about itself: CI runs the README's test command, and so on."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.strip() for line in lines if line.startswith("    python3 -m venv")]


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "pytest" not in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_package_is_typed() -> None:
    assert (ROOT / "src" / "lipsim_tm" / "py.typed").exists()


def test_the_demo_output_folder_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "lipsim-demo/report.json"], cwd=ROOT, capture_output=True, check=False
    )
    assert ignored.returncode == 0, "lipsim-demo/ (the demo's default output) must be in .gitignore"
