"""``lipsim demo``: end to end on the shipped photos with a tiny network; report, plot and table."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import sys

import pytest
import torch
from cli_helpers import WEIGHTS, run_cli
from PIL import Image

from lipsim_tm.cli import main
from lipsim_tm.commands.demo import PLOT_EPSILONS, shipped_photos
from lipsim_tm.data import Synthetic2AFCDataset
from lipsim_tm.data.distortions import DISTORTION_FAMILIES, apply_distortion
from lipsim_tm.data.images import read_image
from lipsim_tm.data.transforms import item_generator
from lipsim_tm.functional import certified_distance_interval
from lipsim_tm.metrics import Certified2AFCAccuracy
from lipsim_tm.metrics.certified_2afc import PAPER_EPSILONS

TRIPLETS = 12
#: matplotlib's first two default colours (C0, C1): the two certificate rules' curves.
PALETTE = ((31, 119, 180), (255, 127, 14))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo run (random tiny32, 12 triplets): (output folder, stdout, stderr, report).

    Module-scoped, so the streams are captured by redirection (capsys is per test).
    """
    out = tmp_path_factory.mktemp("demo") / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["demo", "--weights", WEIGHTS, "--out", str(out), "--triplets", str(TRIPLETS)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue(), json.loads((out / "report.json").read_text())


def test_the_package_ships_three_photos():
    with shipped_photos() as photos:
        assert [p.name for p in photos] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
        for path in photos:
            with Image.open(path) as image:
                assert min(image.size) >= 224


def test_demo_writes_a_valid_png_plot(demo):
    out, *_ = demo
    with Image.open(out / "certified_accuracy.png") as image:
        assert image.format == "PNG"
        assert image.size == (760, 500)
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert PALETTE[0] in colours
    assert PALETTE[1] in colours


def test_demo_numbers_match_the_metric_run_directly(demo):
    _, _, _, report = demo
    two_afc = report["two_afc"]
    assert two_afc["triplets"] == TRIPLETS
    assert two_afc["crop_size"] == 32
    with shipped_photos() as photos:
        dataset = Synthetic2AFCDataset(photos, image_size=32, length=TRIPLETS, seed=0)
        batch = [torch.stack(parts) for parts in zip(*(dataset[i] for i in range(TRIPLETS)), strict=True)]
    for rule in ("plain", "norm_aware"):
        metric = Certified2AFCAccuracy(WEIGHTS, epsilons=PAPER_EPSILONS, certificate=rule, per_sample=True)
        metric.update(*batch)
        expected = metric.compute()
        assert two_afc["score_2afc"] == pytest.approx(float(expected["score_2afc"]), abs=1e-6)
        assert two_afc["natural_accuracy"] == pytest.approx(float(expected["natural_accuracy"]), abs=1e-6)
        for eps in PAPER_EPSILONS:
            got = two_afc["rules"][rule]["certified_reference"][f"{eps:.6g}"]
            assert got == pytest.approx(float(expected[f"certified_2afc@{eps:.4g}"]), abs=1e-6)
        assert two_afc["rules"][rule]["median_radius_reference"] == pytest.approx(
            float(expected["radius_reference"].median()), rel=1e-5
        )


def test_certified_curves_fall_with_eps_and_norm_aware_dominates(demo):
    _, _, _, report = demo
    rules = report["two_afc"]["rules"]
    eps = report["two_afc"]["epsilons"]
    assert set(PLOT_EPSILONS) <= set(eps)
    assert set(PAPER_EPSILONS) <= set(eps)
    for rule in ("plain", "norm_aware"):
        curve = [rules[rule]["certified_reference"][f"{e:.6g}"] for e in eps]
        assert all(b <= a for a, b in itertools.pairwise(curve))
        assert curve[0] <= report["two_afc"]["natural_accuracy"]  # no certified accuracy above the natural one
    for e in eps:
        key = f"{e:.6g}"
        assert rules["norm_aware"]["certified_reference"][key] >= rules["plain"]["certified_reference"][key]
        assert rules["norm_aware"]["certified_all"][key] >= rules["plain"]["certified_all"][key]


def test_severity_distances_and_intervals_match_the_functional_api(demo):
    _, _, _, report = demo
    severity = report["severity"]
    assert severity["series"] == 18
    assert len(severity["photos"]) == 3
    norms = severity["embedding_norms"]
    assert norms["images"] == 93
    assert 0 < norms["min"] <= norms["median"] <= norms["max"]
    with shipped_photos() as photos:
        photo = read_image(photos[1])
    family = "blur"
    f = list(DISTORTION_FAMILIES).index(family)
    entry = severity["photos"][1]
    assert entry["photo"] == "chelsea.jpg"
    assert entry["size"] == [photo.shape[3], photo.shape[2]]
    for level, row in enumerate(entry[family]):
        distorted = apply_distortion(photo[0], family, level, item_generator(0, 1, f, level))[None]
        interval = certified_distance_interval(photo, distorted, severity["eps"], weights=WEIGHTS)
        assert row["distance"] == pytest.approx(float(interval.distance[0]), rel=1e-4, abs=1e-9)
        assert row["lower"] == pytest.approx(float(interval.lower[0]), rel=1e-4, abs=1e-9)
        assert row["upper"] == pytest.approx(float(interval.upper[0]), rel=1e-4, abs=1e-9)


def test_demo_prints_the_table_and_progress(demo):
    out, stdout, stderr, report = demo
    assert f"2AFC score (soft, all triplets): {report['two_afc']['score_2afc']:.3f}" in stdout
    assert f"natural accuracy (hard, {report['two_afc']['summary']['plain']['decided']} decided" in stdout
    for rule in ("plain", "norm_aware"):
        summary = report["two_afc"]["summary"][rule]
        assert summary["natural_accuracy"]["value"] == pytest.approx(report["two_afc"]["natural_accuracy"])
        for row in summary["certified"]:
            key = f"{row['eps']:.6g}"
            assert row["reference"]["value"] == pytest.approx(
                report["two_afc"]["rules"][rule]["certified_reference"][key]
            )
    assert f"{report['two_afc']['natural_accuracy']:.3f} [95%: " in stdout
    for eps in ("0.1412 (36/255)", "0.2824 (72/255)", "0.4235 (108/255)"):
        assert eps in stdout
    assert "median certified radius" in stdout
    assert "embedding norms ||f(x)||" in stdout
    assert f"wrote {out / 'report.json'} and {out / 'certified_accuracy.png'}" in stdout
    assert f"{TRIPLETS}/{TRIPLETS} triplets" in stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--triplets", "0"], "argument --triplets: must be an int >= 1, got '0'"),
        (["--batch-size", "0"], "argument --batch-size: must be an int >= 1"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    code, _, err = run_cli(["demo", "--weights", WEIGHTS, "--out", str(tmp_path), *extra], capsys)
    assert code == 2
    assert message in err


def test_output_that_is_a_file_exits_2(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = run_cli(["demo", "--weights", WEIGHTS, "--out", str(target)], capsys)
    assert code == 2
    assert f"expected an output folder, got the file {target}" in err


def test_demo_without_matplotlib_writes_the_report_and_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, err = run_cli(["demo", "--weights", WEIGHTS, "--out", str(tmp_path), "--triplets", "4"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "report.json").read_text())["two_afc"]["triplets"] == 4
    assert not (tmp_path / "certified_accuracy.png").exists()
    assert "pip install lipsim-tm[plot]" in err
    assert f"wrote {tmp_path / 'report.json'} in" in out
