"""Outputs pinned on fixed inputs: both metrics (every certificate rule and normalisation), ``two_afc``,
``certified_distance_interval``, the command line's JSON (distance, 2afc, certify) and a robustness report.

``pinned_outputs.json`` was written by this file (``LIPSIM_WRITE_PINS=1 pytest tests/test_pinned_outputs.py``)
on commit e00f7d5, before the functional core of issue 24 replaced the copies of the pipeline; the restructured
package must give the same numbers. Issue 25 gave each number one name everywhere; its renames were applied to
the pinned keys, never to the values ("2afc" and "natural_2afc" -> "score_2afc", a robustness report's "natural"
-> "natural_accuracy", 2afc's candidates "x0"/"x1" -> "img0"/"img1"), and certify's JSON gained
"dropped_for_votes". The float64 network makes the metric and functional numbers reproducible across torch
releases to ~1e-12; the command line reads images as float32 and runs a float32 network, so its numbers are
compared to float32 rounding.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from dataset_writers import synthetic_photo, write_nights
from lipsim_tm import LipSimBackbone
from lipsim_tm.cli import main
from lipsim_tm.functional import certified_distance_interval, two_afc
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from lipsim_tm.models.checkpoints.export import save_export

pytestmark = pytest.mark.usefixtures("single_thread")

PINS = Path(__file__).with_name("pinned_outputs.json")
#: (normalization, certificate) pairs the package accepts ("plain" rule needs a 1-Lipschitz normalisation).
RULES = [("augment", "norm_aware"), ("augment", "plain"), ("ball", "norm_aware"), ("ball", "plain")]
RULES += [("plain", "norm_aware")]
EPSILONS = [0.01, 0.05, 0.2, 1.0]


def pinned_network(dtype: torch.dtype = torch.float64) -> LipSimBackbone:
    """tiny32 with input scale 6 (embedding norms well above 1, so both certificate rules matter), weights drawn
    by numpy (reproducible on every torch release)."""
    net = LipSimBackbone("tiny32", input_scale=6.0)
    rng = np.random.default_rng(2024)
    with torch.no_grad():
        for name, param in sorted(net.named_parameters()):
            scale = 1.0 if name.endswith(".q") else 0.05 if "bias" in name else 0.4
            param.copy_(torch.from_numpy(rng.standard_normal(tuple(param.shape)) * scale))
    return net.to(dtype).eval().requires_grad_(False)


def images(seed: int, n: int, size: int = 32, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(n, 3, size, size)`` structured images in [0, 1] from the shared photo generator."""
    return torch.stack(
        [torch.from_numpy(synthetic_photo(seed + i, size, size)).permute(2, 0, 1) / 255.0 for i in range(n)]
    ).to(dtype)


def triplets(dtype: torch.dtype = torch.float64, size: int = 32) -> tuple[torch.Tensor, ...]:
    """Six triplets: candidates at increasing distance from the reference, targets covering ties and certainty."""
    ref = images(10, 6, size, dtype)
    noise = images(40, 6, size, dtype) - 0.5
    img0 = (ref + 0.15 * noise).clamp(0, 1)
    img1 = (ref + torch.tensor([0.05, 0.3, 0.1, 0.2, 0.6, 0.02], dtype=dtype).view(-1, 1, 1, 1) * noise.flip(0)).clamp(
        0, 1
    )
    target = torch.tensor([0.0, 1.0, 0.5, 0.8, 0.3, 1.0], dtype=dtype)
    return ref, img0, img1, target


def plain(value: Any) -> Any:
    """Tensors and tuples as lists of floats, NamedTuples and dataclasses' dicts as dicts."""
    if isinstance(value, torch.Tensor):
        return value.detach().double().tolist()
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if hasattr(value, "_asdict"):
        return plain(value._asdict())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def metric_outputs() -> dict[str, Any]:
    net = pinned_network()
    x, y = images(0, 5), images(20, 5)
    x40, y40 = images(0, 3, 40), images(20, 3, 40)
    ref, img0, img1, target = triplets()
    out: dict[str, Any] = {}
    for normalization, certificate in RULES:
        for distance in ("cosine", "l2"):
            key = f"{normalization}-{certificate}-{distance}"
            options = {"normalization": normalization, "certificate": certificate, "distance": distance}
            for perturbed in ("one", "both"):
                metric = LipSimDistance(net, reduction="none", certify_eps=0.05, perturbed=perturbed, **options)
                metric.update(x, y)
                metric.update(x40, y40)
                out[f"LipSimDistance/{key}/{perturbed}"] = plain(metric.compute())
                interval = certified_distance_interval(x40, y40, 0.03, perturbed=perturbed, weights=net, **options)
                out[f"certified_distance_interval/{key}/{perturbed}"] = plain(interval)
            mean = LipSimDistance(net, reduction="mean", certify_eps=0.2, **options)
            mean.update(x, y)
            out[f"LipSimDistance-mean/{key}"] = plain(mean.compute())
            accuracy = Certified2AFCAccuracy(net, epsilons=EPSILONS, per_sample=True, **options)
            accuracy.update(ref, img0, img1, target)
            out[f"Certified2AFCAccuracy/{key}"] = plain(accuracy.compute())
            out[f"Certified2AFCAccuracy.summary/{key}"] = plain(accuracy.summary())
            result = two_afc(ref, img0, img1, weights=net, **options)
            out[f"two_afc/{key}"] = plain(result)
    sum_metric = LipSimDistance(net, reduction="sum")
    sum_metric.update(x, y)
    out["LipSimDistance-sum"] = plain(sum_metric.compute())
    return out


def write_png(path: Path, seed: int, height: int, width: int) -> Path:
    Image.fromarray(synthetic_photo(seed, height, width)).save(path)
    return path


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def cli_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    weights = tmp_path / "pinned.pt"
    save_export(pinned_network(torch.float32), weights)
    a, b = write_png(tmp_path / "a.png", 1, 36, 44), write_png(tmp_path / "b.png", 2, 32, 32)
    c = write_png(tmp_path / "c.png", 3, 50, 30)
    out: dict[str, Any] = {}
    for normalization, certificate in RULES:
        common = ["--weights", str(weights), "--normalization", normalization, "--certificate", certificate, "--json"]
        for perturbed in ("one", "both"):
            argv = ["distance", str(a), str(b), "--perturbed", perturbed, "--eps", "0.01", "36/255", *common]
            report = cli_json(argv, capsys)
            out[f"distance/{normalization}-{certificate}/{perturbed}"] = drop(report, "image_a", "image_b", "weights")
        report = cli_json(["2afc", str(a), str(b), str(c), "--distance", "l2", *common], capsys)
        out[f"2afc/{normalization}-{certificate}"] = drop(report, "ref", "img0", "img1", "weights")
    rows = [{"votes": 6 + i % 3, "p": p, "split": "test", "is_imagenet": i % 2 == 0} for i, p in enumerate(P_NIGHTS)]
    nights = write_nights(tmp_path / "nights", rows, size=36)
    for certificate in ("norm_aware", "plain"):
        json_path = tmp_path / f"certify-{certificate}.json"
        argv = ["certify", str(nights), "--format", "nights", "--weights", str(weights), "--image-size", "32"]
        argv += ["--eps", "0.01", "0.05", "36/255", "--certificate", certificate, "--batch-size", "3"]
        assert main([*argv, "--per-triplet", "--no-progress", "--out", str(json_path)]) == 0
        capsys.readouterr()
        report = json.loads(json_path.read_text())
        out[f"certify/{certificate}"] = drop(report, "data_dir", "weights", "plot", "seconds")
    return out


P_NIGHTS = [0.0, 1.0, 0.5, 0.9, 0.2, 0.7, 0.4, 1.0]


def drop(report: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in keys}


def robustness_outputs(tmp_path: Path) -> dict[str, Any]:
    from lipsim_tm.data import Synthetic2AFCDataset
    from lipsim_tm.robustness import robustness_report

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        write_png(photos / f"p{i}.png", 50 + i, 48, 56)
    dataset = Synthetic2AFCDataset(photos, image_size=32, length=10, seed=3)
    out = {}
    for certificate in ("norm_aware", "plain"):
        report = robustness_report(
            dataset,
            weights=pinned_network(),
            epsilons=[0.0, 0.02, 0.1, 0.4],
            certificate=certificate,
            steps=4,
            batch_size=4,
            attack_all=True,
        )
        out[f"robustness/{certificate}"] = plain(report)
    return out


def compare(actual: Any, expected: Any, where: str, rel: float, abs_: float) -> None:
    """Equal structure; numbers within ``rel``/``abs_``; everything else exactly equal."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a dict"
        assert sorted(actual) == sorted(expected), f"{where}: keys differ"
        for key in expected:
            compare(actual[key], expected[key], f"{where}/{key}", rel, abs_)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{where}: lengths differ"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            compare(a, e, f"{where}[{i}]", rel, abs_)
    elif isinstance(expected, float) and not isinstance(actual, bool):
        if math.isnan(expected):
            assert isinstance(actual, float), f"{where}: {actual!r} is not a float"
            assert math.isnan(actual), f"{where}: {actual} is not NaN"
        else:
            assert actual == pytest.approx(expected, rel=rel, abs=abs_), f"{where}: {actual} != pinned {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != pinned {expected!r}"


def test_outputs_equal_the_pinned_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {
        "float64": {**metric_outputs(), **robustness_outputs(tmp_path)},
        "float32": cli_outputs(tmp_path, capsys),
    }
    if os.environ.get("LIPSIM_WRITE_PINS"):
        PINS.write_text(json.dumps(outputs, indent=1, allow_nan=True) + "\n")
    pinned = json.loads(PINS.read_text())
    compare(outputs["float64"], pinned["float64"], "float64", rel=1e-9, abs_=1e-12)
    compare(outputs["float32"], pinned["float32"], "float32", rel=2e-5, abs_=2e-6)
