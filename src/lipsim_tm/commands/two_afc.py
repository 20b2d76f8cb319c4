"""``lipsim 2afc``: which of two image files is closer to a reference, with the decision's certified radii.

One triplet (``REF IMG0 IMG1``) or a table (``--triplets triplets.csv``: columns ``ref,img0,img1`` and optionally
``target`` and ``votes``); with targets, the 2AFC report: the soft score, the natural accuracy and the certified
accuracy at each eps, with 95% intervals. Every triplet goes through one engine (:mod:`~lipsim_tm.commands._scoring`).
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
    positive_int,
)
from lipsim_tm.files import check_file

DESCRIPTION = (
    "Decide which of IMG0 and IMG1 is closer to REF under LipSim (two-alternative forced choice) and give both"
    " distances and two certified l2 radii (pixels of the files as read, values in [0, 1]): no perturbation of REF"
    " of smaller norm changes the decision, and none of each of the three images of smaller norm does. Files may"
    " differ in size and mode; the resize to the network's input is accounted for exactly (the reference radius"
    " uses REF's own bound, the other the largest of the three). --triplets TABLE.csv scores many triplets (columns"
    " ref,img0,img1; paths absolute or relative to the table): one row each (--out FILE.csv or .jsonl; without it,"
    " CSV on standard output). With a target column (the share of people who judged img1 closer, in [0, 1]; 0 or 1"
    " for one judgment) it also reports the 2AFC score, the natural accuracy and the certified accuracy at each"
    " --eps; --min-votes N keeps the rows of a votes column with at least N."
)
COLUMNS: tuple[str, ...] = ("ref", "img0", "img1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("ref", nargs="?", help="reference image file")
    parser.add_argument("img0", nargs="?", help="first candidate image file")
    parser.add_argument("img1", nargs="?", help="second candidate image file")
    parser.add_argument("--triplets", metavar="TABLE", help="a CSV table of triplets, columns ref,img0,img1[,target]")
    parser.add_argument(
        "--min-votes", type=positive_int, default=None, help="keep the table rows with at least this many votes"
    )
    add_eps_argument(parser)
    add_certificate_arguments(parser)
    add_network_arguments(parser)
    add_scoring_arguments(parser)
    add_examples(
        parser,
        "lipsim 2afc ref.png a.png b.png",
        "lipsim 2afc --triplets judgments.csv --out decisions.csv",
        "lipsim 2afc --triplets judgments.csv --min-votes 3 --eps 36/255 72/255 --json",
    )


def _listing(args: argparse.Namespace) -> tuple[Any, bool]:
    """The triplets the arguments name, and whether they are one triplet given as files (cheap checks first)."""
    from lipsim_tm.data.tables import FileSet, Listing, read_triplets

    given = [p for p in (args.ref, args.img0, args.img1) if p is not None]
    if args.triplets is not None:
        if given:
            raise ValueError("give three files or --triplets TABLE, not both")
        return read_triplets(args.triplets, min_votes=args.min_votes), False
    if args.min_votes is not None:
        raise ValueError("--min-votes applies to --triplets TABLE")
    if len(given) != 3:
        raise ValueError("give three image files (REF IMG0 IMG1) or --triplets TABLE.csv")
    return Listing([FileSet(tuple(given), tuple(check_file(p, "image file") for p in given))]), True


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._runtime import evaluation_processes
    from lipsim_tm.commands._scoring import check_rows_file
    from lipsim_tm.functional.certificates.policy import check_certificate

    check_certificate(args.certificate, args.normalization)
    listing, single = _listing(args)
    targets = [item.target for item in listing.items]
    if len({t is None for t in targets}) > 1:
        raise ValueError("every row of the table needs a target, or none does")
    out = check_rows_file(args.out)
    with evaluation_processes(args.device) as processes:
        return _score(args, listing, single, out, processes)


def _score(args: argparse.Namespace, listing: Any, single: bool, out: Path | None, processes: Any) -> int:
    import torch

    from lipsim_tm.commands._runtime import load_network
    from lipsim_tm.commands._scoring import score_items
    from lipsim_tm.distributed import all_sum
    from lipsim_tm.functional.two_afc import TwoAFCCounts, _two_afc_agreement, _two_afc_counts, _two_afc_update

    backbone = load_network(args, device=processes.device)
    with_targets = listing.items[0].target is not None
    budgets = torch.tensor(args.eps, dtype=torch.float64, device=processes.device)
    counts = TwoAFCCounts.zeros(len(args.eps), processes.device)

    def score(features: list, bounds: list, items: list) -> list[dict[str, Any]]:
        nonlocal counts
        result = _two_afc_update(
            *features,
            distance=args.distance,
            normalization=args.normalization,
            certificate=args.certificate,
            lipschitz=tuple(bounds),
        )
        rows = []
        for i, item in enumerate(items):
            closer = "tie" if bool(result.tie[i]) else ("img1" if bool(result.prefers_img1[i]) else "img0")
            row = {**dict(zip(COLUMNS, item.names, strict=True)), "closer": closer}
            row.update({key: float(getattr(result, key)[i]) for key in ("d0", "d1", "radius_reference", "radius_all")})
            rows.append(row)
        if with_targets:
            target = torch.tensor([item.target for item in items], dtype=torch.float64, device=processes.device)
            counts = counts.plus(_two_afc_counts(result, target, budgets))
            correct = _two_afc_agreement(result, target)[2]
            for i, row in enumerate(rows):
                row.update(target=items[i].target, correct=bool(correct[i]) if target[i] != 0.5 else None)
        return rows

    scored = score_items(
        listing.items,
        COLUMNS,
        score,
        args,
        backbone=backbone,
        processes=processes,
        single=single,
        label="2afc",
    )
    counts = TwoAFCCounts.from_flat(all_sum(counts.flat(), processes), len(args.eps))
    if not processes.is_main:
        return 0
    if single:
        return _print_triplet(args, scored.only_row())
    return _report_many(args, listing, scored, out, counts if with_targets else None)


def _print_triplet(args: argparse.Namespace, row: dict[str, Any]) -> int:
    from lipsim_tm.commands._report import write_json

    numbers = {key: row[key] for key in ("d0", "d1", "radius_reference", "radius_all")}
    if args.json:
        paths = {name: getattr(args, name) for name in COLUMNS}
        write_json(
            {
                **paths,
                "weights": str(args.weights),
                "closer": row["closer"],
                **numbers,
                "distance_form": args.distance,
                "normalization": args.normalization,
                "certificate": args.certificate,
            },
            None,
        )
        return 0
    if row["closer"] == "tie":
        print(f"tie: {args.img0} and {args.img1} are equally close to {args.ref} (no certified decision)")
    else:
        print(f"{getattr(args, row['closer'])} ({row['closer'].upper()}) is closer to {args.ref}")
    form = "1 - cos" if args.distance == "cosine" else "l2"
    print(f"  d0 = {numbers['d0']:.6f}  d1 = {numbers['d1']:.6f}  ({form})")
    print(f"certified l2 radius of the decision (pixels in [0, 1]; {args.certificate} rule):")
    print(f"  reference perturbed:        {numbers['radius_reference']:.6f}")
    print(f"  all three images perturbed: {numbers['radius_all']:.6f}")
    return 0


def _report_many(args: argparse.Namespace, listing: Any, scored: Any, out: Path | None, counts: Any) -> int:
    from lipsim_tm.commands._scoring import report_rows
    from lipsim_tm.functional.two_afc import _two_afc_summary, two_afc_table

    judged = ["target", "correct"] if counts is not None else []
    columns = [*COLUMNS, *judged, "closer", "d0", "d1", "radius_reference", "radius_all", "error"]
    report = _two_afc_summary(counts, args.eps) if counts is not None else None
    ties = sum(1 for row in scored.rows if not row["error"] and row["closer"] == "tie")
    scored_count = len(listing.items) - scored.failed
    summary = {
        "triplets": len(listing.items),
        "scored": scored_count,
        "failed": scored.failed,
        "ties": ties,
        "certificate": args.certificate,
        "report": None if report is None else report.to_dict(),
    }
    lines = [f"scored {scored_count} of {len(listing.items)} triplets ({scored.failed} failed); {ties} ties"]
    lines += two_afc_table([("triplets", report)]) if report is not None else []
    return report_rows("2afc", scored, listing, columns, summary, lines, out=out, as_json=args.json)
