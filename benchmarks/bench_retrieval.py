"""Certified retrieval throughput: queries/s against gallery size, with and without the certified radii.

    python benchmarks/bench_retrieval.py [--sizes 1000 4000 16000] [--ks 1 5] [--queries 32] [--dim 1793]

Random unit-norm float32 embeddings stand in for LipSim ones (``dim`` 1793 = the ``small`` model's 1792
features + the ``augment`` coordinate); the backbone forward is not included (see bench_backbone.py).
Two paths per (gallery size, k): ``certified`` is ``EmbeddingGallery.search`` (float64 distances, top-k,
top-1 and top-k-set radii); ``topk_only`` is a plain float32 top-k of ``q @ g.T``, uncertified, for
reference. Writes benchmarks/results/retrieval.json and prints a markdown table.
"""

from __future__ import annotations

import argparse

import torch

from lipsim_tm.retrieval import EmbeddingGallery

from common import machine_description, median_seconds, write_json


def _unit(rows: int, dims: int, generator: torch.Generator) -> torch.Tensor:
    v = torch.randn(rows, dims, generator=generator)
    return v / v.norm(dim=1, keepdim=True)


def run(sizes: list[int], ks: list[int], queries: int, dim: int, repeats: int) -> dict[str, object]:
    generator = torch.Generator().manual_seed(0)
    q = _unit(queries, dim, generator)
    rows = []
    for size in sizes:
        gallery = EmbeddingGallery(_unit(size, dim, generator), lipschitz_bound=1.0)
        g = gallery.embeddings
        for k in ks:
            certified_s = median_seconds(lambda k=k, gallery=gallery: gallery.search(q, k), repeats=repeats)
            plain_s = median_seconds(lambda k=k, g=g: torch.topk(q @ g.T, k, dim=1), repeats=repeats)
            rows.append(
                {
                    "gallery": size,
                    "k": k,
                    "queries": queries,
                    "certified_queries_per_s": queries / certified_s,
                    "topk_only_queries_per_s": queries / plain_s,
                }
            )
            print(rows[-1], flush=True)
    return {"machine": machine_description(), "dim": dim, "repeats": repeats, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--dim", type=int, default=1793)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = run(args.sizes, args.ks, args.queries, args.dim, args.repeats)
    path = write_json("retrieval", result)
    print("\n| gallery | k | certified (queries/s) | top-k only, float32 (queries/s) |")
    print("|---|---|---|---|")
    for row in result["rows"]:
        print(
            f"| {row['gallery']} | {row['k']} | {row['certified_queries_per_s']:.0f}"
            f" | {row['topk_only_queries_per_s']:.0f} |"
        )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
