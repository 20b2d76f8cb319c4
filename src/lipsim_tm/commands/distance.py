"""``lipsim distance``: the LipSim distance of image pairs and its certified interval at each eps.

One pair (``A B``, two files), two folders (``DIR_A DIR_B``, pairs matched by their path inside each folder) or a
table (``--pairs pairs.csv``, columns ``image_a,image_b``): every pair goes through one engine
(:mod:`~lipsim_tm.commands._scoring`), so a pair scored alone or among thousands gives the same numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lipsim_tm.commands._options import (
    add_certificate_arguments,
    add_eps_argument,
    add_examples,
    add_network_arguments,
    add_scoring_arguments,
)
from lipsim_tm.files import check_file

DESCRIPTION = (
    "The LipSim distance between image files (any size and mode Pillow reads; grey files stay one channel, others"
    " are read as RGB) and, for each budget eps, an interval that provably contains the distance after any"
    " perturbation of l2 norm <= eps of one of the images (--perturbed both: of each). eps is in the pixels of"
    " the files as read, values in [0, 1]; the resize to the network's input is accounted for exactly, and"
    " images of different sizes use the larger of their two bounds. Give two files, two folders (every image of"
    " the first paired with the image of the same relative path in the second) or --pairs TABLE.csv (columns"
    " image_a,image_b; paths absolute or relative to the table). Many pairs give one row each (--out FILE.csv or"
    " .jsonl; without it, CSV on standard output) and a summary; a pair whose files cannot be read gets a row"
    " with its error, and the exit status is 1."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lipsim_tm.functional.certificates.intervals import PERTURBED

    parser.description = DESCRIPTION
    parser.add_argument("image_a", nargs="?", help="first image file, or a folder of images")
    parser.add_argument("image_b", nargs="?", help="second image file, or a folder of images (same names)")
    parser.add_argument("--pairs", metavar="TABLE", help="a CSV table of pairs, columns image_a,image_b")
    add_eps_argument(parser)
    parser.add_argument(
        "--perturbed", choices=PERTURBED, default="one", help="which images may move by eps (default: %(default)s)"
    )
    add_certificate_arguments(parser)
    add_network_arguments(parser)
    add_scoring_arguments(parser)
    add_examples(
        parser,
        "lipsim distance a.png b.jpg",
        "lipsim distance restored/ originals/ --out scores.csv",
        "lipsim distance --pairs pairs.csv --eps 36/255 --out scores.jsonl --workers 2",
    )


def _listing(args: argparse.Namespace) -> tuple[Any, bool]:
    """The pairs the arguments name, and whether they are one pair given as two files (cheap checks first)."""
    from lipsim_tm.data.tables import FileSet, Listing, pair_folders, read_pairs

    given = [p for p in (args.image_a, args.image_b) if p is not None]
    if args.pairs is not None:
        if given:
            raise ValueError("give two files, two folders or --pairs TABLE, not both files and --pairs")
        return read_pairs(args.pairs), False
    if len(given) != 2:
        raise ValueError("give two image files, two folders of images, or --pairs TABLE.csv")
    folders = [Path(p).is_dir() for p in given]
    if all(folders):
        return pair_folders(*given), False
    if any(folders):
        folder = given[folders.index(True)]
        raise ValueError(f"{folder} is a folder but the other is not: give two files or two folders")
    return Listing([FileSet(tuple(given), tuple(check_file(p, "image file") for p in given))]), True


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._runtime import evaluation_processes
    from lipsim_tm.commands._scoring import check_rows_file
    from lipsim_tm.functional.certificates.policy import check_certificate

    check_certificate(args.certificate, args.normalization)
    listing, single = _listing(args)
    out = check_rows_file(args.out)
    with evaluation_processes(args.device) as processes:
        return _score(args, listing, single, out, processes)


def _score(args: argparse.Namespace, listing: Any, single: bool, out: Path | None, processes: Any) -> int:
    from lipsim_tm.commands._report import write_json
    from lipsim_tm.commands._runtime import load_network
    from lipsim_tm.commands._scoring import score_items
    from lipsim_tm.functional.distance import _lipsim_distance_update
    from lipsim_tm.functional.text import describe_eps

    backbone = load_network(args, device=processes.device)

    def score(features: list, bounds: list, items: list) -> list[dict[str, Any]]:
        result = _lipsim_distance_update(
            *features,
            distance=args.distance,
            normalization=args.normalization,
            certificate=args.certificate,
            lipschitz=tuple(bounds),
            epsilons=args.eps,
            perturbed=args.perturbed,
        )
        return [
            {
                "image_a": item.names[0],
                "image_b": item.names[1],
                "distance": float(result.distance[i]),
                "lipschitz": bounds,
                **{f"lower@{eps:.4g}": float(result.lower[i, k]) for k, eps in enumerate(args.eps)},
                **{f"upper@{eps:.4g}": float(result.upper[i, k]) for k, eps in enumerate(args.eps)},
            }
            for i, item in enumerate(items)
        ]

    scored = score_items(
        listing.items,
        ("image_a", "image_b"),
        score,
        args,
        backbone=backbone,
        processes=processes,
        single=single,
        label="distance",
    )
    if not processes.is_main:
        return 0
    if single:
        return _print_pair(args, scored.only_row(), describe_eps, write_json)
    return _report_many(args, listing, scored, out)


def _print_pair(args: argparse.Namespace, row: dict[str, Any], describe_eps: Any, write_json: Any) -> int:
    intervals = [{"eps": e, "lower": row[f"lower@{e:.4g}"], "upper": row[f"upper@{e:.4g}"]} for e in args.eps]
    if args.json:
        write_json(
            {
                "image_a": args.image_a,
                "image_b": args.image_b,
                "weights": str(args.weights),
                "distance": row["distance"],
                "distance_form": args.distance,
                "normalization": args.normalization,
                "certificate": args.certificate,
                "perturbed": args.perturbed,
                "lipschitz": dict(zip(("image_a", "image_b"), row["lipschitz"], strict=True)),
                "intervals": intervals,
            },
            None,
        )
        return 0
    form = "1 - cos" if args.distance == "cosine" else "l2"
    print(f"LipSim distance ({form}): {row['distance']:.6f}")
    who = "one of the images" if args.perturbed == "one" else "each image"
    print(f"certified interval when {who} moves by l2 <= eps (pixels in [0, 1]; {args.certificate} rule):")
    for interval in intervals:
        print(f"  eps {describe_eps(interval['eps']):>15}: [{interval['lower']:.6f}, {interval['upper']:.6f}]")
    return 0


def _report_many(args: argparse.Namespace, listing: Any, scored: Any, out: Path | None) -> int:
    from lipsim_tm.commands._scoring import report_rows
    from lipsim_tm.functional.confidence import mean_interval

    bounds = [f"{side}@{eps:.4g}" for eps in args.eps for side in ("lower", "upper")]
    values = [row["distance"] for row in scored.rows if not row["error"]]
    mean = mean_interval(sum(values), sum(v * v for v in values), len(values), clip=(0.0, 2.0))
    summary = {"pairs": len(listing.items), "scored": len(values), "failed": scored.failed, "mean": mean.to_dict()}
    interval = "n/a" if not values else f"{mean.value:.6f} [95%: {mean.low:.6f}, {mean.high:.6f}]"
    line = f"scored {len(values)} of {len(listing.items)} pairs ({scored.failed} failed); mean distance {interval}"
    columns = ["image_a", "image_b", "distance", *bounds, "error"]
    return report_rows("distance", scored, listing, columns, summary, [line], out=out, as_json=args.json)
