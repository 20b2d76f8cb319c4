"""``lipsim demo``: an offline report on the photos shipped in the package (table, ``report.json``, a PNG plot).

Two parts, both on the three photos of ``lipsim_tm/assets/photos``:

- 2AFC: seeded same-family synthetic triplets (a crop at the network's input size and two distortions of
  one family at different severities; the milder one is closer, so the label is known), scored by
  :class:`~lipsim_tm.metrics.Certified2AFCAccuracy` under both certificate rules;
- severity: the distance of each whole photo to each of its distortions at increasing severity, with the
  certified interval at 36/255 (one image perturbed), in the photo's own pixels.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from lipsim_tm.checks import check_int
from lipsim_tm.commands._options import add_network_arguments, add_progress_argument, positive_int
from lipsim_tm.commands._report import Progress, write_json
from lipsim_tm.commands._runtime import file_features, load_network
from lipsim_tm.files import make_folder
from lipsim_tm.functional.text import describe_eps
from lipsim_tm.models.backbone import LipSimBackbone

#: Certificate rules compared: the published 1-Lipschitz rule and the norm-aware one.
RULES: dict[str, str] = {"plain": "plain (1-Lipschitz)", "norm_aware": "norm-aware"}
#: Budgets of the plotted curves (l2, pixels in [0, 1]); the paper's three are added.
PLOT_EPSILONS: tuple[float, ...] = tuple(i / 50 for i in range(31))
#: Budget of the severity intervals.
SEVERITY_EPSILON = 36 / 255


DESCRIPTION = (
    "Run LipSim on the three photos shipped with the package (no network, no files of yours): seeded"
    " synthetic 2AFC triplets with known answers (two severities of one distortion; the milder is"
    " closer) scored naturally and certified at l2 budgets eps (pixels in [0, 1]) under the plain and"
    " the norm-aware rule, and the distance of each photo to its distortions by severity with certified"
    " intervals. Prints a table; writes report.json and certified_accuracy.png to --out."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("--out", default="lipsim-demo", help="output folder (default: ./%(default)s)")
    parser.add_argument("--triplets", type=positive_int, default=90, help="synthetic triplets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the triplets and distortions (default: 0)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="triplets per batch (default: %(default)s)")
    add_progress_argument(parser)
    add_network_arguments(parser)


@contextlib.contextmanager
def shipped_photos() -> Iterator[list[Path]]:
    """File-system paths of the photos in ``lipsim_tm/assets/photos`` (sorted), valid inside the ``with`` block."""
    folder = resources.files("lipsim_tm") / "assets" / "photos"
    entries = sorted((e for e in folder.iterdir() if e.name.lower().endswith(".jpg")), key=lambda e: e.name)
    if not entries:
        raise FileNotFoundError(f"no photos in {folder}: this installation of lipsim_tm lacks its assets (reinstall)")
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(resources.as_file(entry)) for entry in entries]


def _two_afc_part(
    backbone: LipSimBackbone, photos: list[Path], *, triplets: int, seed: int, batch_size: int, progress: bool
) -> dict[str, Any]:
    from torchmetrics.wrappers import FeatureShare

    from lipsim_tm.data import Synthetic2AFCDataset
    from lipsim_tm.functional.certificates.policy import PAPER_EPSILONS
    from lipsim_tm.metrics import Certified2AFCAccuracy
    from lipsim_tm.metrics.evaluation import evaluate_2afc

    size = backbone.config.input_size
    dataset = Synthetic2AFCDataset(photos, image_size=size, length=triplets, seed=seed)
    epsilons = sorted(set(PLOT_EPSILONS) | set(PAPER_EPSILONS))
    device = next(backbone.parameters()).device
    metrics = FeatureShare(  # one forward pass per batch serves both certificate rules
        {
            rule: Certified2AFCAccuracy(backbone, epsilons=epsilons, certificate=rule, per_sample=True).to(device)
            for rule in RULES
        }
    )
    bar = Progress(len(dataset), label="demo 2afc", enabled=progress)
    try:
        results = evaluate_2afc(dataset, metrics, batch_size=batch_size, progress=bar.update)
    finally:
        bar.close()
    rules = {}
    for rule, result in results.items():
        metric = metrics[rule]
        rules[rule] = {
            "certified_reference": {
                f"{eps:.6g}": float(result[k]) for eps, k in zip(epsilons, metric.keys, strict=True)
            },
            "certified_all": {f"{eps:.6g}": float(result[k]) for eps, k in zip(epsilons, metric.keys_all, strict=True)},
            "median_radius_reference": float(result["radius_reference"].median()),
            "median_radius_all": float(result["radius_all"].median()),
        }
    return {
        "triplets": triplets,
        "crop_size": size,
        "seed": seed,
        "photos": [p.name for p in photos],
        "score_2afc": float(results["plain"]["score_2afc"]),
        "natural_accuracy": float(results["plain"]["natural_accuracy"]),
        "summary": {rule: metrics[rule].summary().to_dict() for rule in RULES},  # counts and 95% intervals
        "epsilons": epsilons,
        "rules": rules,
    }


def _severity_part(backbone: LipSimBackbone, photos: list[Path], *, seed: int) -> dict[str, Any]:
    from lipsim_tm.data import read_image
    from lipsim_tm.data.distortions import DISTORTION_FAMILIES, apply_distortion
    from lipsim_tm.data.transforms import item_generator
    from lipsim_tm.functional.distance import _lipsim_distance_update

    options = {"perturbed": "one", "distance": "cosine", "normalization": "augment", "certificate": "norm_aware"}
    families = list(DISTORTION_FAMILIES)
    norms: list[float] = []
    per_photo = []
    for p, path in enumerate(photos):
        photo = read_image(path)
        distorted = torch.stack(
            [
                apply_distortion(photo[0], family, level, item_generator(seed, p, f, level))
                for f, family in enumerate(families)
                for level in range(len(DISTORTION_FAMILIES[family]))
            ]
        )
        reference, lipschitz = file_features(backbone, photo, path.name)
        variants, variants_lipschitz = file_features(backbone, distorted, path.name)
        severity = _lipsim_distance_update(
            reference.expand_as(variants),
            variants,
            lipschitz=(lipschitz, variants_lipschitz),
            epsilons=(SEVERITY_EPSILON,),
            **options,
        )
        norms += torch.cat([reference, variants]).double().norm(dim=1).tolist()
        rows, k = {}, 0
        for family in families:
            rows[family] = []
            for level, value in enumerate(DISTORTION_FAMILIES[family]):
                rows[family].append(
                    {
                        "level": level,
                        "severity": value,
                        "distance": float(severity.distance[k]),
                        "lower": float(severity.lower[k, 0]),
                        "upper": float(severity.upper[k, 0]),
                    }
                )
                k += 1
        height, width = photo.shape[-2:]
        per_photo.append({"photo": path.name, "size": [width, height], "lipschitz": lipschitz, **rows})
    monotone = sum(
        all(a["distance"] < b["distance"] for a, b in zip(entry[f], entry[f][1:], strict=False))
        for entry in per_photo
        for f in families
    )
    return {
        "eps": SEVERITY_EPSILON,
        **options,
        "families": families,
        "photos": per_photo,
        "increasing_series": monotone,
        "series": len(per_photo) * len(families),
        "embedding_norms": {
            "images": len(norms),
            "min": min(norms),
            "median": statistics.median(norms),
            "max": max(norms),
        },
    }


def run_demo(
    backbone: LipSimBackbone,
    out: str | Path,
    *,
    triplets: int = 90,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    weights_name: str = "",
) -> dict[str, Any]:
    """Run both parts on the shipped photos, write ``report.json`` and ``certified_accuracy.png`` into ``out``.

    Returns the report (also written as JSON). ``backbone`` must be in eval mode.
    """
    check_int("triplets", triplets, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    out = make_folder(out, "output folder")
    start = time.perf_counter()
    with shipped_photos() as photos:
        two_afc = _two_afc_part(
            backbone, photos, triplets=triplets, seed=seed, batch_size=batch_size, progress=progress
        )
        severity = _severity_part(backbone, photos, seed=seed)
    report = {
        "weights": weights_name,
        "model": {"input_size": backbone.config.input_size, "lipschitz_bound": backbone.lipschitz_bound},
        "two_afc": two_afc,
        "severity": severity,
        "seconds": time.perf_counter() - start,
    }
    write_json(report, out / "report.json")
    _plot(two_afc, out / "certified_accuracy.png", triplets)
    return report


def _plot(two_afc: dict[str, Any], path: Path, triplets: int) -> None:
    """Draw certified accuracy against eps for both rules at ``path``; without matplotlib say what to install."""
    from lipsim_tm.plotting import MATPLOTLIB_MISSING, Series, line_plot

    eps = [0.0, *(e for e in two_afc["epsilons"] if e > 0)]
    natural = two_afc["natural_accuracy"]  # the eps = 0 point: certified accuracy's own population and rule
    series = [
        Series(label, [natural, *(two_afc["rules"][rule]["certified_reference"][f"{e:.6g}"] for e in eps[1:])], True)
        for rule, label in RULES.items()
    ]
    try:
        line_plot(
            path,
            eps,
            series,
            title=f"LipSim certified 2AFC accuracy ({triplets} synthetic triplets, reference perturbed)",
            x_label="eps: l2 budget of the reference perturbation (pixels in [0, 1])",
            y_label="certified accuracy (eps = 0: natural accuracy)",
        )
    except ImportError:
        print(MATPLOTLIB_MISSING, file=sys.stderr)


def _interval(estimate: dict[str, Any]) -> str:
    return "n/a" if estimate["low"] is None else f"{estimate['low']:.3f}, {estimate['high']:.3f}"


def format_table(report: dict[str, Any]) -> str:
    """The terminal summary of a :func:`run_demo` report."""
    from lipsim_tm.functional.certificates.policy import PAPER_EPSILONS

    two_afc, severity = report["two_afc"], report["severity"]
    counts = two_afc["summary"]["plain"]
    rules = two_afc["rules"]
    lines = [
        f"LipSim demo (weights: {report['weights']}): {two_afc['triplets']} same-family synthetic triplets"
        f" ({two_afc['crop_size']}x{two_afc['crop_size']} crops of {', '.join(two_afc['photos'])})",
        f"2AFC score (soft, all triplets): {two_afc['score_2afc']:.3f}",
        f"natural accuracy (hard, {counts['decided']} decided triplets; compare certified with this):"
        f" {two_afc['natural_accuracy']:.3f} [95%: {_interval(counts['natural_accuracy'])}]",
        "certified 2AFC accuracy, reference perturbed by l2 <= eps (pixels in [0, 1]):",
        f"  {'eps':<16}{'plain':>8}{'norm-aware':>12}",
    ]
    for eps in PAPER_EPSILONS:
        key = f"{eps:.6g}"
        plain, aware = rules["plain"]["certified_reference"][key], rules["norm_aware"]["certified_reference"][key]
        lines.append(f"  {describe_eps(eps):<16}{plain:>8.3f}{aware:>12.3f}")
    lines.append(
        "median certified radius (reference / all three perturbed): "
        + ", ".join(
            f"{name} {rules[r]['median_radius_reference']:.4f} / {rules[r]['median_radius_all']:.4f}"
            for r, name in (("plain", "plain"), ("norm_aware", "norm-aware"))
        )
    )
    norms = severity["embedding_norms"]
    lines.append(
        f"embedding norms ||f(x)|| ({norms['images']} photos and distortions): min {norms['min']:.3f},"
        f" median {norms['median']:.3f}, max {norms['max']:.3f}"
    )
    families = severity["families"]
    levels = len(severity["photos"][0][families[0]])
    lines.append(
        f"distance to the whole photo by severity (1 - cos, mean of {len(severity['photos'])} photos);"
        f" increasing in {severity['increasing_series']}/{severity['series']} photo-family series:"
    )
    lines.append(f"  {'family':<10}" + "".join(f"{'level ' + str(k + 1):>10}" for k in range(levels)))
    for family in families:
        means = [statistics.mean(photo[family][k]["distance"] for photo in severity["photos"]) for k in range(levels)]
        lines.append(f"  {family:<10}" + "".join(f"{m:>10.3g}" for m in means))
    lines.append(f"(certified intervals at eps {describe_eps(severity['eps'])} in report.json)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    backbone = load_network(args)
    report = run_demo(
        backbone,
        args.out,
        triplets=args.triplets,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        weights_name=str(args.weights),
    )
    print(format_table(report))
    out = Path(args.out)
    written = [out / name for name in ("report.json", "certified_accuracy.png") if (out / name).is_file()]
    print(f"wrote {' and '.join(map(str, written))} in {report['seconds']:.1f} s")
    return 0
