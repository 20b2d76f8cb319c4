"""robustness_report: table/JSON contents against independent evaluations, the accuracy ordering, plot, errors."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from lipsim_tm.functional import two_afc
from lipsim_tm.metrics import Certified2AFCAccuracy
from lipsim_tm.plotting import MATPLOTLIB_MISSING
from lipsim_tm.robustness import plot_report, robustness_report
from torch_threads import one_thread

EPSILONS = (0.0, 0.2, 0.5, 1.5)


@pytest.fixture(scope="module")
def report(trained, triplets):
    backbone, _ = trained
    with one_thread():  # module fixtures run before the function-scoped autouse one
        return robustness_report(
            triplets, weights=backbone, epsilons=(1.5, 0.0, 0.5, 0.2), steps=10, attack_all=True, batch_size=5
        )


def _stacked(dataset):
    return (torch.stack(column) for column in zip(*[dataset[i] for i in range(len(dataset))], strict=False))


def test_natural_and_certified_match_independent_evaluations(report, trained, triplets):
    backbone, _ = trained
    ref, x0, x1, p = _stacked(triplets)
    result = two_afc(ref, x0, x1, weights=backbone)
    decided = p != 0.5
    correct = decided & ~result.tie & (result.prefers_img1 == (p > 0.5))
    assert report.triplets == len(triplets)
    assert report.decided == int(decided.sum())
    assert report.natural_accuracy == pytest.approx(float(correct.sum()) / int(decided.sum()))
    assert [row.eps for row in report.rows] == sorted(EPSILONS)  # sorted, batch-size independent
    for row in report.rows:  # brute force over the per-sample radii, one batch
        assert row.certified == pytest.approx(float((correct & (result.radius_reference > row.eps)).float().mean()))
        assert row.certified_all == pytest.approx(float((correct & (result.radius_all > row.eps)).float().mean()))
    metric = Certified2AFCAccuracy(backbone, epsilons=list(EPSILONS))
    metric.update(ref, x0, x1, p)
    assert report.score_2afc == pytest.approx(float(metric.compute()["score_2afc"]))


def test_certified_below_empirical_below_natural_at_every_budget(report):
    assert report.rows[0].eps == 0.0
    assert report.rows[0].empirical == report.natural_accuracy
    previous = report.rows[0]
    for row in report.rows:
        assert row.certified <= row.empirical <= report.natural_accuracy, row
        assert row.certified_all <= row.empirical_all <= report.natural_accuracy, row
        assert row.certified_all <= row.certified
        assert row.empirical <= previous.empirical
        assert row.empirical_all <= previous.empirical_all
        previous = row
    # The attack does work: all three images moving by 1.5 break decisions the certificate cannot cover.
    assert report.rows[-1].empirical_all < report.natural_accuracy


def test_json_and_table(report, tmp_path):
    path = report.save_json(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data == report.to_dict()
    keys = {"triplets", "decided", "natural_accuracy", "score_2afc", "rows", "attack", "certificate", "normalization"}
    assert set(data) == {*keys, "intervals", "image_size"}
    assert data["image_size"] == list(report.image_size)
    natural = data["intervals"]["natural_accuracy"]
    assert natural["value"] == pytest.approx(report.natural_accuracy)
    assert natural["low"] <= report.natural_accuracy <= natural["high"]
    assert natural["total"] == report.decided
    for row, interval in zip(data["rows"], data["intervals"]["rows"], strict=True):
        assert interval["eps"] == row["eps"]
        for key in ("certified", "empirical", "certified_all", "empirical_all"):
            assert interval[key]["value"] == pytest.approx(row[key])
            assert interval[key]["low"] <= row[key] <= interval[key]["high"]
    assert data["intervals"]["score_2afc"]["value"] == pytest.approx(report.score_2afc, rel=1e-6)
    assert (data["certificate"], data["normalization"]) == ("norm_aware", "augment")
    assert data["attack"] == {"method": "apgd", "steps": 10, "restarts": 1, "norm": "l2", "seed": 0}
    assert [r["eps"] for r in data["rows"]] == sorted(EPSILONS)
    assert set(data["rows"][0]) == {"eps", "certified", "empirical", "certified_all", "empirical_all"}
    table = report.table().splitlines()
    assert table[0].startswith(f"triplets: {report.triplets} (decided: {report.decided})")
    assert "certified" in table[2]
    assert "empirical" in table[2]
    assert len(table) == 3 + len(EPSILONS)
    assert table[-1].split()[0] == "1.5000"
    assert table[-1].split()[1] == f"{100 * report.rows[-1].certified:.1f}%"


def test_without_the_all_images_attack_its_column_is_empty(trained, triplets):
    report = robustness_report(triplets, weights=trained[0], epsilons=(0.0, 0.3), steps=3, max_triplets=4)
    assert report.triplets == 4
    assert all(row.empirical_all is None for row in report.rows)
    assert report.to_dict()["rows"][1]["empirical_all"] is None
    assert report.table().splitlines()[-1].split()[-1] == "-"


@pytest.mark.parametrize(("normalization", "certificate"), [("plain", "norm_aware"), ("augment", "plain")])
def test_ordering_holds_for_other_certificate_rules(trained, triplets, normalization, certificate):
    report = robustness_report(
        triplets, weights=trained[0], epsilons=(0.0, 0.2, 0.6), steps=5, normalization=normalization,
        certificate=certificate, max_triplets=8,
    )  # fmt: skip
    assert (report.normalization, report.certificate) == (normalization, certificate)
    for row in report.rows:
        assert row.certified <= row.empirical <= report.natural_accuracy, row


def test_plot_is_a_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_report(report, tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_get_it(report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match="matplotlib is not installed") as info:
        plot_report(report, tmp_path / "r.png")
    assert str(info.value) == MATPLOTLIB_MISSING
    assert "lipsim-tm[plot]" in MATPLOTLIB_MISSING
    assert not (tmp_path / "r.png").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epsilons": (0.1, -0.1)}, ValueError, "epsilons must hold finite numbers >= 0"),
        ({"epsilons": ()}, TypeError, "epsilons must be a non-empty sequence"),
        ({"epsilons": 0.1}, TypeError, "epsilons must be a non-empty sequence"),
        ({"method": "fgsm"}, ValueError, "method must be one of"),
        ({"steps": 1}, ValueError, "steps must be an int >= 2, got 1"),
        ({"restarts": 0}, ValueError, "restarts must be an int >= 1"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
        ({"max_triplets": 0}, ValueError, "max_triplets must be an int >= 1"),
        ({"attack_all": 1}, TypeError, "attack_all must be a bool"),
        ({"workers": -1}, ValueError, "workers must be an int >= 0, got -1"),
        ({"progress": "bar"}, TypeError, "progress must be callable or None, got str"),
        ({"distance": "l1"}, ValueError, "distance"),
        ({"weights": "default"}, ValueError, "not available"),
    ],
)
def test_bad_arguments(triplets, kwargs, error, match, monkeypatch, tmp_path):
    monkeypatch.setattr("lipsim_tm.models.registry.PRETRAINED_DIR", tmp_path)  # no shipped default: "default" raises
    arguments = {"weights": "random:tiny32", **kwargs}
    with pytest.raises(error, match=match):
        robustness_report(triplets, **arguments)


def test_empty_dataset_is_refused():
    with pytest.raises(ValueError, match="dataset must hold at least one triplet"):
        robustness_report([], weights="random:tiny32")


def test_progress_counts_every_triplet_and_workers_change_nothing(trained, triplets):
    calls: list[int] = []
    options = {"weights": trained[0], "epsilons": (0.0, 0.2), "steps": 2, "batch_size": 3, "max_triplets": 7}
    serial = robustness_report(triplets, progress=calls.append, **options)
    assert calls == [3, 3, 1]
    assert robustness_report(triplets, workers=2, **options) == serial
