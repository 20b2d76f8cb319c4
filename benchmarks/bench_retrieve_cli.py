"""End-to-end certified retrieval from image files, as ``lipsim retrieve`` runs it: gallery build images/s
(decode, resize, forward, save) and queries/s (decode, forward, certified top-k search) with the default model.

    python benchmarks/bench_retrieve_cli.py [--images 200] [--queries 20] [--k 5] [--weights default]

Photos: random crops of mixed sizes (160-400 px sides) of the photos shipped with the package, written as
JPEG to a temporary folder. Writes benchmarks/results/retrieve-cli.json.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from lipsim_tm.cli import main as lipsim
from lipsim_tm.commands.demo import shipped_photos

from common import apply_timing_options, machine_description, timing_parser, write_json


def write_crops(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEG crops of mixed sizes from the shipped photos."""
    rng = random.Random(seed)
    paths = []
    with shipped_photos() as photos:
        sources = [Image.open(p).convert("RGB") for p in photos]
    for i in range(count):
        source = sources[i % len(sources)]
        width, height = rng.randint(160, 400), rng.randint(160, 400)
        width, height = min(width, source.width), min(height, source.height)
        left, top = rng.randint(0, source.width - width), rng.randint(0, source.height - height)
        path = folder / f"crop{i:04d}.jpg"
        source.crop((left, top, left + width, top + height)).save(path, quality=90)
        paths.append(path)
    return paths


def run_quietly(argv: list[str]) -> float:
    """Seconds of one in-process ``lipsim`` call (its output discarded); raises if it fails."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = lipsim(argv)
    if code != 0:
        raise RuntimeError(f"lipsim {' '.join(argv)} exited {code}")
    return time.perf_counter() - start


def main() -> None:
    parser = timing_parser(__doc__, repeats=1)
    parser.add_argument("--images", type=int, default=200, help="gallery images (default 200)")
    parser.add_argument("--queries", type=int, default=20, help="query images (default 20)")
    parser.add_argument("--k", type=int, default=5, help="neighbours per query (default 5)")
    parser.add_argument("--weights", default="default", help="weights (default: the shipped model)")
    args = parser.parse_args()
    apply_timing_options(args)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        write_crops(root / "photos", args.images)
        (root / "queries").mkdir()
        queries = write_crops(root / "queries", args.queries, seed=1)
        gallery = root / "gallery.pt"
        common = ["--weights", args.weights, "--threads", str(torch.get_num_threads())]
        run_quietly(["retrieve", "index", str(root / "photos"), "--out", str(gallery), "--no-progress", *common])
        index_s = min(
            run_quietly(["retrieve", "index", str(root / "photos"), "--out", str(gallery), "--no-progress", *common])
            for _ in range(args.repeats)
        )
        query = ["retrieve", "query", str(gallery), *map(str, queries), "--k", str(args.k), *common]
        run_quietly(query)
        query_s = min(run_quietly(query) for _ in range(args.repeats))
    result = {
        "machine": machine_description(),
        "command": "python benchmarks/bench_retrieve_cli.py " + " ".join(sys.argv[1:]),
        "weights": args.weights,
        "images": args.images,
        "queries": args.queries,
        "k": args.k,
        "index_seconds": index_s,
        "index_images_per_s": args.images / index_s,
        "query_seconds": query_s,
        "queries_per_s": args.queries / query_s,
        "note": "in-process lipsim calls after one warm-up each (model load included in every call)",
    }
    print(f"index: {args.images} images in {index_s:.2f} s = {result['index_images_per_s']:.1f} images/s")
    print(f"query: {args.queries} queries (k={args.k}) in {query_s:.2f} s = {result['queries_per_s']:.1f} queries/s")
    print(f"wrote {write_json('retrieve-cli', result, args.out_dir)}")


if __name__ == "__main__":
    main()
