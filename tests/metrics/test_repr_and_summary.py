"""What a metric shows when printed: the weights' name and every setting that changes results; and a 2AFC summary
printed as a table whose numbers are the summary's."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm import Certified2AFCAccuracy, LipSimDistance
from lipsim_tm.models.backbone import LipSimBackbone

WEIGHTS = "random:tiny32"


def test_the_repr_names_the_weights_and_the_settings_that_change_results():
    metric = LipSimDistance(weights=WEIGHTS, normalization="ball", certificate="plain", certify_eps=0.1)
    assert repr(metric) == (
        "LipSimDistance(weights='random:tiny32', input_size=32, data_range=1.0, grayscale=False,"
        " interpolation='bicubic', antialias=True, normalization='ball', certificate='plain', distance='cosine',"
        " reduction='mean', certify_eps=0.1, perturbed='one')"
    )
    two_afc = Certified2AFCAccuracy(weights=LipSimBackbone("tiny32"), epsilons=[0.5], data_range=255.0)
    assert repr(two_afc).startswith("Certified2AFCAccuracy(weights=<LipSimBackbone>, input_size=32, data_range=255.0,")
    assert repr(two_afc).endswith("epsilons=(0.5,), per_sample=False)")


@pytest.mark.parametrize(
    "setting",
    [{"normalization": "ball"}, {"distance": "l2"}, {"reduction": "sum"}, {"grayscale": True},
     {"interpolation": "bilinear"}, {"antialias": False}, {"data_range": 255.0}, {"perturbed": "both"}],
)  # fmt: skip
def test_every_result_changing_setting_shows_and_blocks_merging(setting):
    base, changed = LipSimDistance(weights=WEIGHTS), LipSimDistance(weights=WEIGHTS, **setting)
    ((name, value),) = setting.items()
    assert f"{name}={value!r}" in repr(changed)
    assert repr(base) != repr(changed)
    with pytest.raises(ValueError, match="same class and settings"):
        base.merge_state(changed)


def test_the_summary_prints_as_a_table_of_its_numbers():
    metric = Certified2AFCAccuracy(weights=WEIGHTS, epsilons=[36 / 255, 0.5])
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(8, 3, 32, 32, generator=generator) for _ in range(3)]
    metric.update(*images, torch.tensor([1.0, 0.0, 0.8, 0.2, 0.5, 1.0, 0.0, 0.9]))
    summary = metric.summary()
    lines = str(summary).splitlines()
    assert lines[0].split()[:3] == ["subset", "triplets", "decided"]
    assert lines[1].split()[:3] == ["all", "8", "7"]  # p = 0.5 is not decided
    score = summary.score_2afc
    assert f"{score.value:.4f} [{score.low:.4f}, {score.high:.4f}]" in lines[1]
    assert str(summary.natural_accuracy) in lines[1]
    assert lines[4].startswith("0.1412 (36/255)")
    assert str(summary.rows[0].reference) in lines[4]
    assert str(summary.rows[0].all) in lines[4]
    assert lines[5].startswith("0.5 ")
    assert all(line == line.rstrip() for line in lines)
    empty = str(Certified2AFCAccuracy(weights=WEIGHTS, epsilons=[0.5]).summary()).splitlines()
    assert empty[1].split() == ["all", "0", "0", "n/a", "n/a"]
