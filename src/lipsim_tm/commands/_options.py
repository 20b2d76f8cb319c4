"""Command-line options shared by the commands, each declared once, and the argument types that check them.

Values are checked while the command line is parsed (argparse reports ``argument --X: <reason>`` and exits 2), so
a bad number never waits for a model to load. Importing this module loads argparse only; choices that live in
the library are imported when a command's parser is built.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from fractions import Fraction


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


def add_eps_argument(parser: argparse.ArgumentParser, *, default: list[float] | None = None) -> None:
    """``--eps``: l2 budgets in [0, 1] pixels, numbers or fractions (default: the paper's 36/72/108 /255)."""
    from lipsim_tm.functional.certificates.policy import PAPER_EPSILONS

    parser.add_argument(
        "--eps",
        type=eps_value,
        nargs="+",
        default=list(PAPER_EPSILONS) if default is None else default,
        help="l2 budgets, pixels in [0, 1]: numbers or fractions such as 36/255 (default: 36/255 72/255 108/255)",
    )


def add_loading_arguments(parser: argparse.ArgumentParser, *, batch_size: int, limit: str = "--limit") -> None:
    """``--batch-size``, ``--workers`` and the option capping the triplets evaluated (``limit``)."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=batch_size, help="triplets per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=count_or_zero, default=0, help="data-loading worker processes (default: %(default)s)"
    )
    parser.add_argument(limit, type=positive_int, default=None, help="evaluate only the first N triplets")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
