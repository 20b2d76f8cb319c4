"""Backbone demo: build LipSim ``small``, check its Lipschitz bound on real pairs, time the cache.

Run with ``python -m lipsim_tm.demo``. The weights are random (seeded): this shows the guarantees
and the speed of the architecture, not a perceptual model.
"""

from __future__ import annotations

import argparse
import time

import torch

from lipsim_tm.backbone import LipSimBackbone, count_parameters


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_demo(config: str = "small", repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Print and return: parameter count, worst observed ``||f(x)-f(y)|| / ||x-y||``, forward times (s)."""
    torch.manual_seed(seed)
    net = LipSimBackbone(config).eval()
    size = net.config.input_size
    print(
        f"LipSimBackbone({config!r}): {count_parameters(net):,} parameters, "
        f"input (N, 3, {size}, {size}) -> (N, {net.embedding_dim}), Lipschitz bound {net.lipschitz_bound}"
    )

    x = torch.rand(1, 3, size, size)
    worst_ratio = 0.0
    with torch.no_grad():
        fx = net(x)
        for radius in (1e-3, 1e-1, 1.0, 10.0):
            delta = torch.randn_like(x)
            delta *= radius / delta.norm()
            ratio = (net(x + delta) - fx).norm().item() / radius
            worst_ratio = max(worst_ratio, ratio)
            print(f"  ||delta|| = {radius:>6g}: ||f(x + delta) - f(x)|| / ||delta|| = {ratio:.4f} (<= 1 guaranteed)")

        cached = _median_seconds(lambda: net(x), repeats)
        net.train()  # training mode recomputes every rescaling, as the official code does on every call
        uncached = _median_seconds(lambda: net(x), repeats)
        net.eval()
    print(
        f"  batch-1 forward: {cached * 1e3:.0f} ms with cached rescaling, {uncached * 1e3:.0f} ms recomputing it "
        f"({uncached / cached:.1f}x)"
    )
    return {"parameters": count_parameters(net), "worst_ratio": worst_ratio, "cached_s": cached, "uncached_s": uncached}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small", help="named backbone configuration (default: small)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (default: 3)")
    args = parser.parse_args(argv)
    run_demo(args.config, args.repeats)


if __name__ == "__main__":
    main()
