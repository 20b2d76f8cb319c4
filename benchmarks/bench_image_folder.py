"""ImageNet-style distillation data on this machine: listing a class-folder tree, and views per second.

Two numbers a distillation run on ImageNet depends on:

- listing: ``find_images`` (one ``os.scandir`` per folder) against the pathlib listing it replaced
  (``rglob`` + ``is_file`` per entry), over a tree of ``--list-classes`` x ``--list-per-class`` empty ``.JPEG``
  files (listing reads no pixels);
- images/s: ``DataLoader(ImageFolderDataset(...))`` with the official views (CenterCrop 224 + flip, and the
  colour-jittered copy), JPEG decoding included, at several worker counts, over ``--classes`` x ``--per-class``
  JPEGs (quality 90) of ImageNet's typical sizes cut from the shipped real photos.

    python benchmarks/bench_image_folder.py               # writes benchmarks/results/image-folder.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from lipsim_tm.data import ImageFolderDataset, find_images
from lipsim_tm.data.images import IMAGE_EXTENSIONS
from lipsim_tm.data.transforms import ColorJitter

from common import BENCHMARKS_DIR, REPO_ROOT, machine_description, write_json

#: ImageNet's most common (width, height): landscape 4:3 and 3:2, portrait, square.
SIZES: tuple[tuple[int, int], ...] = ((500, 375), (500, 333), (375, 500), (400, 400), (500, 400), (333, 500))
PHOTOS = sorted((REPO_ROOT / "src" / "lipsim_tm" / "assets" / "photos").glob("*.jpg"))


def write_jpeg_tree(root: Path, classes: int, per_class: int) -> int:
    """Class folders of JPEGs: each a resized, shifted crop of a real photo (so decoding costs what a photo does)."""
    sources = [Image.open(path).convert("RGB") for path in PHOTOS]
    count = 0
    for c in range(classes):
        folder = root / f"n{c:08d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            width, height = SIZES[count % len(SIZES)]
            source = sources[count % len(sources)]
            shift = (count * 7) % 24
            box = (shift, shift, source.width - 24 + shift, source.height - 24 + shift)
            source.resize((width, height), Image.Resampling.BICUBIC, box=box).save(folder / f"{c}_{i}.JPEG", quality=90)
            count += 1
    return count


def pathlib_listing(root: Path) -> list[Path]:
    allowed = {e.lower() for e in IMAGE_EXTENSIONS}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in allowed)


def time_listing(classes: int, per_class: int, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for c in range(classes):
            (root / f"n{c:08d}").mkdir()
            for i in range(per_class):
                (root / f"n{c:08d}" / f"{c}_{i}.JPEG").touch()
        rows = {}
        for name, listing in (("find_images", find_images), ("pathlib rglob", pathlib_listing)):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                found = listing(root)
                best = min(best, time.perf_counter() - start)
            assert len(found) == classes * per_class
            rows[name] = best
    files = classes * per_class
    return {
        "files": files,
        "seconds": rows,
        "files_per_s": {name: files / s for name, s in rows.items()},
        "speedup": rows["pathlib rglob"] / rows["find_images"],
    }


def time_views(root: Path, workers: int, batch_size: int, jitter: bool) -> float:
    """Images/s of one pass (both views per image) after a first warm-up batch."""
    dataset = ImageFolderDataset(root, crop_size=224, crop="center", jitter=ColorJitter() if jitter else None, seed=0)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)
    iterator = iter(loader)
    next(iterator)  # worker start-up and the first decodes
    start, images = time.perf_counter(), 0
    for plain, _, _ in iterator:
        images += plain.shape[0]
    return images / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=72)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--list-classes", type=int, default=100)
    parser.add_argument("--list-per-class", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="image-folder")
    parser.add_argument("--out-dir", type=Path, default=BENCHMARKS_DIR / "results")
    args = parser.parse_args(argv)
    if args.classes * args.per_class < 2 * args.batch_size:
        parser.error("--classes x --per-class must be >= 2 x --batch-size (the first batch is a warm-up)")
    torch.set_num_threads(1)  # the loader's workers, not torch's threads, are what is measured
    listing = time_listing(args.list_classes, args.list_per_class, args.repeats)
    rates = ", ".join(f"{name} {rate:.0f} files/s" for name, rate in listing["files_per_s"].items())
    print(f"listing {listing['files']} files: {rates}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        count = write_jpeg_tree(Path(folder), args.classes, args.per_class)
        for jitter in (True, False):
            for workers in args.workers:
                rate = time_views(Path(folder), workers, args.batch_size, jitter)
                rows.append({"workers": workers, "jitter": jitter, "images_per_s": rate})
                print(f"workers {workers} {'plain + jittered' if jitter else 'plain only'}: {rate:.1f} images/s")
    payload = {
        "machine": machine_description(),
        "command": "python benchmarks/bench_image_folder.py " + " ".join(argv or []),
        "listing": listing,
        "views": {"images": count, "batch_size": args.batch_size, "crop": "center 224", "rows": rows},
    }
    print(f"wrote {write_json(args.name, payload, args.out_dir)}")
    return payload


if __name__ == "__main__":
    main()
