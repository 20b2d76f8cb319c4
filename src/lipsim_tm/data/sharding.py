"""Deterministic sharding of an evaluation over processes: whole batches, each index exactly once."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Sampler

from lipsim_tm.checks import check_int


class ShardedBatches(Sampler[list[int]]):
    """The batches of ``range(count)`` that rank ``rank`` of ``world_size`` evaluates.

    The indices are cut into consecutive batches of ``batch_size`` exactly as one process would read them
    (the last batch may be short), and batch ``b`` goes to rank ``b % world_size``. So every index is read
    exactly once, shards may differ by a batch (or be empty), and each batch holds the same triplets as in a
    single-process run: per-batch computations (attack starts, float sums) give the same numbers.
    Use as ``DataLoader(dataset, batch_sampler=ShardedBatches(...))``.
    """

    def __init__(self, count: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        check_int("count", count, minimum=0)
        check_int("batch_size", batch_size, minimum=1)
        check_int("world_size", world_size, minimum=1)
        check_int("rank", rank, minimum=0, maximum=world_size - 1)
        self.count, self.batch_size, self.rank, self.world_size = count, batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        starts = range(self.rank * self.batch_size, self.count, self.world_size * self.batch_size)
        for start in starts:
            yield list(range(start, min(start + self.batch_size, self.count)))

    def __len__(self) -> int:
        batches = -(-self.count // self.batch_size)
        return len(range(self.rank, batches, self.world_size))

    def size(self) -> int:
        """How many indices this rank reads."""
        return sum(len(batch) for batch in self)
