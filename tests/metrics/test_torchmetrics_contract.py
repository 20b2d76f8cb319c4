"""What the metrics rely on from torchmetrics beyond its public API is present in the installed release (run in
every tox env), and ``merge_state`` keeps torchmetrics' semantics on every supported release."""

from __future__ import annotations

import pytest
import torch
import torchmetrics

from lipsim_tm.metrics import LipSimDistance
from lipsim_tm.metrics.atomic import missing_private_attributes
from metrics_helpers import images

W = "random:tiny32"


def test_the_installed_torchmetrics_has_every_private_attribute_the_atomic_update_restores() -> None:
    missing = missing_private_attributes()
    assert not missing, (
        f"torchmetrics {torchmetrics.__version__} lacks {missing}, which lipsim_tm/metrics/atomic.py saves and"
        " restores to make update/forward atomic (or calls for merge_state): adapt atomic.py to this release"
    )


def test_a_missing_attribute_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lipsim_tm.metrics.atomic.CONTEXT", ("_update_count", "_renamed_in_a_future_release"))
    assert missing_private_attributes() == ["_renamed_in_a_future_release"]


def test_merge_state_of_a_metric_and_of_a_dict_equals_one_metric_on_all_the_data() -> None:
    x, y = images(0, n=6), images(1, n=6)
    whole = LipSimDistance(W, reduction="sum")
    whole.update(x, y)
    first, second = LipSimDistance(W, reduction="sum"), LipSimDistance(W, reduction="sum")
    first.update(x[:2], y[:2])
    second.update(x[2:], y[2:])
    first.merge_state(second)
    torch.testing.assert_close(first.compute(), whole.compute())
    third = LipSimDistance(W, reduction="sum")
    third.update(x[:2], y[:2])
    third.merge_state({name: getattr(second, name) for name in second._defaults})
    torch.testing.assert_close(third.compute(), whole.compute())
    with pytest.raises(ValueError, match="same class and settings"):
        first.merge_state(LipSimDistance(W, reduction="mean"))
