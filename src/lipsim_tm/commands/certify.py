"""``lipsim certify DIR``: natural and certified 2AFC accuracy over a NIGHTS- or BAPPS-layout folder."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    add_output_arguments,
    add_progress_argument,
    positive_int,
)
from lipsim_tm.commands._report import Progress, write_json
from lipsim_tm.files import check_folder, check_writable
from lipsim_tm.functional.two_afc import two_afc_table

if TYPE_CHECKING:
    from lipsim_tm.distributed import DistributedContext

FORMATS: tuple[str, ...] = ("nights", "bapps")
DEFAULT_SPLIT: dict[str, str] = {"nights": "test", "bapps": "val"}


DESCRIPTION = (
    "Evaluate a LipSim model on the 2AFC triplets of a folder laid out like NIGHTS (data.csv, ref/,"
    " distort/) or BAPPS (2afc/<split>/<subset>/{ref,p0,p1,judge}) with Certified2AFCAccuracy: the 2AFC"
    " score against the human judgments, and at each eps the fraction of triplets predicted correctly"
    " whose decision no l2 perturbation of norm <= eps can change (of the reference; 'all': of each of"
    " the three images). eps is in the pixels of the images as read (--image-size, values in [0, 1])."
    " Under torchrun (torchrun --nproc_per_node=N -m lipsim_tm.cli certify ...) the batches are dealt out"
    " to the processes and rank 0 writes the one report, equal to a single process's."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    add_format_argument(parser, FORMATS)
    parser.add_argument("--split", default=None, help="nights: test (default), val, train, ...; bapps: val (default)")
    parser.add_argument("--subset", nargs="+", default=None, help="bapps: subsets to include (default: all present)")
    add_eps_argument(parser)
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="side the images are read at, and the space eps is measured in (default: nights 224, bapps 64)",
    )
    add_loading_arguments(parser, batch_size=32)
    add_certificate_arguments(parser, with_distance=False)
    add_network_arguments(parser)
    add_output_arguments(
        parser, "also write the report as JSON to FILE, and the certified-accuracy plot next to it (FILE.png)"
    )
    add_min_votes_argument(parser)
    parser.add_argument(
        "--compare-paper",
        action="store_true",
        help="print the paper's numbers beside ours (--weights must name a released checkpoint)",
    )
    parser.add_argument(
        "--per-triplet",
        action="store_true",
        help="also write each triplet's distances, target and certified radii to the JSON (key per_triplet, by index)",
    )
    add_progress_argument(parser)
    add_examples(
        parser,
        "lipsim certify NIGHTS/ --format nights --out nights.json",
        "lipsim certify BAPPS/ --format bapps --subset traditional cnn --eps 18/255 36/255",
        "lipsim certify NIGHTS/ --format nights --weights lipsim-margin0.5 --normalization plain --compare-paper",
    )


def _dataset(args: argparse.Namespace) -> Any:
    from lipsim_tm.data import BAPPS2AFCDataset, NightsDataset

    split = args.split or DEFAULT_SPLIT[args.format]
    if args.format == "nights":
        if args.subset is not None:
            raise ValueError("--subset applies to bapps only (nights: choose --split test_imagenet/test_no_imagenet)")
        size = args.image_size or NightsDataset.NATIVE_SIZE
        return NightsDataset(args.data_dir, split, image_size=size, min_votes=args.min_votes)
    size = args.image_size or BAPPS2AFCDataset.NATIVE_SIZE
    return BAPPS2AFCDataset(args.data_dir, split, subsets=args.subset, image_size=size)


class _Labelled:
    """``dataset``'s triplets with the index of their subset in ``names`` and their own index appended."""

    def __init__(self, dataset: Any, labels: list[int]) -> None:
        self.dataset, self.labels = dataset, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return (*self.dataset[index], self.labels[index], index)


def _subset_names(dataset: Any, count: int) -> list[str | None]:
    """The subset of each of the first ``count`` triplets: BAPPS subset folders; NIGHTS imagenet/no_imagenet
    (from ``is_imagenet``, test splits only); None where the data defines no subsets."""
    subset = getattr(dataset, "subset", None)
    return [subset(i) if subset is not None else None for i in range(count)]


@dataclass
class Evaluated:
    """What :func:`evaluate_subsets` gives one process: the subsets' metrics, their merge, and (asked for) the
    per-triplet records this process evaluated, ``{"index", "subset", "target", "d0", "d1", "radius_reference",
    "radius_all"}`` (radii in the pixels of the images as read)."""

    subsets: list[tuple[str, Any]]
    overall: Any
    triplets: list[dict[str, Any]]


def evaluate_subsets(
    dataset: Any,
    new_metric: Callable[[], Any],
    *,
    count: int,
    batch_size: int,
    workers: int,
    progress: bool,
    label: str,
    rank: int = 0,
    world_size: int = 1,
) -> Evaluated:
    """Evaluate the first ``count`` triplets once (one forward pass each), accumulating one ``new_metric()`` per
    subset (metrics that share one network). The overall metric merges the states of all subsets (the
    count-weighted combination); without subsets the list is empty and the overall metric holds all.

    With ``world_size > 1`` this process reads the batches :class:`~lipsim_tm.data.sharding.ShardedBatches`
    gives ``rank`` (the single-process batches, dealt out in turn): the metrics sync their sums when summarised,
    so every rank's summaries equal one process's; per-triplet records stay local (see ``gather_lists``).
    Per-triplet records need ``new_metric()`` to keep per-sample states.
    """
    from torch.utils.data import DataLoader

    from lipsim_tm.data.sharding import ShardedBatches

    if count == 0:
        raise ValueError("no triplets to evaluate (empty split or subset; NIGHTS drops rows with votes < 6)")
    names = _subset_names(dataset, count)
    order = list(dict.fromkeys(n for n in names if n is not None))
    if None in names:
        order = []  # some triplets have no subset: report the whole only
    labels = [order.index(n) if order else 0 for n in names]
    metrics = [new_metric() for _ in (order or [None])]
    batches = ShardedBatches(count, batch_size, rank=rank, world_size=world_size)
    loader = DataLoader(_Labelled(dataset, labels), batch_sampler=batches, num_workers=workers)
    device = next(metrics[0].backbone.parameters()).device
    indices: list[list[int]] = [[] for _ in metrics]  # per subset, in the order its metric saw them
    bar = Progress(batches.size(), label=label, enabled=progress)
    try:
        for *batch, subset, index in loader:
            batch = [t.to(device) for t in batch]
            for k in subset.unique().tolist():
                rows = (subset == k).nonzero().squeeze(1)
                metrics[k].update(*(t.index_select(0, rows.to(device)) for t in batch))
                indices[k].extend(index[rows].tolist())
            bar.update(batch[0].shape[0])
    finally:
        bar.close()
    triplets = [] if not metrics[0].per_sample else _records(metrics, indices, order)
    overall = new_metric()
    for metric in metrics:
        overall.merge_state(metric)
    return Evaluated(list(zip(order, metrics, strict=True)), overall, triplets)


def _records(metrics: list[Any], indices: list[list[int]], order: list[str]) -> list[dict[str, Any]]:
    """Per-triplet records from the metrics' local per-sample states, sorted by triplet index."""
    from lipsim_tm.metrics.certified_2afc import PER_SAMPLE_KEYS

    records = []
    for k, metric in enumerate(metrics):
        columns = {key: [v for part in getattr(metric, key) for v in part.tolist()] for key in PER_SAMPLE_KEYS}
        for i, index in enumerate(indices[k]):
            record = {"index": index, "subset": order[k] if order else None}
            record.update({key: values[i] for key, values in columns.items()})
            records.append(record)
    return sorted(records, key=lambda record: record["index"])


def _plot(parts: list[tuple[str, Any]], path: Path, title: str) -> str | None:
    """Certified accuracy against eps (the hard natural accuracy at eps = 0) per subset; None without matplotlib."""
    import sys

    from lipsim_tm.plotting import MATPLOTLIB_MISSING, Series, line_plot

    keep = [i for i, r in enumerate(parts[0][1].rows) if r.eps > 0]
    x = [0.0, *(parts[0][1].rows[i].eps for i in keep)]
    series = []
    for name, s in parts:
        series.append(
            Series(f"{name}: reference", [s.natural_accuracy.value, *(s.rows[i].reference.value for i in keep)])
        )
        series.append(
            Series(f"{name}: all three", [s.natural_accuracy.value, *(s.rows[i].all.value for i in keep)], dashed=True)
        )
    series = [c for c in series if all(v == v for v in c.values)]  # NaN: no decided triplets
    if len(x) < 2 or sorted(set(x)) != x or not series:
        return None
    try:
        line_plot(
            path,
            x,
            series,
            title=title,
            x_label="eps: l2 budget (pixels in [0, 1] of the images as read)",
            y_label="certified accuracy (eps = 0: natural accuracy)",
        )
    except ImportError:
        print(MATPLOTLIB_MISSING, file=sys.stderr)
        return None
    return str(path)


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._runtime import evaluation_processes

    if args.out is not None:
        check_writable(args.out, "JSON report")
    check_folder(args.data_dir, "data folder")
    with evaluation_processes(args.device) as processes:
        return _certify(args, processes)


def _certify(args: argparse.Namespace, processes: DistributedContext) -> int:
    from lipsim_tm.commands._runtime import load_network
    from lipsim_tm.commands.paper import paper_results
    from lipsim_tm.distributed import gather_lists
    from lipsim_tm.metrics import Certified2AFCAccuracy

    paper = paper_results(str(args.weights), args.format, args.normalization) if args.compare_paper else {}
    epsilons = sorted(set(args.eps) | set(paper.get("certified", {})))
    dataset = _dataset(args)
    backbone = load_network(args, device=processes.device)

    def new_metric() -> Certified2AFCAccuracy:  # every subset's metric shares the one network
        return Certified2AFCAccuracy(
            backbone,
            epsilons=epsilons,
            normalization=args.normalization,
            certificate=args.certificate,
            per_sample=args.per_triplet,
        ).to(processes.device)

    split = args.split or DEFAULT_SPLIT[args.format]
    size = dataset.image_size
    start = time.perf_counter()
    evaluated = evaluate_subsets(
        dataset,
        new_metric,
        count=min(len(dataset), args.limit or len(dataset)),
        batch_size=args.batch_size,
        workers=args.workers,
        progress=not args.no_progress and processes.is_main,
        label=f"certify {args.format}" + (f" (rank 0 of {processes.world_size})" if processes.world_size > 1 else ""),
        rank=processes.rank,
        world_size=processes.world_size,
    )
    triplets = sorted(gather_lists(evaluated.triplets, processes), key=lambda record: record["index"])
    # Every rank summarises every metric in the same order: each summary is one collective sync.
    total = evaluated.overall.summary()
    whole = "overall" if args.format == "nights" else "combined"
    parts = [(name, m.summary()) for name, m in evaluated.subsets] + [(whole, total)]
    scores = {key: float(value) for key, value in evaluated.overall.compute().items() if value.ndim == 0}
    seconds = time.perf_counter() - start
    if not processes.is_main:
        return 0
    dropped = getattr(dataset, "dropped_for_votes", 0)
    report = {
        "format": args.format,
        "data_dir": args.data_dir,
        "split": split,
        "subsets": args.subset,
        "image_size": size,
        "weights": str(args.weights),
        "normalization": args.normalization,
        "certificate": args.certificate,
        "triplets": total.triplets,
        "decided": total.decided,
        "dropped_for_votes": dropped,
        "score_2afc": scores["score_2afc"],
        "natural_accuracy": scores["natural_accuracy"],
        "rows": [{"eps": r.eps, "certified": r.reference.value, "certified_all": r.all.value} for r in total.rows],
        "intervals": "95%: Wilson score intervals for accuracies, normal (CLT) interval for the soft score",
        "results": [{"subset": name, **s.to_dict()} for name, s in parts],
        "paper": paper or None,
        "plot": None,
        "processes": processes.world_size,
        "seconds": seconds,
    }
    if args.per_triplet:
        report["per_triplet"] = triplets
    if args.out is not None:
        json_path = Path(args.out)
        title = f"LipSim certified 2AFC accuracy, {args.format} {split}"
        report["plot"] = _plot(parts, json_path.with_suffix(".png"), title)
        write_json(report, json_path)
    if args.json:
        write_json(report, None)
        return 0
    print(
        f"{args.format} {split}: {total.triplets} triplets, {args.certificate} rule; {total.decided} decided"
        f" (target != 0.5); images read at {size}x{size}, eps in their [0, 1] pixels"
        + (f"; {dropped} rows with fewer than {args.min_votes} votes left out" if dropped else "")
        + (f"; {processes.world_size} processes" if processes.world_size > 1 else "")
    )
    print("\n".join(two_afc_table(parts, paper)))
    if args.out is not None:
        print(f"wrote {args.out}" + (f" and {report['plot']}" if report["plot"] else ""))
    return 0
