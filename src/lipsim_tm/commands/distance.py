"""``lipsim distance A B``: the LipSim distance of two image files and its certified interval at each eps."""

from __future__ import annotations

import argparse

from lipsim_tm.commands._options import add_certificate_arguments, add_eps_argument, add_network_arguments

DESCRIPTION = (
    "Print the LipSim distance between two image files (any size and mode Pillow reads; grey files stay"
    " one channel, others are read as RGB) and, for each budget eps, an interval that provably contains"
    " the distance after any perturbation of l2 norm <= eps of one of the images (--perturbed both: of"
    " each). eps is in the pixels of the files as read, values in [0, 1]; the resize to the network's"
    " input is accounted for exactly. Images of different sizes use the larger of their two bounds."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lipsim_tm.functional.certificates.intervals import PERTURBED

    parser.description = DESCRIPTION
    parser.add_argument("image_a", help="first image file")
    parser.add_argument("image_b", help="second image file")
    add_eps_argument(parser)
    parser.add_argument(
        "--perturbed", choices=PERTURBED, default="one", help="which images may move by eps (default: %(default)s)"
    )
    add_certificate_arguments(parser)
    add_network_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._report import describe_eps, write_json
    from lipsim_tm.commands._runtime import file_features, load_network
    from lipsim_tm.data.images import read_image
    from lipsim_tm.functional.certificates.policy import check_certificate
    from lipsim_tm.functional.distance import _lipsim_distance_update

    check_certificate(args.certificate, args.normalization)
    image_a, image_b = read_image(args.image_a), read_image(args.image_b)
    backbone = load_network(args)
    features_a, lipschitz_a = file_features(backbone, image_a, args.image_a)
    features_b, lipschitz_b = file_features(backbone, image_b, args.image_b)
    result = _lipsim_distance_update(
        features_a,
        features_b,
        distance=args.distance,
        normalization=args.normalization,
        certificate=args.certificate,
        lipschitz=(lipschitz_a, lipschitz_b),
        epsilons=args.eps,
        perturbed=args.perturbed,
    )
    value = float(result.distance[0])
    intervals = [
        {"eps": eps, "lower": float(result.lower[0, k]), "upper": float(result.upper[0, k])}
        for k, eps in enumerate(args.eps)
    ]
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
                "lipschitz": {"image_a": lipschitz_a, "image_b": lipschitz_b},
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
