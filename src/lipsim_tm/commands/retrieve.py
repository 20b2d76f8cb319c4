"""``lipsim retrieve index|query``: certified nearest-neighbour retrieval over a folder of photos.

``index PHOTOS/ --out gallery.pt`` embeds every image under the folder (any size and mode; resized like the
metrics) into a gallery file that records the weights (name and sha256) and each image's path. ``query
gallery.pt q.jpg ... --k 5`` prints each query's top-k with the certified l2 radius, in the query file's own
[0, 1] pixels (its resize included), within which no perturbation of the query changes its top-1 or its
top-k set; ``--json`` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lipsim_tm.commands._options import add_examples, add_network_arguments, add_output_arguments, positive_int
from lipsim_tm.files import check_file, check_writable

#: Normalisations a gallery may use: both 1-Lipschitz (certified retrieval needs one).
GALLERY_NORMALIZATIONS: tuple[str, ...] = ("augment", "ball")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lipsim_tm.functional.certificates.policy import CERTIFICATES

    parser.description = __doc__.split("\n\n", 1)[1]
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    index = actions.add_parser("index", help="embed every image under a folder into a gallery file")
    index.add_argument("photos", help="folder searched recursively (png, jpg, bmp, gif, tiff, webp, ppm)")
    index.add_argument("--out", required=True, help="the gallery file to write (e.g. gallery.pt)")
    index.add_argument(
        "--normalization", choices=GALLERY_NORMALIZATIONS, default="augment", help="(default: %(default)s)"
    )
    index.add_argument(
        "--batch-size", type=positive_int, default=32, help="images per forward pass (default: %(default)s)"
    )
    index.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    add_network_arguments(index)
    query = actions.add_parser("query", help="the top-k gallery images of each query image, with certified radii")
    query.add_argument("gallery", help="a gallery file written by 'lipsim retrieve index'")
    query.add_argument("queries", nargs="+", help="query image files (any size and mode)")
    query.add_argument(
        "--k",
        type=positive_int,
        default=5,
        help="neighbours per query, at most the gallery's size (default: %(default)s)",
    )
    query.add_argument(
        "--certificate",
        choices=CERTIFICATES,
        default="norm_aware",
        help="radius rule: norm_aware (default; the larger of both) or plain (the 1-Lipschitz radius)",
    )
    add_output_arguments(query, "also write the results as JSON to FILE")
    add_network_arguments(query, default_weights=None)
    add_examples(index, "lipsim retrieve index photos/ --out gallery.pt")
    add_examples(query, "lipsim retrieve query gallery.pt q.jpg --k 3", "lipsim retrieve query gallery.pt *.png --json")
    add_examples(
        parser,
        "lipsim retrieve index photos/ --out gallery.pt",
        "lipsim retrieve query gallery.pt q.jpg --k 3 --out q.json",
    )


def run(args: argparse.Namespace) -> int:
    return run_index(args) if args.action == "index" else run_query(args)


def _weights_identity(backbone: Any, weights: str) -> dict[str, str]:
    from lipsim_tm.models.checkpoints.export import state_dict_sha256

    return {"weights": weights, "weights_sha256": state_dict_sha256(backbone.state_dict())}


def run_index(args: argparse.Namespace) -> int:
    import torch

    from lipsim_tm.commands._report import Progress
    from lipsim_tm.commands._runtime import load_network
    from lipsim_tm.data.images import find_images, image_shape, read_image
    from lipsim_tm.retrieval import Embedder, EmbeddingGallery

    out = check_writable(args.out, "gallery")
    root = Path(args.photos)
    files = find_images(root)
    backbone = load_network(args)
    embedder = Embedder(backbone, normalization=args.normalization, grayscale=True)
    start = time.perf_counter()
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, path in enumerate(files):  # by shape from the headers: decode a batch at a time, never the whole folder
        groups.setdefault(image_shape(path), []).append(i)
    embeddings: list[torch.Tensor | None] = [None] * len(files)
    bar = Progress(len(files), label="index", enabled=not args.no_progress, unit="images")
    for members in groups.values():  # images of one shape go through the network together
        for chunk in range(0, len(members), args.batch_size):
            part = members[chunk : chunk + args.batch_size]
            batch = torch.cat([read_image(files[i]) for i in part]).to(next(backbone.parameters()).device)
            for i, row in zip(part, embedder.embed_batches(batch, len(part)).cpu(), strict=True):
                embeddings[i] = row
            bar.update(len(part))
    bar.close()
    seconds = time.perf_counter() - start
    gallery = EmbeddingGallery(
        torch.stack(embeddings),  # type: ignore[arg-type]
        lipschitz_bound=backbone.lipschitz_bound,
        normalization=args.normalization,
        labels=[path.relative_to(root).as_posix() for path in files],
        source=_weights_identity(backbone, str(args.weights)),
    )
    gallery.save(out)
    print(f"indexed {len(files)} images from {root} in {seconds:.1f} s ({len(files) / seconds:.1f} images/s): {out}")
    return 0


def run_query(args: argparse.Namespace) -> int:
    from lipsim_tm.commands._report import write_json
    from lipsim_tm.commands._runtime import load_network
    from lipsim_tm.data.images import IMAGE_EXTENSIONS, read_image
    from lipsim_tm.retrieval import Embedder, EmbeddingGallery

    if Path(args.gallery).suffix.lower() in IMAGE_EXTENSIONS:
        raise ValueError(
            f"{args.gallery} is an image, not a gallery\nthe gallery comes first: lipsim retrieve query GALLERY IMAGE"
            " [IMAGE ...]"
        )
    if args.out is not None:
        check_writable(args.out, "JSON report")
    for name in args.queries:  # cheap checks before the gallery and the network load
        check_file(name, "query image file")
    gallery = EmbeddingGallery.load(args.gallery)
    if gallery.labels is None or gallery.source is None or gallery.normalization is None:
        raise ValueError(f"{args.gallery} has no image names or weights record: build it with 'lipsim retrieve index'")
    if args.k > len(gallery):
        note = f"--k {args.k} is more than the gallery's {len(gallery)} images; using {len(gallery)}"
        print(f"lipsim retrieve: note: {note}", file=sys.stderr)
        args.k = len(gallery)
    args.weights = args.weights or gallery.source["weights"]
    backbone = load_network(args)
    identity = _weights_identity(backbone, str(args.weights))
    if identity["weights_sha256"] != gallery.source["weights_sha256"]:
        raise ValueError(
            f"{args.gallery} was built with weights {gallery.source['weights']!r} (state sha256"
            f" {gallery.source['weights_sha256'][:12]}...), not with {str(args.weights)!r}: query with the same weights"
        )
    embedder = Embedder(backbone, normalization=gallery.normalization, grayscale=True)
    results = []
    for name in args.queries:
        image = read_image(name).to(next(backbone.parameters()).device)
        found = gallery.search_images(embedder, image, args.k, certificate=args.certificate)
        results.append(
            {
                "query": str(name),
                "size": [image.shape[3], image.shape[2]],
                "neighbours": [
                    {"rank": r + 1, "image": gallery.labels[int(i)], "distance": float(d)}
                    for r, (i, d) in enumerate(zip(found.indices[0], found.distances[0], strict=True))
                ],
                "radius_top1": float(found.radius_top1[0]),
                "radius_topk": float(found.radius_topk[0]),
                "certificate": found.certificate,
            }
        )
    report = {"gallery": args.gallery, "weights": gallery.source, "k": args.k, "results": results}
    if args.out is not None:
        write_json(report, args.out)
    if args.json:
        write_json(report, None)
        return 0
    for result in results:
        width, height = result["size"]
        print(
            f"query {result['query']} ({width}x{height}): top {args.k} of {len(gallery)} ({result['certificate']} rule)"
        )
        for n in result["neighbours"]:
            print(f"  {n['rank']:>3}. {n['image']}  distance {n['distance']:.6f}")
        print(
            f"  certified l2 radius in the query's [0, 1] pixels: top-1 unchanged below {result['radius_top1']:.6f},"
            f" top-{args.k} set unchanged below {result['radius_topk']:.6f}"
        )
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0
