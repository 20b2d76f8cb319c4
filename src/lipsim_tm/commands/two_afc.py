"""``lipsim 2afc REF X0 X1``: which of two image files is closer to a reference, with the decision's certified radii."""

from __future__ import annotations

import argparse

from lipsim_tm.commands._options import add_certificate_arguments, add_network_arguments

DESCRIPTION = (
    "Decide which of X0 and X1 is closer to REF under LipSim (two-alternative forced choice) and print"
    " both distances and two certified l2 radii (pixels of the files as read, values in [0, 1]): no"
    " perturbation of REF of smaller norm changes the decision, and none of each of the three images"
    " of smaller norm does. Files may differ in size and mode; the resize to the network's input is"
    " accounted for exactly (the reference radius uses REF's own bound, the other the largest of the three)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("ref", help="reference image file")
    parser.add_argument("x0", help="first candidate image file")
    parser.add_argument("x1", help="second candidate image file")
    add_certificate_arguments(parser)
    add_network_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._report import write_json
    from lipsim_tm.commands._runtime import file_features, load_network
    from lipsim_tm.data.images import read_image
    from lipsim_tm.functional.certificates.policy import check_certificate
    from lipsim_tm.functional.two_afc import _two_afc_update

    check_certificate(args.certificate, args.normalization)
    paths = {"ref": args.ref, "x0": args.x0, "x1": args.x1}
    images = {name: read_image(path) for name, path in paths.items()}
    backbone = load_network(args)
    features, bounds = zip(*(file_features(backbone, images[name], paths[name]) for name in paths), strict=True)
    result = _two_afc_update(
        *features,
        distance=args.distance,
        normalization=args.normalization,
        certificate=args.certificate,
        lipschitz=bounds,
    )
    closer = "tie" if bool(result.tie[0]) else ("x1" if bool(result.prefers_img1[0]) else "x0")
    numbers = {key: float(getattr(result, key)[0]) for key in ("d0", "d1", "radius_reference", "radius_all")}
    if args.json:
        write_json(
            {
                **paths,
                "weights": str(args.weights),
                "closer": closer,
                **numbers,
                "distance_form": args.distance,
                "normalization": args.normalization,
                "certificate": args.certificate,
            },
            None,
        )
        return 0
    if closer == "tie":
        print(f"tie: {args.x0} and {args.x1} are equally close to {args.ref} (no certified decision)")
    else:
        print(f"{paths[closer]} ({closer.upper()}) is closer to {args.ref}")
    form = "1 - cos" if args.distance == "cosine" else "l2"
    print(f"  d0 = {numbers['d0']:.6f}  d1 = {numbers['d1']:.6f}  ({form})")
    print(f"certified l2 radius of the decision (pixels in [0, 1]; {args.certificate} rule):")
    print(f"  reference perturbed:        {numbers['radius_reference']:.6f}")
    print(f"  all three images perturbed: {numbers['radius_all']:.6f}")
    return 0
