"""LipSim against its peers, side by side in one process (issue 5): throughput, certificates, latency, memory, scaling.

    python benchmarks/bench_peers.py                      # the full suite (~20-30 min on 2 cores)
    python benchmarks/bench_peers.py --quick              # smoke test: tiny sizes, seconds
    python benchmarks/bench_peers.py --default-weights PATH_OR_NAME --threads 2

Sections (each number a median over ``--repeats`` timed calls after one warm-up call; within a workload the
models alternate call by call, so slow drifts of a shared machine hit all of them alike):

- ``pairs``: distance pairs/s at 224x224 (batch 1 and 16; float32, bfloat16 at batch 1): LipSim ``small``
  and the shipped default model through ``LipSimDistance.update`` (input checks and preprocessing
  included), the official-style forward (``tests/oracle.py``: rescalings recomputed per call, conv then
  conv_transpose) of ``small`` with the cosine distance, and the peers of ``peers.py`` (LPIPS alex/vgg,
  DISTS, DreamSim-ensemble equivalent; **random weights**: cost does not depend on weight values) under
  ``torch.inference_mode``. Also the transient peak RSS of one call (VmHWM reset through
  ``/proc/self/clear_refs``).
- ``two_afc``: triplets/s of ``Certified2AFCAccuracy.update`` against plain 2AFC scoring (the same input
  checks, one batched forward, decision and score, no certificates); the ratio is the certificate overhead.
- ``latency``: batch-1 forward of the backbones: cached rescaling (eval), uncached (train mode, no_grad)
  and, for ``small``, the official-style forward.
- ``memory``: RSS after 100 and after 1,000 more ``LipSimDistance.update`` calls (default reduction) on a
  ``tiny32`` network (small enough to make 1,000 updates quick; the states are the same for every network).
- ``scaling``: seconds per pair against batch size (224 px) and against the user images' resolution
  (LipSim resizes to its 224 px input; LPIPS-alex runs at the native resolution).
- ``compile``: ``LipSimDistance.update`` eager against ``compile=True`` (torch.compile of the network's
  cached forward): the first call's seconds (compilation included), the steady-state speedup and the
  largest feature difference. Recorded as unavailable where inductor finds no C++ compiler.
- ``roofline``: one cached SLL convolution layer of ``small`` (batch 1 and 16) against the memory-bandwidth
  roofline: the bytes the layer must move (read its input, write its output: ``2 C`` values per pixel) and
  the bytes the implementation moves (``5 C + 4 I``: conv, in-place ReLU, conv, in-place residual add),
  divided by the time, as fractions of the measured copy bandwidth (``dst.copy_(src)``), plus GMAC/s.

``--device cuda`` runs every section on the GPU (timings synchronise; peak memory is CUDA allocated memory).

The default model: ``--default-weights`` (a path or registered name, see ``lipsim_tm.models.weights``); without it,
or when it cannot be loaded, its architecture (``DEFAULT_ARCHITECTURE``) with random weights, recorded in
the JSON. ``--quick`` replaces every network by a tiny one of the same code (32 px) and runs 1 repeat.
Writes ``benchmarks/results/peers[-quick].json`` (or ``--out-dir``) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipsim_tm import LipSimBackbone, LipSimConfig
from lipsim_tm.functional.certificates.margins import triplet_margins
from lipsim_tm.functional.normalization import apply_normalization
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from lipsim_tm.models.weights import resolve_backbone
from peers import PEERS, build_peer

from common import BENCHMARKS_DIR, machine_description, write_json
from oracle import build_official_model, lipsim_config_fields

#: The shipped default model's architecture (``small`` with these overrides).
DEFAULT_ARCHITECTURE: dict[str, object] = {
    "unshuffle": 4,
    "channels": 48,
    "conv_inner": 48,
    "pool_size": 2,
    "conv_stages": (3, 2, 2),
    "dense_depth": 2,
    "dense_inner": 512,
    "out_features": 512,
    "input_shift": 0.5,
}
#: Official-network sizes of the quick mode's stand-in for ``small`` (same code, 32 px).
QUICK_OFFICIAL_SIZES: dict[str, int] = {
    "depth": 2,
    "num_channels": 16,
    "conv_size": 4,
    "input_size": 32,
    "depth_linear": 2,
    "n_features": 64,
    "out_features": 64,
}
SECTIONS = ("pairs", "two_afc", "latency", "memory", "scaling", "compile", "roofline")


@dataclass(frozen=True)
class Settings:
    size: int
    batches: tuple[int, ...]
    bf16_batches: tuple[int, ...]
    repeats: int
    memory_updates: int
    scaling_batches: tuple[int, ...]
    scaling_sizes: tuple[int, ...]
    compile_batches: tuple[int, ...]
    tiny: bool
    device: str = "cpu"


FULL = Settings(224, (1, 16), (1,), 5, 1000, (1, 2, 4, 8, 16), (64, 128, 224, 448), (1, 16), False)
QUICK = Settings(32, (1, 2), (1,), 1, 20, (1, 2), (32, 48), (1,), True)


def synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_alternating(fns: dict[str, Callable[[], object]], repeats: int, device: str = "cpu") -> dict[str, float]:
    """Median seconds per call of each function, calls alternating between them, after one warm-up each."""
    for fn in fns.values():
        fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mib() -> float:
    """Resident set size of this process in MiB."""
    return _proc_status_kib("VmRSS") / 1024


def transient_peak_mib(fn: Callable[[], object], device: str = "cpu") -> float | None:
    """Peak memory during one ``fn()`` minus the memory before it (MiB): RSS on the CPU, allocated memory on CUDA.

    None where the CPU peak cannot be reset.
    """
    gc.collect()
    if torch.device(device).type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    before = _proc_status_kib("VmRSS")
    fn()
    return (_proc_status_kib("VmHWM") - before) / 1024


# ---------------------------------------------------------------------------------------------- networks


def lipsim_backbones(settings: Settings, default_weights: str | None) -> tuple[dict[str, LipSimBackbone], dict]:
    """``{"lipsim-small", "lipsim-default"}`` frozen backbones and a note on where the default came from."""
    torch.manual_seed(0)
    if settings.tiny:
        small = LipSimBackbone(LipSimConfig(**lipsim_config_fields(**QUICK_OFFICIAL_SIZES)))
    else:
        small = LipSimBackbone("small")
    architecture = {**DEFAULT_ARCHITECTURE, "input_size": settings.size}
    if settings.tiny:
        architecture.update(dense_inner=32, out_features=32)
    note: dict[str, object] = {"architecture": architecture}
    default = None
    if default_weights is not None and not settings.tiny:
        try:
            default = resolve_backbone(default_weights)
            note["weights"] = default_weights
        except (ValueError, OSError) as error:  # absent or unreadable: benchmark the architecture instead
            note["load_error"] = str(error)
    if default is None:
        default = LipSimBackbone("small", **architecture)
        note["weights"] = "random (same architecture; cost does not depend on the weight values)"
    networks = (("lipsim-small", small), ("lipsim-default", default))
    return {name: net.requires_grad_(False).eval().to(settings.device) for name, net in networks}, note


def official_backbone(settings: Settings) -> nn.Module:
    sizes = QUICK_OFFICIAL_SIZES if settings.tiny else {}
    return build_official_model(seed=0, **sizes).requires_grad_(False).eval().to(settings.device)


def official_pairs(official: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """Official-style distance: one batched forward of the literal network, then ``1 - cos``."""

    def distance(x: Tensor, y: Tensor) -> Tensor:
        with torch.inference_mode():
            a, b = official(torch.cat([x, y])).chunk(2)
            return 1 - F.cosine_similarity(a, b, dim=1)

    return distance


def lipsim_pairs(backbone: LipSimBackbone) -> Callable[[Tensor, Tensor], object]:
    metric = LipSimDistance(backbone).to(next(backbone.parameters()).device)
    return metric.update


def peer_pairs(peer: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    def distance(x: Tensor, y: Tensor) -> Tensor:
        with torch.inference_mode():
            return peer(x, y)

    return distance


def images(n: int, size: int, dtype: torch.dtype = torch.float32, seed: int = 0, device: str = "cpu") -> Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(device, dtype)


# ---------------------------------------------------------------------------------------------- sections


def bench_pairs(settings: Settings, lipsim: dict[str, LipSimBackbone], official: nn.Module) -> list[dict]:
    peers = {name: build_peer(name, settings.size, tiny=settings.tiny).to(settings.device) for name in PEERS}
    rows = []
    workloads = [(b, torch.float32) for b in settings.batches] + [(b, torch.bfloat16) for b in settings.bf16_batches]
    for batch, dtype in workloads:
        x, y = (images(batch, settings.size, dtype, seed, settings.device) for seed in (1, 2))
        fns: dict[str, Callable[[], object]] = {}
        for name, backbone in lipsim.items():
            net = backbone if dtype == torch.float32 else copy.deepcopy(backbone).to(dtype)
            fns[name] = partial(lipsim_pairs(net), x, y)
        if dtype == torch.float32:
            fns["official-style-small"] = partial(official_pairs(official), x, y)
        for name, peer in peers.items():
            if dtype == torch.float32:
                fns[name] = partial(peer_pairs(peer), x, y)
            elif not settings.tiny:  # reduced-precision peers are slow on CPUs without bf16 units: not in smoke tests
                fns[name] = partial(peer_pairs(copy.deepcopy(peer).to(dtype)), x, y)
        seconds = timed_alternating(fns, settings.repeats, settings.device)
        for name, fn in fns.items():
            rows.append(
                {
                    "model": name,
                    "batch": batch,
                    "dtype": str(dtype).removeprefix("torch."),
                    "seconds": seconds[name],
                    "pairs_per_s": batch / seconds[name],
                    "peak_extra_rss_mib": transient_peak_mib(fn, settings.device),
                }
            )
            print(rows[-1], flush=True)
    return rows


def plain_2afc(metric: Certified2AFCAccuracy) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    """2AFC scoring without certificates: the metric's input checks, one batched forward, decision, score."""
    state = {"score": torch.zeros((), dtype=torch.float64, device=metric.device)}

    def update(ref: Tensor, img0: Tensor, img1: Tensor, target: Tensor) -> Tensor:
        metric._check_images(ref=ref, img0=img0, img1=img1)
        with torch.no_grad():
            phi_r, phi_0, phi_1 = apply_normalization(metric._features(ref, img0, img1), metric.normalization).chunk(3)
        margins = triplet_margins(phi_r, phi_0, phi_1)
        prefers, tie = margins.prefers_img1, margins.tie
        p = target.double()
        state["score"] = state["score"] + torch.where(tie, 0.5, torch.where(prefers, p, 1 - p)).sum()
        return state["score"]

    return update


def adaptive_repeats(fn: Callable[[], object], settings: Settings, budget_s: float = 4.0, cap: int = 101) -> int:
    """``settings.repeats``, raised (up to ``cap``) so that cheap calls are timed for about ``budget_s`` seconds.

    A ratio of two ~30 ms calls needs many repeats to resolve a few percent on a shared machine.
    """
    start = time.perf_counter()
    fn()
    synchronize(settings.device)
    once = time.perf_counter() - start
    return max(settings.repeats, min(cap, int(budget_s / max(once, 1e-6))))


def bench_two_afc(settings: Settings, lipsim: dict[str, LipSimBackbone]) -> list[dict]:
    rows = []
    for batch in settings.batches:
        ref, img0, img1 = (images(batch, settings.size, seed=s, device=settings.device) for s in (3, 4, 5))
        target = torch.rand(batch, generator=torch.Generator().manual_seed(6)).to(settings.device)
        for name, backbone in lipsim.items():
            certified = Certified2AFCAccuracy(backbone).to(settings.device)
            plain = plain_2afc(Certified2AFCAccuracy(backbone).to(settings.device))
            fns = {
                "certified": partial(certified.update, ref, img0, img1, target),
                "plain": partial(plain, ref, img0, img1, target),
            }
            repeats = adaptive_repeats(fns["plain"], settings)
            seconds = timed_alternating(fns, repeats, settings.device)
            cert, plain_s = seconds["certified"], seconds["plain"]
            rows.append(
                {
                    "model": name,
                    "batch": batch,
                    "repeats": repeats,
                    "plain_s": plain_s,
                    "certified_s": cert,
                    "plain_triplets_per_s": batch / plain_s,
                    "certified_triplets_per_s": batch / cert,
                    "certificate_overhead": cert / plain_s,
                }
            )
            print(rows[-1], flush=True)
    return rows


def bench_latency(settings: Settings, lipsim: dict[str, LipSimBackbone], official: nn.Module) -> list[dict]:
    x = images(1, settings.size, device=settings.device)
    fns: dict[str, Callable[[], object]] = {"official-style-small": lambda: official(x)}

    def forward(backbone: LipSimBackbone, training: bool) -> Callable[[], object]:
        def run() -> object:
            backbone.train(training)
            try:
                with torch.no_grad():
                    return backbone(x)
            finally:
                backbone.eval()

        return run

    for name, backbone in lipsim.items():
        fns[f"{name}/uncached"] = forward(backbone, True)
        fns[f"{name}/cached"] = forward(backbone, False)
    with torch.no_grad():
        seconds = timed_alternating(fns, settings.repeats, settings.device)
    rows = [{"path": name, "seconds": s} for name, s in seconds.items()]
    official_s = seconds["official-style-small"]
    for row in rows:
        row["speedup_vs_official_small"] = official_s / row["seconds"]
        print(row, flush=True)
    return rows


def bench_memory(settings: Settings) -> dict:
    metric = LipSimDistance("random:tiny32").to(settings.device)
    x, y = images(4, 32, seed=7, device=settings.device), images(4, 32, seed=8, device=settings.device)
    on_cuda = torch.device(settings.device).type == "cuda"
    for _ in range(max(1, settings.memory_updates // 10)):  # warm-up: allocator pools, lazy caches
        metric.update(x, y)
    gc.collect()
    synchronize(settings.device)
    before, allocated_before = rss_mib(), torch.cuda.memory_allocated(settings.device) if on_cuda else None
    for _ in range(settings.memory_updates):
        metric.update(x, y)
    gc.collect()
    synchronize(settings.device)
    after, allocated_after = rss_mib(), torch.cuda.memory_allocated(settings.device) if on_cuda else None
    result = {
        "cuda_allocated_before_mib": None if allocated_before is None else allocated_before / 2**20,
        "cuda_allocated_after_mib": None if allocated_after is None else allocated_after / 2**20,
        "network": "tiny32 (random weights)",
        "batch": 4,
        "updates": settings.memory_updates,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "growth_percent": 100 * (after - before) / before,
        "process_peak_rss_mib": _proc_status_kib("VmHWM") / 1024,
    }
    print(result, flush=True)
    return result


def bench_scaling(settings: Settings, lipsim: dict[str, LipSimBackbone]) -> dict[str, list[dict]]:
    updates = {name: lipsim_pairs(backbone) for name, backbone in lipsim.items()}
    by_batch = []
    for batch in settings.scaling_batches:
        x, y = (images(batch, settings.size, seed=seed, device=settings.device) for seed in (9, 10))
        fns = {name: partial(f, x, y) for name, f in updates.items()}
        seconds = timed_alternating(fns, settings.repeats, settings.device)
        by_batch += [{"model": n, "batch": batch, "seconds_per_pair": s / batch} for n, s in seconds.items()]
        print(by_batch[-len(seconds) :], flush=True)
    by_size = []
    batch = settings.scaling_batches[0]
    alex = peer_pairs(build_peer("lpips-alex").to(settings.device))
    for size in settings.scaling_sizes:
        x, y = (images(batch, size, seed=seed, device=settings.device) for seed in (11, 12))
        fns = {name: partial(f, x, y) for name, f in updates.items()}
        if size >= 32:  # LPIPS' AlexNet taps (two strided poolings) need at least 31 px
            fns["lpips-alex (native resolution)"] = partial(alex, x, y)
        seconds = timed_alternating(fns, settings.repeats, settings.device)
        by_size += [{"model": n, "resolution": size, "seconds_per_pair": s / batch} for n, s in seconds.items()]
        print(by_size[-len(seconds) :], flush=True)
    return {"by_batch": by_batch, "by_resolution": by_size}


def bench_compile(settings: Settings, lipsim: dict[str, LipSimBackbone]) -> list[dict]:
    rows: list[dict] = []
    for batch in settings.compile_batches:
        x, y = (images(batch, settings.size, seed=seed, device=settings.device) for seed in (13, 14))
        for name, backbone in lipsim.items():
            eager = LipSimDistance(backbone).to(settings.device)
            try:
                compiled = LipSimDistance(backbone, compile=True).to(settings.device)
            except RuntimeError as error:  # no C++ compiler for inductor
                rows.append({"model": name, "batch": batch, "error": str(error)})
                print(rows[-1], flush=True)
                continue
            start = time.perf_counter()
            compiled.update(x, y)
            synchronize(settings.device)
            first = time.perf_counter() - start
            fns = {"eager": partial(eager.update, x, y), "compiled": partial(compiled.update, x, y)}
            seconds = timed_alternating(fns, settings.repeats, settings.device)
            with torch.no_grad():
                both = torch.cat([x, y])
                difference = (compiled._features(both) - eager._features(both)).abs().max().item()
            rows.append(
                {
                    "model": name,
                    "batch": batch,
                    "first_call_s": first,
                    "eager_s": seconds["eager"],
                    "compiled_s": seconds["compiled"],
                    "speedup": seconds["eager"] / seconds["compiled"],
                    "max_feature_difference": difference,
                }
            )
            print(rows[-1], flush=True)
    return rows


def sll_conv_bytes(config: LipSimConfig, batch: int, element_bytes: int = 4) -> dict[str, int]:
    """Bytes one SLL convolution layer of the first stage moves: ``minimal`` and ``as_implemented``.

    ``minimal``: read the input and write the output, ``2 C`` values per pixel. ``as_implemented``:
    conv reads ``C`` and writes ``I``, the in-place ReLU reads and writes ``I``, the second conv reads
    ``I`` and writes ``C``, the in-place residual add reads ``2 C`` and writes ``C``: ``5 C + 4 I``.
    Weights (``2 * 9 C I`` values) are negligible and left out.
    """
    side = config.input_size // config.unshuffle
    values = batch * side * side * element_bytes
    c, i = config.channels, config.conv_inner
    return {"minimal": 2 * c * values, "as_implemented": (5 * c + 4 * i) * values}


def copy_bandwidth(device: str, repeats: int, mib: int) -> float:
    """Bytes per second of ``dst.copy_(src)`` on ``mib`` MiB (read plus write counted)."""
    src = torch.rand(mib * 2**18, device=device)
    dst = torch.empty_like(src)
    seconds = timed_alternating({"copy": partial(dst.copy_, src)}, repeats, device)["copy"]
    return 2 * src.numel() * src.element_size() / seconds


def bench_roofline(settings: Settings, lipsim: dict[str, LipSimBackbone]) -> list[dict]:
    backbone = lipsim["lipsim-small"]
    config, layer = backbone.config, backbone.convs[0]
    bandwidth = copy_bandwidth(settings.device, settings.repeats, 16 if settings.tiny else 1024)
    side = config.input_size // config.unshuffle
    rows = []
    for batch in settings.batches:
        x = torch.rand(batch, config.channels, side, side, generator=torch.Generator().manual_seed(15))
        x = x.to(settings.device).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            seconds = timed_alternating({"layer": partial(layer, x)}, settings.repeats, settings.device)["layer"]
        moved = sll_conv_bytes(config, batch)
        macs = 2 * batch * side * side * config.channels * config.conv_inner * 9
        rows.append(
            {
                "batch": batch,
                "seconds": seconds,
                "copy_bandwidth_gb_s": bandwidth / 1e9,
                "minimal_bytes": moved["minimal"],
                "as_implemented_bytes": moved["as_implemented"],
                "fraction_minimal": moved["minimal"] / seconds / bandwidth,
                "fraction_as_implemented": moved["as_implemented"] / seconds / bandwidth,
                "gmacs": macs / seconds / 1e9,
            }
        )
        print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------------------------------- report


def ratios(pairs: list[dict], two_afc: list[dict], latency: list[dict]) -> dict[str, dict]:
    """The issue's targets as measured ratios, each with its threshold and met/missed."""

    def rate(model: str, batch: int) -> float | None:
        hits = [
            r["pairs_per_s"] for r in pairs if r["model"] == model and r["batch"] == batch and r["dtype"] == "float32"
        ]
        return hits[0] if hits else None

    targets: dict[str, dict] = {}
    for batch in sorted({r["batch"] for r in pairs}):
        for label, (num, den, need) in {
            "small vs official-style": ("lipsim-small", "official-style-small", 3.0),
            "small vs lpips-vgg": ("lipsim-small", "lpips-vgg", 1.0),
            "small vs dreamsim-ensemble": ("lipsim-small", "dreamsim-ensemble", 2.0),
            "default vs lpips-alex": ("lipsim-default", "lpips-alex", 0.25),
        }.items():
            a, b = rate(num, batch), rate(den, batch)
            if a is not None and b is not None:
                targets[f"{label} @ batch {batch}"] = {"ratio": a / b, "target": need, "met": a / b >= need}
    for row in two_afc:
        targets[f"certificate overhead {row['model']} @ batch {row['batch']}"] = {
            "ratio": row["certificate_overhead"],
            "target": 1.05,
            "met": row["certificate_overhead"] <= 1.05,
        }
    for row in latency:
        if row["path"] == "lipsim-small/cached":
            targets["batch-1 small cached vs official-style"] = {
                "ratio": row["speedup_vs_official_small"],
                "target": 10.0,
                "met": row["speedup_vs_official_small"] >= 10.0,
            }
    return targets


def markdown(result: dict) -> str:
    lines = ["### Distance pairs/s", "", "| model | batch | dtype | pairs/s | vs lipsim-small | extra peak RSS (MiB) |"]
    lines.append("|---|---|---|---|---|---|")
    pairs = result.get("pairs", [])
    for row in pairs:
        small = [
            r
            for r in pairs
            if r["model"] == "lipsim-small" and r["batch"] == row["batch"] and r["dtype"] == row["dtype"]
        ]
        rel = f"{row['pairs_per_s'] / small[0]['pairs_per_s']:.2f}x" if small else "-"
        peak = row["peak_extra_rss_mib"]
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['dtype']} | {row['pairs_per_s']:.3g} | {rel} | "
            f"{'-' if peak is None else f'{peak:.0f}'} |"
        )
    if result.get("two_afc"):
        lines += [
            "",
            "### 2AFC triplets/s",
            "",
            "| model | batch | plain | certified | overhead |",
            "|---|---|---|---|---|",
        ]
        for row in result["two_afc"]:
            lines.append(
                f"| {row['model']} | {row['batch']} | {row['plain_triplets_per_s']:.3g} | "
                f"{row['certified_triplets_per_s']:.3g} | {row['certificate_overhead']:.3f}x |"
            )
    if result.get("latency"):
        lines += ["", "### Batch-1 forward latency", "", "| path | seconds | speedup vs official-style small |"]
        lines.append("|---|---|---|")
        lines += [
            f"| {r['path']} | {r['seconds']:.4f} | {r['speedup_vs_official_small']:.2f}x |" for r in result["latency"]
        ]
    if result.get("memory"):
        m = result["memory"]
        lines += [
            "",
            f"### Memory: RSS {m['rss_before_mib']:.1f} -> {m['rss_after_mib']:.1f} MiB over {m['updates']} updates "
            f"({m['growth_percent']:+.2f}%), process peak {m['process_peak_rss_mib']:.0f} MiB",
        ]
    if result.get("scaling"):
        lines += [
            "",
            "### Scaling (seconds per pair)",
            "",
            "| model | batch | resolution | s/pair |",
            "|---|---|---|---|",
        ]
        for r in result["scaling"]["by_batch"]:
            size = result["settings"]["size"]
            lines.append(f"| {r['model']} | {r['batch']} | {size} | {r['seconds_per_pair']:.4g} |")
        for r in result["scaling"]["by_resolution"]:
            batch = result["settings"]["scaling_batches"][0]
            lines.append(f"| {r['model']} | {batch} | {r['resolution']} | {r['seconds_per_pair']:.4g} |")
    if result.get("compile"):
        lines += [
            "",
            "### torch.compile (LipSimDistance.update, compile=True vs eager)",
            "",
            "| model | batch | first call (s) | eager (s) | compiled (s) | speedup | max feature difference |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in result["compile"]:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['batch']} | unavailable: {r['error']} | | | | |")
                continue
            lines.append(
                f"| {r['model']} | {r['batch']} | {r['first_call_s']:.1f} | {r['eager_s']:.4f} | "
                f"{r['compiled_s']:.4f} | {r['speedup']:.2f}x | {r['max_feature_difference']:.2g} |"
            )
    if result.get("roofline"):
        lines += [
            "",
            "### Roofline: one SLL convolution layer of small",
            "",
            "| batch | ms | copy bandwidth (GB/s) | must-move bytes / time | implemented bytes / time | GMAC/s |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["roofline"]:
            lines.append(
                f"| {r['batch']} | {r['seconds'] * 1e3:.2f} | {r['copy_bandwidth_gb_s']:.1f} | "
                f"{r['fraction_minimal']:.1%} | {r['fraction_as_implemented']:.1%} | {r['gmacs']:.1f} |"
            )
    if result.get("targets"):
        lines += ["", "### Targets", "", "| target | ratio | needed | met |", "|---|---|---|---|"]
        for name, t in result["targets"].items():
            need = f"<= {t['target']}" if "overhead" in name else f">= {t['target']}"
            lines.append(f"| {name} | {t['ratio']:.2f} | {need} | {'met' if t['met'] else 'MISSED'} |")
    return "\n".join(lines)


def run(settings: Settings, sections: Sequence[str], default_weights: str | None) -> dict:
    lipsim, default_note = lipsim_backbones(settings, default_weights)
    official = official_backbone(settings)
    result: dict = {
        "machine": machine_description(),
        "settings": settings.__dict__,
        "default_model": default_note,
        "peers_weights": "random (pure-torch builds of the exact architectures, benchmarks/peers.py)",
    }
    if "pairs" in sections:
        result["pairs"] = bench_pairs(settings, lipsim, official)
    if "two_afc" in sections:
        result["two_afc"] = bench_two_afc(settings, lipsim)
    if "latency" in sections:
        result["latency"] = bench_latency(settings, lipsim, official)
    if "memory" in sections:
        result["memory"] = bench_memory(settings)
    if "scaling" in sections:
        result["scaling"] = bench_scaling(settings, lipsim)
    if "compile" in sections:
        result["compile"] = bench_compile(settings, lipsim)
    if "roofline" in sections:
        result["roofline"] = bench_roofline(settings, lipsim)
    result["targets"] = ratios(result.get("pairs", []), result.get("two_afc", []), result.get("latency", []))
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny networks at 32 px, 1 repeat (smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per number (default 5; quick 1)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--default-weights", default=None, help="path or registered name of the default model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out-dir", type=Path, default=BENCHMARKS_DIR / "results")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (every section runs there)")
    parser.add_argument(
        "--no-bf16", action="store_true", help="skip the bfloat16 workloads (very slow on CPUs without bf16 units)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    if args.repeats is not None:
        if args.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
        settings = Settings(**{**settings.__dict__, "repeats": args.repeats})
    if args.no_bf16:
        settings = Settings(**{**settings.__dict__, "bf16_batches": ()})
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device} needs CUDA, which this machine does not have")
    settings = Settings(**{**settings.__dict__, "device": args.device})
    result = run(settings, args.sections, args.default_weights)
    name = "peers-quick" if args.quick else "peers"
    path = write_json(name, result, args.out_dir)
    table = markdown(result)
    (args.out_dir / f"{name}.md").write_text(table + "\n")
    print("\n" + table + f"\n\nwritten {path}")
    return result


if __name__ == "__main__":
    main()
