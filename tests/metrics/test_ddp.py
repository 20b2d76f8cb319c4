"""Distributed sync with real processes: 2 ranks, gloo, ``file://`` init; never a single-process fallback.

One spawn runs every scenario (balanced batches, uneven batch counts, a rank with no data,
``dist_sync_on_step``) for both metrics; each rank saves what it saw and the tests compare it with
the single-process result on all data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import images, triplets

WORLD = 2
W = "random:tiny32"
N_BATCHES = 5


def _pair_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    sizes = [(32, 32), (24, 40), (32, 32), (16, 16), (40, 40)]
    return [(images(10 + i, n=2, size=s), images(20 + i, n=2, size=s)) for i, s in enumerate(sizes)]


def _triplet_batches() -> list[tuple[torch.Tensor, ...]]:
    return [triplets(30 + i, n=3, size=(32, 32) if i % 2 else (24, 40), noise=0.02) for i in range(N_BATCHES)]


METRICS: dict[str, Callable[[], object]] = {
    "mean": lambda: LipSimDistance(W),
    "sum": lambda: LipSimDistance(W, reduction="sum", certify_eps=0.01),
    "none": lambda: LipSimDistance(W, reduction="none"),
    "2afc": lambda: Certified2AFCAccuracy(W, epsilons=(0.0, 0.045, 0.092)),
    "2afc_per_sample": lambda: Certified2AFCAccuracy(W, per_sample=True),
}

#: For each scenario, the batch indices each rank updates with.
SCENARIOS: dict[str, tuple[list[int], list[int]]] = {
    "balanced": ([0, 1], [2, 3]),
    "uneven": ([0, 2, 4], [1, 3]),
    "empty_rank": ([0, 1, 2, 3, 4], []),
}


def _batches_for(metric: str) -> list[tuple[torch.Tensor, ...]]:
    return _triplet_batches() if metric.startswith("2afc") else _pair_batches()


def _to_plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: v.detach().cpu().clone() for k, v in value.items()}
    return value.detach().cpu().clone()


def _local_state(metric: object) -> dict[str, object]:
    return {k: [t.clone() for t in v] if isinstance(v, list) else v.clone() for k, v in metric.metric_state.items()}


def _same_state(a: dict, b: dict) -> bool:
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, list):
            if len(x) != len(y) or not all(torch.equal(p, q) for p, q in zip(x, y, strict=True)):
                return False
        elif not torch.equal(x, y):
            return False
    return True


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        if not (dist.is_initialized() and dist.get_world_size() == WORLD):
            raise RuntimeError("distributed group not initialised with 2 ranks")
        results: dict[str, object] = {}
        for scenario, split in SCENARIOS.items():
            for name, factory in METRICS.items():
                metric = factory()
                batches = _batches_for(name)
                for index in split[rank]:
                    metric.update(*batches[index])
                before = _local_state(metric)
                results[f"{scenario}/{name}"] = _to_plain(metric.compute())
                results[f"{scenario}/{name}/restored"] = _same_state(before, _local_state(metric))
        # dist_sync_on_step: forward's batch value is synced over both ranks' batches of that step
        step_metric = LipSimDistance(W, dist_sync_on_step=True)
        pairs = _pair_batches()
        results["on_step"] = [_to_plain(step_metric(*pairs[2 * step + rank])) for step in range(2)]
        results["on_step/final"] = _to_plain(step_metric.compute())
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # both ranks done before either tears down: torch 2.3's gloo/file-store teardown can hang
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(folder / "init"), str(folder)), nprocs=WORLD, join=True)
    files = [folder / f"rank{r}.pt" for r in range(WORLD)]
    missing = [str(f) for f in files if not f.exists()]
    assert not missing, f"ranks did not report: {missing}"
    return [torch.load(f, weights_only=False) for f in files]


def _single_process(name: str, indices: list[int]) -> object:
    metric = METRICS[name]()
    batches = _batches_for(name)
    for index in indices:
        metric.update(*batches[index])
    return _to_plain(metric.compute())


def _assert_same(got: object, expected: object, name: str) -> None:
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for key in expected:
            _assert_same(got[key], expected[key], f"{name}/{key}")
        return
    if got.ndim == 1:  # "cat" states come back in rank-major order, not dataset order
        got, expected = got.sort().values, expected.sort().values
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True, msg=name)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("name", list(METRICS))
def test_synced_result_equals_single_process_on_all_data(
    ranks: list[dict[str, object]], scenario: str, name: str
) -> None:
    split = SCENARIOS[scenario]
    expected = _single_process(name, sorted(split[0] + split[1]))
    for rank in range(WORLD):
        _assert_same(ranks[rank][f"{scenario}/{name}"], expected, f"rank {rank} {scenario}/{name}")
        assert ranks[rank][f"{scenario}/{name}/restored"], "local state was not restored after compute()"


def test_dist_sync_on_step(ranks: list[dict[str, object]]) -> None:
    for step in range(2):
        expected = _single_process("mean", [2 * step, 2 * step + 1])
        for rank in range(WORLD):
            torch.testing.assert_close(ranks[rank]["on_step"][step], expected, rtol=1e-5, atol=1e-6)
    expected = _single_process("mean", [0, 1, 2, 3])
    for rank in range(WORLD):
        torch.testing.assert_close(ranks[rank]["on_step/final"], expected, rtol=1e-5, atol=1e-6)


def test_results_differ_between_scenarios(ranks: list[dict[str, object]]) -> None:
    # guards against a vacuous comparison: different data gives different synced values
    assert not torch.allclose(ranks[0]["balanced/mean"], ranks[0]["uneven/mean"])
