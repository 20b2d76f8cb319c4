"""The ``lipsim`` command line: ``lipsim <command> ...``; ``lipsim <command> --help`` explains each option.

Commands are modules in :mod:`lipsim_tm.commands` that define ``add_parser(subparsers)``; the parser
they add sets ``func(args) -> exit code``. To add a command, write such a module and list it in
:data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules under ``lipsim_tm.commands`` whose ``add_parser`` adds one top-level command each.
COMMAND_MODULES: tuple[str, ...] = (
    "train",
    "export",
    "robustness",
    "distance",
    "two_afc",
    "certify",
    "retrieve",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lipsim",
        description="LipSim: the provably robust (1-Lipschitz) perceptual similarity metric.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"lipsim_tm.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lipsim`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    0: success; 2: invalid arguments or configuration (message on stderr); 130: interrupted by
    Ctrl-C/SIGTERM after saving a checkpoint.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, OSError, ImportError) as error:  # FileNotFoundError is an OSError
        parser.exit(2, f"lipsim {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        print("lipsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
