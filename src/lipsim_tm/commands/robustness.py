"""``lipsim robustness``: natural, certified and empirical (attacked) 2AFC accuracy per l2 budget; table, JSON, plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lipsim_tm.commands._options import (
    add_certificate_arguments,
    add_eps_argument,
    add_examples,
    add_format_argument,
    add_loading_arguments,
    add_min_votes_argument,
    add_network_arguments,
    add_progress_argument,
    add_renamed,
    positive_int,
)
from lipsim_tm.files import check_folder, make_folder

if TYPE_CHECKING:
    from lipsim_tm.distributed import DistributedContext

DATASETS: tuple[str, ...] = ("nights", "bapps", "synthetic")
DESCRIPTION = (
    "Evaluate a LipSim model on 2AFC triplets and report, at each l2 budget eps (pixels in [0, 1]), the "
    "certified accuracy (no perturbation of norm <= eps can change the decision) and the empirical "
    "accuracy under an attack on the reference (optionally on all three images). Prints a table and "
    "writes robustness.json and robustness.png (the plot needs matplotlib: pip install lipsim-tm[plot])."
    " Under torchrun (torchrun --nproc_per_node=N -m lipsim_tm.cli robustness ...) the batches are dealt"
    " out to the processes and rank 0 writes the one report, equal to a single process's."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lipsim_tm.attacks.api import METHODS

    parser.description = DESCRIPTION
    parser.add_argument("old_format", nargs="?", choices=DATASETS, help=argparse.SUPPRESS)  # 'robustness nights DIR'
    add_format_argument(parser, DATASETS, required=False)
    parser.add_argument("--out", default=".", help="the folder robustness.json/.png go to (default: %(default)s)")
    parser.add_argument("--split", default=None, help="nights: test (default) ...; bapps: val (default) or train")
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="side the images are read at, and the space eps is measured in (default: nights 224, bapps 64,"
        " synthetic: the model's input size)",
    )
    add_min_votes_argument(parser)
    parser.add_argument("--length", type=positive_int, default=200, help="synthetic: triplets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic triplets and attack starts (default: 0)")
    add_eps_argument(parser, with_zero=True)
    add_certificate_arguments(parser, with_distance=False)
    parser.add_argument("--method", choices=METHODS, default="apgd", help="attack (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="attack steps (default: %(default)s)")
    parser.add_argument("--restarts", type=int, default=1, help="attack restarts (default: %(default)s)")
    parser.add_argument("--attack-all", action="store_true", help="also attack all three images")
    add_loading_arguments(parser, batch_size=16)
    add_network_arguments(parser)
    add_progress_argument(parser)
    for old, new in (("--epsilons", "--eps"), ("--max-triplets", "--limit"), ("--output-dir", "--out")):
        add_renamed(parser, old, new)
    add_examples(
        parser,
        "lipsim robustness photos/ --format synthetic --eps 0 0.3 0.6 1 --attack-all",
        "lipsim robustness NIGHTS/ --format nights --weights lipsim.pth --limit 500 --out results/",
    )


def _dataset(args: argparse.Namespace, model_size: int) -> Any:
    from lipsim_tm.data import BAPPS2AFCDataset, NightsDataset, Synthetic2AFCDataset

    if args.format == "nights":
        return NightsDataset(
            args.data_dir, args.split or "test", image_size=args.image_size or NightsDataset.NATIVE_SIZE
        )
    if args.format == "bapps":
        size = args.image_size or BAPPS2AFCDataset.NATIVE_SIZE
        return BAPPS2AFCDataset(args.data_dir, args.split or "val", image_size=size)
    if args.split is not None:
        raise ValueError("--split applies to nights and bapps, not to synthetic data")
    size = args.image_size or model_size
    return Synthetic2AFCDataset(args.data_dir, image_size=size, length=args.length, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._runtime import evaluation_processes

    if args.old_format is not None:
        if args.format is not None:
            raise ValueError(f"give the layout once: --format {args.format} or the earlier {args.old_format} DATA_DIR")
        print(
            f"lipsim robustness: note: 'robustness {args.old_format} DATA_DIR' is now 'robustness DATA_DIR --format"
            f" {args.old_format}'; the old spelling works until the next release",
            file=sys.stderr,
        )
        args.format = args.old_format
    if args.format is None:
        raise ValueError(f"--format is required: one of {', '.join(DATASETS)}")
    check_folder(args.data_dir, "data folder")
    output = make_folder(args.out, "output folder (for robustness.json and .png)")
    with evaluation_processes(args.device) as processes:
        return _report(args, processes, output)


def _report(args: argparse.Namespace, processes: DistributedContext, output: Path) -> int:
    from lipsim_tm.commands._report import Progress
    from lipsim_tm.commands._runtime import load_network
    from lipsim_tm.data.sharding import ShardedBatches
    from lipsim_tm.robustness import plot_report, robustness_report

    backbone = load_network(args, device=processes.device)
    dataset = _dataset(args, backbone.config.input_size)
    count = min(len(dataset), args.limit or len(dataset))
    shard = ShardedBatches(count, args.batch_size, rank=processes.rank, world_size=processes.world_size)
    label = "robustness" + (f" (rank 0 of {processes.world_size})" if processes.world_size > 1 else "")
    bar = Progress(shard.size(), label=label, enabled=processes.is_main and not args.no_progress)
    try:
        report = robustness_report(
            dataset,
            weights=backbone,
            epsilons=args.eps,
            normalization=args.normalization,
            certificate=args.certificate,
            method=args.method,
            steps=args.steps,
            restarts=args.restarts,
            attack_all=args.attack_all,
            batch_size=args.batch_size,
            max_triplets=args.limit,
            seed=args.seed,
            device=processes.device,
            workers=args.workers,
            progress=bar.update,
        )
    finally:
        bar.close()
    if not processes.is_main:
        return 0
    print(report.table())
    print(f"wrote {report.save_json(output / 'robustness.json')}")
    try:
        print(f"wrote {plot_report(report, output / 'robustness.png')}")
    except ImportError as error:
        print(f"lipsim robustness: {error}", file=sys.stderr)
    return 0
