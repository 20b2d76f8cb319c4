"""Deterministic sharding of an evaluation over processes: whole batches, each index exactly once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from lipsim_tm.checks import check_int


class ShardedBatches(Sampler[list[int]]):
    """The batches of ``range(count)`` that rank ``rank`` of ``world_size`` evaluates.

    The indices are cut into consecutive batches of ``batch_size`` exactly as one process would read them
    (the last batch may be short), and batch ``b`` goes to rank ``b % world_size``. So every index is read
    exactly once, shards may differ by a batch (or be empty), and each batch holds the same triplets as in a
    single-process run: per-batch computations (attack starts, float sums) give the same numbers.
    Use as ``DataLoader(dataset, batch_sampler=ShardedBatches(...))``; :meth:`of` deals batches made otherwise
    (e.g. images grouped by size) the same way.
    """

    def __init__(self, count: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        check_int("count", count, minimum=0)
        check_int("batch_size", batch_size, minimum=1)
        check_int("world_size", world_size, minimum=1)
        check_int("rank", rank, minimum=0, maximum=world_size - 1)
        self.rank, self.world_size = rank, world_size
        self.batches = [list(range(start, min(start + batch_size, count))) for start in range(0, count, batch_size)]

    @classmethod
    def of(cls, batches: Sequence[list[int]], *, rank: int = 0, world_size: int = 1) -> ShardedBatches:
        """Deal ``batches`` (lists of indices, in the order one process would read them) to the ranks in turn."""
        sharded = cls(0, 1, rank=rank, world_size=world_size)
        sharded.batches = [list(batch) for batch in batches]
        return sharded

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.batches[self.rank :: self.world_size])

    def size(self) -> int:
        """How many indices this rank reads."""
        return sum(len(batch) for batch in self)
