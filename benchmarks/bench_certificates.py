"""Cost of the 2AFC core after the network: :func:`~lipsim_tm.functional.two_afc._two_afc_update`.

    python benchmarks/bench_certificates.py --threads 2

Times normalisation, both distances, the decision and both radii (reference-only and all-images) from given
features, for each certificate rule and normalisation, at several batch sizes and embedding widths (512: the
default model, 1792: ``small``). This is what ``Certified2AFCAccuracy.update`` does besides the forward pass and
a few reductions. Median of ``--repeats`` timed calls after a warm-up. Writes
``results/certificate-arithmetic.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch

from lipsim_tm.functional.two_afc import _two_afc_update

from common import apply_timing_options, machine_description, median_seconds, timing_parser, write_json

CASES: tuple[tuple[str, str], ...] = (("augment", "plain"), ("augment", "norm_aware"), ("plain", "norm_aware"))


def workload(batch: int, width: int, normalization: str, certificate: str) -> partial:
    """The 2AFC core on random features of norm ~1.5 (the default model's median), ready to call."""
    gen = torch.Generator().manual_seed(batch * 7 + width)
    features = torch.randn(3 * batch, width, generator=gen)
    features = 1.5 * features / features.norm(dim=1, keepdim=True) + 0.05 * torch.randn(3 * batch, width, generator=gen)
    return partial(
        _two_afc_update,
        *features.chunk(3),
        distance="cosine",
        normalization=normalization,
        certificate=certificate,
        lipschitz=2.0,
    )


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = timing_parser(__doc__.splitlines()[0], repeats=50)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--widths", type=int, nargs="+", default=[512, 1792])
    args = parser.parse_args(argv)
    apply_timing_options(args)
    rows = []
    for width in args.widths:
        for batch in args.batches:
            for normalization, certificate in CASES:
                seconds = median_seconds(workload(batch, width, normalization, certificate), repeats=args.repeats)
                rows.append(
                    {
                        "width": width,
                        "batch": batch,
                        "normalization": normalization,
                        "certificate": certificate,
                        "ms": seconds * 1e3,
                    }
                )
                print(rows[-1], flush=True)
    write_json("certificate-arithmetic", {"machine": machine_description(), "rows": rows}, args.out_dir)
    return rows


if __name__ == "__main__":
    main()
