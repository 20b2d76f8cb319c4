"""Command-line options shared by the commands, each declared once, and the argument types that check them.

Values are checked while the command line is parsed (argparse reports ``argument --X: <reason>`` and exits 2), so
a bad number never waits for a model to load. Importing this module loads argparse only; choices that live in
the library are imported when a command's parser is built.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any


def eps_value(text: str) -> float:
    """An l2 budget: a number (``0.1412``) or a fraction (``36/255``), finite and ``>= 0``."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number >= 0 such as 0.1412 or 36/255, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text!r}")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


#: argparse types: an int >= 1 (counts, sizes) and an int >= 0 (worker processes).
positive_int = _int_at_least(1)
count_or_zero = _int_at_least(0)


def add_network_arguments(parser: argparse.ArgumentParser, *, default_weights: str | None = "default") -> None:
    """``--weights``, ``--device`` and ``--threads`` (``default_weights=None``: the command finds the weights)."""
    default = "%(default)s" if default_weights is not None else "the weights the gallery was built with"
    parser.add_argument(
        "--weights",
        default=default_weights,
        help="'default' (the shipped model), a registered name, a checkpoint or export path, or 'random:<config>'"
        f" (random network, for tests) (default: {default})",
    )
    add_device_arguments(parser)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``."""
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)"
    )


def add_certificate_arguments(
    parser: argparse.ArgumentParser,
    *,
    with_distance: bool = True,
    normalizations: tuple[str, ...] | None = None,
) -> None:
    """``--normalization``, ``--certificate`` and (optionally) ``--distance``; ``normalizations`` narrows the
    choices (default: every normalisation)."""
    from lipsim_tm.functional.certificates.policy import CERTIFICATES
    from lipsim_tm.functional.distance import DISTANCES
    from lipsim_tm.functional.normalization import NORMALIZATIONS

    if with_distance:
        parser.add_argument(
            "--distance", choices=DISTANCES, default="cosine", help="'cosine' (1 - cos, the official form) or 'l2'"
        )
    parser.add_argument(
        "--normalization",
        choices=normalizations or NORMALIZATIONS,
        default="augment",
        help="embedding normalisation (default: %(default)s; 'plain' for the released checkpoints' v/||v||)",
    )
    parser.add_argument(
        "--certificate",
        choices=CERTIFICATES,
        default="norm_aware",
        help="certificate rule: 'norm_aware' (default) or 'plain' (the published 1-Lipschitz rule)",
    )


def add_eps_argument(parser: argparse.ArgumentParser, *, with_zero: bool = False) -> None:
    """``--eps``: l2 budgets in [0, 1] pixels, numbers or fractions (default: the paper's 36/72/108 /255, after 0
    with ``with_zero``)."""
    from lipsim_tm.functional.certificates.policy import PAPER_EPSILONS

    parser.add_argument(
        "--eps",
        type=eps_value,
        nargs="+",
        default=[0.0, *PAPER_EPSILONS] if with_zero else list(PAPER_EPSILONS),
        help="l2 budgets, pixels in [0, 1]: numbers or fractions such as 36/255 (default:"
        f" {'0 ' if with_zero else ''}36/255 72/255 108/255)",
    )


def add_loading_arguments(parser: argparse.ArgumentParser, *, batch_size: int) -> None:
    """``--batch-size``, ``--workers`` and ``--limit`` (the first N triplets only)."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=batch_size, help="triplets per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=count_or_zero, default=0, help="data-loading worker processes (default: %(default)s)"
    )
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N triplets")


#: The data layouts a command reads, as ``--format`` names them.
DATA_FORMATS: dict[str, str] = {
    "nights": "a NIGHTS folder (data.csv, ref/, distort/)",
    "bapps": "a BAPPS folder (holding 2afc/)",
    "synthetic": "a folder of photos, turned into distortion triplets",
}


def add_format_argument(parser: argparse.ArgumentParser, formats: Sequence[str], *, required: bool = True) -> None:
    """``DATA_DIR`` and ``--format`` (its layout, one of ``formats``), the same in every command that reads 2AFC
    data."""
    parser.add_argument("data_dir", metavar="DATA_DIR", help="the data folder, laid out as --format says")
    parser.add_argument(
        "--format",
        choices=formats,
        required=required,
        help="layout of DATA_DIR: " + "; ".join(f"{name}: {DATA_FORMATS[name]}" for name in formats),
    )


def add_min_votes_argument(parser: argparse.ArgumentParser) -> None:
    """``--min-votes`` of NIGHTS-layout data (the official reader keeps rows with at least 6)."""
    parser.add_argument(
        "--min-votes",
        type=positive_int,
        default=6,
        help="nights: keep the rows of data.csv with at least this many votes (default: %(default)s, the official"
        " filter; the number dropped is reported)",
    )


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of commands that score many files: ``--out``, ``--json``, ``--batch-size``, ``--workers``,
    ``--on-error`` and ``--no-progress``."""
    parser.add_argument(
        "--out", metavar="FILE", help="write one row per item to FILE (.csv or .jsonl) and print the summary"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="files of one size per forward pass (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=count_or_zero,
        default=None,
        help="processes decoding images while the network works (default: 1 for many items, 0 for one)",
    )
    parser.add_argument(
        "--on-error",
        choices=("continue", "stop"),
        default="continue",
        help="a file that cannot be read: give its item an error row and go on, or stop (default: %(default)s)",
    )
    add_progress_argument(parser)


def add_examples(parser: argparse.ArgumentParser, *examples: str) -> None:
    """End ``parser``'s help with ``examples`` (command lines, one per line)."""
    parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    parser.formatter_class = HelpFormatter


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, keeping the lines of an ``examples:`` epilog as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


class _Renamed(argparse.Action):
    """An option's earlier spelling: sets the same destination and says, once per use, what it is now called."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None):
        print(f"{parser.prog}: note: {option} is now {self.new}; the old spelling works until the next release",
              file=sys.stderr)  # fmt: skip
        setattr(namespace, self.dest, values)


def add_renamed(parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str, new: str) -> None:
    """Accept ``old`` (hidden from the help) as a spelling of the option ``new`` already declared on ``parser``."""
    actions = parser._group_actions if isinstance(parser, argparse._ArgumentGroup) else parser._actions
    target = next(action for action in actions if new in action.option_strings)
    parser.add_argument(
        old, dest=target.dest, type=target.type, nargs=target.nargs, action=_Renamed, new=new, help=argparse.SUPPRESS
    )


class _JsonFlag(argparse.Action):
    """``--json``: print JSON instead of text. ``--json OUT`` (the earlier spelling of ``--out OUT``) still writes the
    file, with a note."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None):
        if values is None:
            namespace.json = True
            return
        if not values.lower().endswith(".json"):  # a misplaced flag before an input file, never a file to overwrite
            parser.error(f"--json takes no value (it prints JSON); got {values!r}: write the report with --out FILE")
        print(f"{parser.prog}: note: --json OUT is now --out OUT; the old spelling works until the next release",
              file=sys.stderr)  # fmt: skip
        namespace.out = values


def add_output_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--out FILE`` (what the command writes) and ``--json`` (print JSON instead of text; ``--json OUT``, the
    earlier spelling of ``--out OUT``, is still accepted)."""
    parser.add_argument("--out", metavar="FILE", default=None, help=out_help)
    parser.add_argument(
        "--json", nargs="?", action=_JsonFlag, default=False, metavar="", help="print JSON instead of text"
    )
