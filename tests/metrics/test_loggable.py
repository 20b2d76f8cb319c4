"""``metric.loggable()``: each scalar of a dict-valued metric as a stateless ``Metric`` view of the one state."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from lipsim_tm.metrics.views import ResultView
from metrics_helpers import images, triplets

W = "random:tiny32"


def test_views_compute_the_entries_of_the_metric_and_share_its_state() -> None:
    metric = Certified2AFCAccuracy(W, epsilons=(0.01, 0.05))
    views = metric.loggable("val/")
    expected = ["val/score_2afc", "val/natural_accuracy", *(f"val/{k}" for k in (*metric.keys, *metric.keys_all))]
    assert list(views) == expected
    metric.update(*triplets(0, n=4))
    metric.update(*triplets(1, n=4))
    expected = metric.compute()
    for name, view in views.items():
        assert isinstance(view, ResultView)
        torch.testing.assert_close(view.compute(), expected[name.removeprefix("val/")])
    next(iter(views.values())).reset()  # Lightning resets each logged view at epoch end: the metric resets
    assert metric.total == 0
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert all(view.compute().isnan() for view in views.values())


def test_views_hold_no_state_and_add_no_state_dict_keys() -> None:
    parent = nn.Module()
    parent.metric = LipSimDistance(W, certify_eps=0.05)
    assert list(parent.state_dict()) == []
    assert list(parent.parameters()) == []
    assert set(parent.metric.loggable()) == {"distance", "half_width"}
    for view in parent.metric.loggable().values():
        assert view._defaults == {}


def test_a_view_is_refused_as_an_updater() -> None:
    view = LipSimDistance(W, certify_eps=0.05).loggable()["distance"]
    with pytest.raises(TypeError, match="update the metric itself"):
        view.update(images(1), images(2))
    with pytest.raises(TypeError, match="update the metric itself"):
        view(images(1), images(2))


def test_the_forward_cache_of_a_view_is_the_batch_entry() -> None:
    metric = LipSimDistance(W, certify_eps=0.05)
    views = metric.loggable()
    assert views["distance"]._forward_cache is None
    batch = metric(images(1), images(2))
    assert views["distance"]._forward_cache is batch["distance"]
    assert views["half_width"]._forward_cache is batch["half_width"]


def test_a_tensor_valued_metric_is_its_own_loggable_and_per_sample_values_are_refused() -> None:
    metric = LipSimDistance(W)
    assert metric.loggable("train/") == {"train/distance": metric}
    with pytest.raises(ValueError, match=r"reduction='none'.*cannot be logged"):
        LipSimDistance(W, reduction="none").loggable()
    with pytest.raises(ValueError, match=r"reduction='none'.*cannot be logged"):
        LipSimDistance(W, reduction="none", certify_eps=0.1).loggable()
    with pytest.raises(TypeError, match="prefix must be a str"):
        metric.loggable(3)
    per_sample = Certified2AFCAccuracy(W, epsilons=(0.01,), per_sample=True)
    assert set(per_sample.loggable()) == {"score_2afc", "natural_accuracy", *per_sample.keys, *per_sample.keys_all}


def test_copies_and_pickles_view_their_own_metric() -> None:
    metric = Certified2AFCAccuracy(W, epsilons=(0.01,))
    metric.update(*triplets(0, n=4))
    for clone in (copy.deepcopy(metric), pickle.loads(pickle.dumps(metric)), metric.clone()):
        for view in clone.loggable().values():
            assert view._source is clone
        clone.update(*triplets(1, n=4))
        torch.testing.assert_close(clone.loggable()["score_2afc"].compute(), clone.compute()["score_2afc"])
    assert metric.total == 4  # the original was not touched by its copies
