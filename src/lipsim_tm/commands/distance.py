"""``lipsim distance A B``: the LipSim distance of two image files and its certified interval at each eps."""

from __future__ import annotations

import argparse
from typing import Any

from torch import Tensor

from lipsim_tm.commands._common import (
    Embedded,
    add_certificate_arguments,
    add_network_arguments,
    describe_eps,
    embed_images,
    load_network,
    parse_eps,
    read_image,
    write_json,
)


def add_parser(subparsers: Any) -> None:
    from lipsim_tm.functional.certificates import PAPER_EPSILONS
    from lipsim_tm.functional.two_afc import PERTURBED

    parser = subparsers.add_parser(
        "distance",
        help="LipSim distance of two image files, with its certified interval at each l2 budget",
        description=(
            "Print the LipSim distance between two image files (any size and mode Pillow reads; grey files stay"
            " one channel, others are read as RGB) and, for each budget eps, an interval that provably contains"
            " the distance after any perturbation of l2 norm <= eps of one of the images (--perturbed both: of"
            " each). eps is in the pixels of the files as read, values in [0, 1]; the resize to the network's"
            " input is accounted for exactly. Images of different sizes use the larger of their two bounds."
        ),
    )
    parser.add_argument("image_a", help="first image file")
    parser.add_argument("image_b", help="second image file")
    parser.add_argument(
        "--eps",
        type=parse_eps,
        nargs="+",
        default=list(PAPER_EPSILONS),
        help="l2 budgets, pixels in [0, 1]: numbers or fractions such as 36/255 (default: 36/255 72/255 108/255)",
    )
    parser.add_argument(
        "--perturbed", choices=PERTURBED, default="one", help="which images may move by eps (default: %(default)s)"
    )
    add_certificate_arguments(parser)
    add_network_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    parser.set_defaults(func=run)


def certified_bounds(
    a: Embedded, b: Embedded, eps: float, *, perturbed: str, distance: str, normalization: str, certificate: str
) -> tuple[Tensor, Tensor]:
    """Float64 ``(lower, upper)`` ``(N,)``: bounds on the distance of ``a``'s image(s) to each of ``b`` under ``eps``.

    ``a`` holds one image or as many as ``b``. Composes the library's certificate pieces exactly as
    :func:`~lipsim_tm.functional.certified_distance_interval` does, with ``L = max(a.lipschitz, b.lipschitz)``
    so that images of different sizes are covered (equal sizes: the same numbers).
    """
    from lipsim_tm.functional.certificates import distance_interval, distance_shift

    s = max(a.lipschitz, b.lipschitz) * eps
    shift = distance_shift(
        a.features, b.features, s, perturbed=perturbed, normalization=normalization, certificate=certificate
    )
    return distance_interval(a.phi, b.phi, shift=shift, distance=distance, normalization=normalization)


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.functional import distance_from_embeddings
    from lipsim_tm.functional.certificates import check_certificate

    check_certificate(args.certificate, args.normalization)
    image_a, image_b = read_image(args.image_a), read_image(args.image_b)
    backbone = load_network(args)
    a = embed_images(backbone, image_a, args.normalization, args.image_a)
    b = embed_images(backbone, image_b, args.normalization, args.image_b)
    options = {
        "perturbed": args.perturbed,
        "distance": args.distance,
        "normalization": args.normalization,
        "certificate": args.certificate,
    }
    value = float(distance_from_embeddings(a.phi, b.phi, args.distance)[0])
    intervals = []
    for eps in args.eps:
        lower, upper = certified_bounds(a, b, eps, **options)
        intervals.append({"eps": eps, "lower": float(lower[0]), "upper": float(upper[0])})
    if args.json:
        write_json(
            {
                "image_a": args.image_a,
                "image_b": args.image_b,
                "weights": str(args.weights),
                "distance": value,
                "distance_form": args.distance,
                "normalization": args.normalization,
                "certificate": args.certificate,
                "perturbed": args.perturbed,
                "lipschitz": {"image_a": a.lipschitz, "image_b": b.lipschitz},
                "intervals": intervals,
            },
            None,
        )
        return 0
    form = "1 - cos" if args.distance == "cosine" else "l2"
    print(f"LipSim distance ({form}): {value:.6f}")
    who = "one of the images" if args.perturbed == "one" else "each image"
    print(f"certified interval when {who} moves by l2 <= eps (pixels in [0, 1]; {args.certificate} rule):")
    for row in intervals:
        print(f"  eps {describe_eps(row['eps']):>15}: [{row['lower']:.6f}, {row['upper']:.6f}]")
    return 0
