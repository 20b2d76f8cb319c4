"""``lipsim robustness``: natural, certified and empirical (attacked) 2AFC accuracy per l2 budget; table, JSON, plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lipsim_tm.training.distributed import DistributedContext

DATASETS: tuple[str, ...] = ("nights", "bapps", "synthetic")


def add_parser(subparsers: Any) -> None:
    from lipsim_tm.attacks import METHODS
    from lipsim_tm.functional import CERTIFICATES, NORMALIZATIONS
    from lipsim_tm.robustness import DEFAULT_EPSILONS

    parser = subparsers.add_parser(
        "robustness",
        help="robustness report: natural, certified and empirical 2AFC accuracy at each l2 budget",
        description=(
            "Evaluate a LipSim model on 2AFC triplets and report, at each l2 budget eps (pixels in [0, 1]), the "
            "certified accuracy (no perturbation of norm <= eps can change the decision) and the empirical "
            "accuracy under an attack on the reference (optionally on all three images). Prints a table and "
            "writes robustness.json and robustness.png (the plot needs matplotlib: pip install lipsim-tm[plot])."
            " Under torchrun (torchrun --nproc_per_node=N -m lipsim_tm.cli robustness ...) the batches are dealt"
            " out to the processes and rank 0 writes the one report, equal to a single process's."
        ),
    )
    parser.add_argument("dataset", choices=DATASETS, help="data layout: NIGHTS, BAPPS 2AFC, or synthetic from photos")
    parser.add_argument("data_dir", help="NIGHTS folder (data.csv), BAPPS folder (holding 2afc/) or a photo folder")
    parser.add_argument(
        "--weights",
        required=True,
        help="checkpoint or export path, or 'random:<config>' (random network, for tests)",
    )
    parser.add_argument("--output-dir", default=".", help="where robustness.json/.png go (default: %(default)s)")
    parser.add_argument("--split", default=None, help="nights: test (default) ...; bapps: val (default) or train")
    parser.add_argument("--image-size", type=int, default=None, help="image side (default: the model's input size)")
    parser.add_argument("--length", type=int, default=200, help="synthetic: triplets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic triplets and attack starts (default: 0)")
    parser.add_argument(
        "--epsilons",
        type=float,
        nargs="+",
        default=[round(e, 4) for e in DEFAULT_EPSILONS],
        help="l2 budgets per image, pixels in [0, 1] (default: %(default)s)",
    )
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default="augment",
        help="embedding normalisation (default: %(default)s; 'plain' for the released checkpoints' v/||v||)",
    )
    parser.add_argument(
        "--certificate", choices=CERTIFICATES, default="norm_aware", help="certificate rule (default: %(default)s)"
    )
    parser.add_argument("--method", choices=METHODS, default="apgd", help="attack (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="attack steps (default: %(default)s)")
    parser.add_argument("--restarts", type=int, default=1, help="attack restarts (default: %(default)s)")
    parser.add_argument("--attack-all", action="store_true", help="also attack all three images")
    parser.add_argument("--batch-size", type=int, default=16, help="triplets per batch (default: %(default)s)")
    parser.add_argument("--max-triplets", type=int, default=None, help="evaluate only the first N triplets")
    parser.add_argument("--workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run)


def _dataset(args: argparse.Namespace, image_size: int) -> Any:
    from lipsim_tm.data import BAPPS2AFCDataset, NightsDataset, Synthetic2AFCDataset

    if args.dataset == "nights":
        return NightsDataset(args.data_dir, args.split or "test", image_size=image_size)
    if args.dataset == "bapps":
        return BAPPS2AFCDataset(args.data_dir, args.split or "val", image_size=image_size)
    if args.split is not None:
        raise ValueError("--split applies to nights and bapps, not to synthetic data")
    return Synthetic2AFCDataset(args.data_dir, image_size=image_size, length=args.length, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    import torch

    from lipsim_tm.commands._processes import evaluation_processes

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.image_size is not None and args.image_size < 1:
        raise ValueError(f"--image-size must be >= 1, got {args.image_size}")
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    for name in ("batch_size", "max_triplets"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    output = Path(args.output_dir)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output-dir must be a folder, got the file {output}")
    with evaluation_processes(args.device) as processes:
        return _report(args, processes, output)


def _report(args: argparse.Namespace, processes: DistributedContext, output: Path) -> int:
    from lipsim_tm.commands._common import Progress
    from lipsim_tm.data.sharding import ShardedBatches
    from lipsim_tm.models.weights import resolve_backbone
    from lipsim_tm.robustness import plot_report, robustness_report

    backbone = resolve_backbone(args.weights).eval().requires_grad_(False)
    dataset = _dataset(args, args.image_size or backbone.config.input_size)
    count = min(len(dataset), args.max_triplets or len(dataset))
    shard = ShardedBatches(count, args.batch_size, rank=processes.rank, world_size=processes.world_size)
    label = "robustness" + (f" (rank 0 of {processes.world_size})" if processes.world_size > 1 else "")
    bar = Progress(shard.size(), label=label, enabled=processes.is_main and not args.no_progress)
    try:
        report = robustness_report(
            dataset,
            weights=backbone,
            epsilons=args.epsilons,
            normalization=args.normalization,
            certificate=args.certificate,
            method=args.method,
            steps=args.steps,
            restarts=args.restarts,
            attack_all=args.attack_all,
            batch_size=args.batch_size,
            max_triplets=args.max_triplets,
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
    output.mkdir(parents=True, exist_ok=True)
    print(f"wrote {report.save_json(output / 'robustness.json')}")
    try:
        print(f"wrote {plot_report(report, output / 'robustness.png')}")
    except ImportError as error:
        print(f"lipsim robustness: {error}", file=sys.stderr)
    return 0
