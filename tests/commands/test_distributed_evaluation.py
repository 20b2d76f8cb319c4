"""``torchrun --nproc_per_node=2 -m lipsim_tm.cli certify|robustness`` (2 real gloo processes) writes the report one
process writes: same counts, same values, same per-triplet records in the same order; shards of unequal size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataset_writers import write_bapps, write_nights
from lipsim_tm.data.sharding import ShardedBatches

WEIGHTS = "random:tiny32"
#: What may differ between two runs of the same evaluation: time, the process count, the output paths.
RUN_SPECIFIC = ("seconds", "processes", "plot")
# NIGHTS test split with votes >= 6: 5 triplets (one tie), read in batches of 2: rank 0 gets 3, rank 1 gets 2.
NIGHTS_ROWS = [{"votes": 6 + i % 3, "p": p, "split": "test", "is_imagenet": i % 2 == 0}
               for i, p in enumerate([0.9, 0.1, 0.5, 1.0, 0.3])]  # fmt: skip
# BAPPS val: subsets of 3 and 4 triplets, read in batches of 3 that straddle the subsets.
BAPPS_JUDGES = {"cnn": [0.1, 0.6, 1.0], "traditional": [0.0, 0.5, 0.8, 0.3]}


@pytest.fixture
def env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """One thread per process (the single run too), so both runs do the same float operations."""
    return subprocess_env


def lipsim(args: list[str], env: dict[str, str], processes: int) -> subprocess.CompletedProcess[str]:
    launcher = [sys.executable, "-m", "lipsim_tm.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                    "-m", "lipsim_tm.cli"]  # fmt: skip
    done = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def comparable(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in RUN_SPECIFIC}


@pytest.mark.parametrize("layout", ["nights", "bapps"])
def test_torchrun_certify_writes_the_single_process_report(tmp_path, env, layout):
    if layout == "nights":
        root = write_nights(tmp_path / "data", NIGHTS_ROWS, size=24)
        extra = ["--image-size", "24", "--batch-size", "2"]
    else:
        root = write_bapps(tmp_path / "data", BAPPS_JUDGES, size=32)
        extra = ["--image-size", "32", "--batch-size", "3"]
    args = ["certify", str(root), "--format", layout, "--weights", WEIGHTS, "--eps", "0", "0.02", "36/255",
            "--per-triplet", *extra]  # fmt: skip
    one = lipsim([*args, "--out", str(tmp_path / "one.json")], env, 1)
    two = lipsim([*args, "--out", str(tmp_path / "two.json"), "--workers", "1"], env, 2)
    single, double = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (single["processes"], double["processes"]) == (1, 2)
    assert comparable(double) == comparable(single)  # exact: each batch is the same computation
    records = double["per_triplet"]
    assert [r["index"] for r in records] == list(range(single["triplets"]))  # each triplet once, in order
    if layout == "bapps":
        assert [r["subset"] for r in records] == ["cnn"] * 3 + ["traditional"] * 4
        assert [r["target"] for r in records] == pytest.approx([v for vs in BAPPS_JUDGES.values() for v in vs])
    assert table(two.stdout) == table(one.stdout)  # rank 0 prints once, the same table
    assert "rank 0 of 2" in two.stderr


def table(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if not line.startswith(("wrote", "nights ", "bapps "))]


@pytest.mark.parametrize("layout", ["nights", "bapps"])
def test_torchrun_robustness_writes_the_single_process_report(tmp_path, env, layout):
    root = (
        write_nights(tmp_path / "data", NIGHTS_ROWS, size=24)
        if layout == "nights"
        else write_bapps(tmp_path / "data", BAPPS_JUDGES, size=32)
    )
    size = "24" if layout == "nights" else "32"
    args = ["robustness", layout, str(root), "--weights", WEIGHTS, "--image-size", size, "--eps", "0", "0.05",
            "0.5", "--steps", "3", "--batch-size", "2", "--attack-all", "--seed", "5"]  # fmt: skip
    one = lipsim([*args, "--out", str(tmp_path / "one")], env, 1)
    two = lipsim([*args, "--out", str(tmp_path / "two"), "--workers", "1"], env, 2)
    single, double = (json.loads((tmp_path / n / "robustness.json").read_text()) for n in ("one", "two"))
    assert double == single
    assert two.stdout.count("triplets:") == 1  # rank 0 alone prints
    assert one.stdout.splitlines()[:-2] == two.stdout.splitlines()[:-2]
    assert "rank 0 of 2" in two.stderr


@pytest.mark.parametrize(("count", "batch_size", "world_size"), [(5, 2, 2), (7, 3, 2), (3, 4, 3), (0, 2, 2), (9, 1, 4)])
def test_sharded_batches_deal_the_single_process_batches(count, batch_size, world_size):
    single = list(ShardedBatches(count, batch_size))
    shards = [list(ShardedBatches(count, batch_size, rank=r, world_size=world_size)) for r in range(world_size)]
    assert sorted(b for shard in shards for b in shard) == single  # the same batches, each exactly once
    for r, shard in enumerate(shards):
        assert shard == single[r::world_size]
        assert len(ShardedBatches(count, batch_size, rank=r, world_size=world_size)) == len(shard)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 4, "batch_size": 0}, "batch_size must be an int >= 1, got 0"),
        ({"count": -1, "batch_size": 2}, "count must be an int >= 0, got -1"),
        ({"count": 4, "batch_size": 2, "rank": 2, "world_size": 2}, r"rank must be an int in \[0, 1\], got 2"),
        ({"count": 4, "batch_size": 2, "world_size": 0}, "world_size must be an int >= 1, got 0"),
    ],
)
def test_sharded_batches_refuse_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShardedBatches(**kwargs)
