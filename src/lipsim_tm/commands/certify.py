"""``lipsim certify DIR``: natural and certified 2AFC accuracy over a NIGHTS- or BAPPS-layout folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from lipsim_tm.commands._common import (
    add_certificate_arguments,
    add_network_arguments,
    describe_eps,
    evaluate_2afc,
    load_network,
    parse_eps,
    write_json,
)

FORMATS: tuple[str, ...] = ("nights", "bapps")
#: Images are read at each dataset's own resolution by default, so eps is in its pixels.
DEFAULT_IMAGE_SIZE: dict[str, int] = {"nights": 224, "bapps": 64}
DEFAULT_SPLIT: dict[str, str] = {"nights": "test", "bapps": "val"}


def add_parser(subparsers: Any) -> None:
    from lipsim_tm.functional.certificates import PAPER_EPSILONS

    parser = subparsers.add_parser(
        "certify",
        help="natural and certified 2AFC accuracy over a NIGHTS or BAPPS folder (progress on stderr, JSON out)",
        description=(
            "Evaluate a LipSim model on the 2AFC triplets of a folder laid out like NIGHTS (data.csv, ref/,"
            " distort/) or BAPPS (2afc/<split>/<subset>/{ref,p0,p1,judge}) with Certified2AFCAccuracy: the 2AFC"
            " score against the human judgments, and at each eps the fraction of triplets predicted correctly"
            " whose decision no l2 perturbation of norm <= eps can change (of the reference; 'all': of each of"
            " the three images). eps is in the pixels of the images as read (--image-size, values in [0, 1])."
        ),
    )
    parser.add_argument("data_dir", help="NIGHTS folder (holding data.csv) or BAPPS folder (holding 2afc/)")
    parser.add_argument("--format", choices=FORMATS, required=True, help="folder layout")
    parser.add_argument("--split", default=None, help="nights: test (default), val, train, ...; bapps: val (default)")
    parser.add_argument("--subset", nargs="+", default=None, help="bapps: subsets to include (default: all present)")
    parser.add_argument(
        "--eps",
        type=parse_eps,
        nargs="+",
        default=list(PAPER_EPSILONS),
        help="l2 budgets, pixels in [0, 1]: numbers or fractions such as 36/255 (default: 36/255 72/255 108/255)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side the images are read at, and the space eps is measured in (default: nights 224, bapps 64)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="triplets per batch (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N triplets")
    add_certificate_arguments(parser, with_distance=False)
    add_network_arguments(parser)
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the results as JSON to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run)


def _dataset(args: argparse.Namespace) -> Any:
    from lipsim_tm.data import BAPPS2AFCDataset, NightsDataset

    size = DEFAULT_IMAGE_SIZE[args.format] if args.image_size is None else args.image_size
    if size < 1:
        raise ValueError(f"--image-size must be >= 1, got {size}")
    split = args.split or DEFAULT_SPLIT[args.format]
    if args.format == "nights":
        if args.subset is not None:
            raise ValueError("--subset applies to bapps only (nights: choose --split test_imagenet/test_no_imagenet)")
        return NightsDataset(args.data_dir, split, image_size=size)
    return BAPPS2AFCDataset(args.data_dir, split, subsets=args.subset, image_size=size)


def _check_counts(args: argparse.Namespace) -> None:
    for name in ("batch_size", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    if args.json is not None and Path(args.json).is_dir():
        raise ValueError(f"--json must name a file, got the folder {args.json}")


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.metrics import Certified2AFCAccuracy

    _check_counts(args)
    dataset = _dataset(args)
    backbone = load_network(args)
    metric = Certified2AFCAccuracy(
        backbone, epsilons=args.eps, normalization=args.normalization, certificate=args.certificate
    ).to(next(backbone.parameters()).device)
    start = time.perf_counter()
    results = evaluate_2afc(
        dataset,
        {"metric": metric},
        batch_size=args.batch_size,
        workers=args.workers,
        limit=args.limit,
        progress=not args.no_progress,
        label=f"certify {args.format}",
    )
    scores = {key: float(value) for key, value in results["metric"].items()}
    seconds = time.perf_counter() - start
    triplets = min(len(dataset), args.limit or len(dataset))
    rows = [
        {
            "eps": eps,
            "certified": scores[reference_key],
            "certified_all": scores[all_key],
        }
        for eps, reference_key, all_key in zip(metric.epsilons, metric.keys, metric.keys_all, strict=True)
    ]
    print(f"{args.format} {args.split or DEFAULT_SPLIT[args.format]}: {triplets} triplets, {args.certificate} rule")
    print(f"natural 2AFC score: {scores['2afc']:.4f}")
    print(f"{'eps (l2, [0, 1] pixels)':>24}  {'certified (ref)':>15}  {'certified (all)':>15}")
    for row in rows:
        print(f"{describe_eps(row['eps']):>24}  {row['certified']:>15.4f}  {row['certified_all']:>15.4f}")
    if args.json is not None:
        write_json(
            {
                "format": args.format,
                "data_dir": args.data_dir,
                "split": args.split or DEFAULT_SPLIT[args.format],
                "subsets": args.subset,
                "image_size": DEFAULT_IMAGE_SIZE[args.format] if args.image_size is None else args.image_size,
                "weights": str(args.weights),
                "normalization": args.normalization,
                "certificate": args.certificate,
                "triplets": triplets,
                "natural_2afc": scores["2afc"],
                "rows": rows,
                "seconds": seconds,
            },
            args.json,
        )
        print(f"wrote {args.json}")
    return 0
