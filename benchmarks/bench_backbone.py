"""Forward time of LipSim ``small``: cached rescaling vs recomputed, vs the literal official forward.

    python benchmarks/bench_backbone.py [--batches 1 16] [--repeats 5]

Three paths on the same input, run back to back in one process:
- official: tests/oracle.py, reference section 3 implemented literally (every rescaling, including
  the ~9.25 GMAC dense ``W W^T`` per layer, recomputed per call; conv then conv_transpose);
- uncached: ``LipSimBackbone`` in training mode (rescaling recomputed per call) under no_grad;
- cached: ``LipSimBackbone`` in eval mode (rescaling computed once and reused).
Writes benchmarks/results/backbone.json and prints a markdown table.
"""

from __future__ import annotations

import argparse

import torch

from lipsim_tm import LipSimBackbone

from common import machine_description, median_seconds, write_json
from oracle import build_official_model


def run(batches: list[int], repeats: int) -> dict[str, object]:
    torch.manual_seed(0)
    official = build_official_model(seed=0).eval()
    ours = LipSimBackbone("small")
    rows = []
    for batch in batches:
        x = torch.rand(batch, 3, 224, 224)
        with torch.no_grad():
            official_s = median_seconds(lambda x=x: official(x), repeats=repeats)
            ours.train()
            uncached_s = median_seconds(lambda x=x: ours(x), repeats=repeats)
            ours.eval()
            cached_s = median_seconds(lambda x=x: ours(x), repeats=repeats)
        rows.append(
            {
                "batch": batch,
                "official_s": official_s,
                "uncached_s": uncached_s,
                "cached_s": cached_s,
                "speedup_vs_official": official_s / cached_s,
                "speedup_vs_uncached": uncached_s / cached_s,
            }
        )
        print(rows[-1], flush=True)
    return {"machine": machine_description(), "repeats": repeats, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = run(args.batches, args.repeats)
    path = write_json("backbone", result)
    print("\n| batch | official (s) | uncached (s) | cached (s) | cached vs official | cached vs uncached |")
    print("|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(
            f"| {r['batch']} | {r['official_s']:.3f} | {r['uncached_s']:.3f} | {r['cached_s']:.3f} "
            f"| {r['speedup_vs_official']:.1f}x | {r['speedup_vs_uncached']:.1f}x |"
        )
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
