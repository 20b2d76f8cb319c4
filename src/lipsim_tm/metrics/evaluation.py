"""Feeding a dataset of 2AFC triplets to metrics: the one loop of the demo and the trainer's evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchmetrics import Metric


def evaluate_2afc(
    dataset: Dataset,
    metrics: Mapping[str, Metric],
    *,
    batch_size: int,
    workers: int = 0,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Feed the triplets ``(ref, img0, img1, p)`` of ``dataset`` (its first ``limit``) to every 2AFC metric;
    returns ``{name: metric.compute()}``.

    Each batch is loaded once and the same tensors go to each metric of ``metrics`` (e.g. one per certificate
    rule; wrapped in torchmetrics' ``FeatureShare`` they then share one forward pass), copied once to each
    metric's device. ``progress`` is called with each batch's triplet count.

    Raises:
        ValueError: the dataset (after ``limit``) holds no triplets.
    """
    if limit is not None and limit < len(dataset):
        dataset = Subset(dataset, range(limit))
    if len(dataset) == 0:
        raise ValueError("no triplets to evaluate: the dataset is empty (NIGHTS drops rows with votes < 6)")
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers):
        on_device: dict[Any, list[Tensor]] = {}  # one copy per device: the same tensors for every metric
        for metric in metrics.values():
            device = next(metric.backbone.parameters()).device
            metric.update(*on_device.setdefault(device, [t.to(device) for t in batch]))
        if progress is not None:
            progress(batch[0].shape[0])
    return {name: metric.compute() for name, metric in metrics.items()}
