"""The ``lipsim`` command line: ``lipsim <command> ...``; ``lipsim <command> --help`` explains each option.

Each command is a module in :mod:`lipsim_tm.commands` with ``add_arguments(parser)`` (its options) and
``run(args) -> exit code``. Building the parser imports no command: only the module of the command being run is
imported, and it imports what it needs when it runs, so ``lipsim distance`` never loads the trainer, the attacks,
robustness or retrieval. To add a command, write such a module and list it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lipsim_tm import __version__

#: Command name -> (module under ``lipsim_tm.commands``, one line of help).
COMMANDS: dict[str, tuple[str, str]] = {
    "distance": ("distance", "LipSim distance of two image files, with its certified interval at each l2 budget"),
    "2afc": ("two_afc", "which of two images is closer to a reference, and the l2 radius within which that holds"),
    "certify": ("certify", "natural and certified 2AFC accuracy over a NIGHTS or BAPPS folder (JSON out)"),
    "robustness": ("robustness", "natural, certified and empirical (attacked) 2AFC accuracy at each l2 budget"),
    "retrieve": ("retrieve", "certified retrieval: index a folder of photos, query it (top-k, certified radii)"),
    "train": ("train", "train a LipSim student (distillation, then 2AFC fine-tuning)"),
    "export": ("export", "write the inference weights of a training checkpoint as an export file"),
    "demo": ("demo", "offline demo on the photos shipped with the package: 2AFC accuracy, certificates, a plot"),
}


def build_parser(command: str | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The parser, with the options of ``command`` (or, ``every``, of all commands) and the others' names only."""
    parser = argparse.ArgumentParser(
        prog="lipsim", description="LipSim: the provably robust (1-Lipschitz) perceptual similarity metric."
    )
    parser.add_argument("--version", action="version", version=f"lipsim-tm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary)
        if every or name == command:
            module = importlib.import_module(f"lipsim_tm.commands.{module_name}")
            module.add_arguments(sub)
            sub.set_defaults(func=module.run)
    return parser


def error_lines(command: str, error: BaseException) -> str:
    """``lipsim COMMAND: error: <the error's first line>`` and its further lines as indented hints. An error the
    operating system raised names its file and cause in words, without the ``[Errno N]`` prefix."""
    from lipsim_tm.commands._report import describe_error

    first, *hints = describe_error(error).strip().split("\n")
    return "".join([f"lipsim {command}: error: {first}\n", *(f"  {hint.strip()}\n" for hint in hints)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lipsim`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    0: success; 2: invalid arguments or configuration (message on stderr); 130: interrupted by
    Ctrl-C/SIGTERM after saving a checkpoint.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, OSError, ImportError) as error:  # FileNotFoundError, DownloadError: OSErrors
        parser.exit(2, error_lines(args.command, error))
    except KeyboardInterrupt:
        print("lipsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
