"""Batches that are the same global batches on one process or many, and that resume mid-epoch.

Every rank uses ``DistributedSampler(shuffle=True, drop_last=True)`` (one replica in a
single-process run). It shuffles with a generator seeded by ``seed + epoch`` and gives rank ``r`` the
indices ``perm[r::W]``, so local batch ``b`` of size ``B`` on every rank together hold exactly
``perm[b*W*B : (b+1)*W*B]``: the single-process global batch ``b`` of size ``W*B``. Incomplete final
batches are dropped on every rank, so all ranks run the same number of steps.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler, Sampler

from lipsim_tm.checks import check_int


class ResumableBatchSampler(Sampler[list[int]]):
    """Local batches of ``batch_size`` indices from a ``DistributedSampler``, starting at batch ``start``."""

    def __init__(self, dataset: Dataset, *, batch_size: int, rank: int, world_size: int, seed: int) -> None:
        check_int("batch_size", batch_size, minimum=1)
        self.sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batch_size = batch_size
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Shuffle for ``epoch`` and skip its first ``start`` batches (resuming mid-epoch)."""
        self.sampler.set_epoch(epoch)
        self.start = start

    def __len__(self) -> int:
        """Batches per epoch (independent of ``start``)."""
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.sampler)
        for b in range(self.start, len(self)):
            yield indices[b * self.batch_size : (b + 1) * self.batch_size]
