"""``lipsim 2afc REF X0 X1``: which of two image files is closer to a reference, with the decision's certified radii."""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from lipsim_tm.commands._common import (
    Embedded,
    add_certificate_arguments,
    add_network_arguments,
    embed_images,
    load_network,
    read_image,
    write_json,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "2afc",
        help="which of two images is closer to a reference, and the l2 radius within which that cannot change",
        description=(
            "Decide which of X0 and X1 is closer to REF under LipSim (two-alternative forced choice) and print"
            " both distances and two certified l2 radii (pixels of the files as read, values in [0, 1]): no"
            " perturbation of REF of smaller norm changes the decision, and none of each of the three images"
            " of smaller norm does. Files may differ in size and mode; the resize to the network's input is"
            " accounted for exactly."
        ),
    )
    parser.add_argument("ref", help="reference image file")
    parser.add_argument("x0", help="first candidate image file")
    parser.add_argument("x1", help="second candidate image file")
    add_certificate_arguments(parser)
    add_network_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    parser.set_defaults(func=run)


class Decision(NamedTuple):
    """One 2AFC decision: ``closer`` is ``"x0"``, ``"x1"`` or ``"tie"``; radii in user pixels (float)."""

    closer: str
    d0: float
    d1: float
    radius_reference: float
    radius_all: float


def decide(
    ref: Embedded, x0: Embedded, x1: Embedded, *, distance: str, normalization: str, certificate: str
) -> Decision:
    """The decision and radii from the library's certificate functions (as :func:`~lipsim_tm.functional.two_afc`).

    The reference radius uses the reference's Lipschitz bound ``L_ref`` (only it moves); the all-images
    radius uses the largest bound of the three, so files of different sizes are covered. Equal sizes
    give exactly the numbers of :func:`~lipsim_tm.functional.two_afc`.
    """
    from lipsim_tm.functional import distance_from_embeddings
    from lipsim_tm.functional.certificates import certify_triplets

    phis = (ref.phi, x0.phi, x1.phi)
    features = (ref.features, x0.features, x1.features)

    def certify(lipschitz: float) -> Any:
        return certify_triplets(
            *phis, features, normalization=normalization, certificate=certificate, lipschitz=lipschitz
        )

    largest = max(ref.lipschitz, x0.lipschitz, x1.lipschitz)
    prefers_x1, tie, radius_reference, radius_all = certify(largest)
    if ref.lipschitz != largest:  # the reference alone moves: its own (smaller) bound gives the larger radius
        radius_reference = certify(ref.lipschitz).radius_reference
    closer = "tie" if bool(tie[0]) else ("x1" if bool(prefers_x1[0]) else "x0")
    return Decision(
        closer=closer,
        d0=float(distance_from_embeddings(ref.phi, x0.phi, distance)[0]),
        d1=float(distance_from_embeddings(ref.phi, x1.phi, distance)[0]),
        radius_reference=float(radius_reference[0]),
        radius_all=float(radius_all[0]),
    )


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.functional.certificates import check_certificate

    check_certificate(args.certificate, args.normalization)
    paths = {"ref": args.ref, "x0": args.x0, "x1": args.x1}
    images = {name: read_image(path) for name, path in paths.items()}
    backbone = load_network(args)
    ref, x0, x1 = (embed_images(backbone, images[name], args.normalization, paths[name]) for name in paths)
    result = decide(ref, x0, x1, distance=args.distance, normalization=args.normalization, certificate=args.certificate)
    if args.json:
        write_json(
            {
                **paths,
                "weights": str(args.weights),
                **result._asdict(),
                "distance_form": args.distance,
                "normalization": args.normalization,
                "certificate": args.certificate,
            },
            None,
        )
        return 0
    if result.closer == "tie":
        print(f"tie: {args.x0} and {args.x1} are equally close to {args.ref} (no certified decision)")
    else:
        print(f"{paths[result.closer]} ({result.closer.upper()}) is closer to {args.ref}")
    form = "1 - cos" if args.distance == "cosine" else "l2"
    print(f"  d0 = {result.d0:.6f}  d1 = {result.d1:.6f}  ({form})")
    print(f"certified l2 radius of the decision (pixels in [0, 1]; {args.certificate} rule):")
    print(f"  reference perturbed:        {result.radius_reference:.6f}")
    print(f"  all three images perturbed: {result.radius_all:.6f}")
    return 0
