"""Synthetic stand-ins for the paper recipe's smoke run (``SCALE=smoke bash recipes/paper/run.sh``).

Writes under OUT: ``imagenet/train/<class>/*.JPEG`` (class folders of JPEG crops of the shipped real photos),
``nights/`` (the NIGHTS layout: ``data.csv``, ``ref/``, ``distort/``; triplets whose two distortions differ in
strength, p = the fraction judging the right image closer, votes >= 6, train/val/test splits) and, with
``--dreamsim-random CACHE``, random DreamSim weights where ``--teacher dreamsim`` looks for them
(``CACHE/teachers/dreamsim``; CACHE is the smoke run's own ``LIPSIM_CACHE_DIR``, never the real cache).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
from PIL import Image

from lipsim_tm.data.distortions import apply_distortion
from lipsim_tm.data.images import pil_to_tensor, tensor_to_pil

PHOTOS = sorted((Path(__file__).resolve().parents[2] / "src" / "lipsim_tm" / "assets" / "photos").glob("*.jpg"))
SPLITS = {"train": 16, "val": 4, "test": 8}


def crops(count: int, width: int, height: int) -> list[Image.Image]:
    """``count`` different crops of the shipped photos, resized to ``width`` x ``height``."""
    sources = [Image.open(path).convert("RGB") for path in PHOTOS]
    out = []
    for i in range(count):
        source = sources[i % len(sources)]
        side = min(source.size) // 2
        left, top = (37 * i) % (source.width - side), (23 * i) % (source.height - side)
        out.append(source.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)))
    return out


def write_imagenet(root: Path, classes: int = 2, per_class: int = 8) -> None:
    images = crops(classes * per_class, 48, 40)
    for c in range(classes):
        folder = root / "train" / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            images[c * per_class + i].save(folder / f"n{c:08d}_{i}.JPEG", quality=90)


def write_nights(root: Path, size: int = 64) -> int:
    rows = sum(SPLITS.values())
    references = crops(rows, size, size)
    header = ["id", "votes", "right_vote", "left_vote", "ref_path", "left_path", "right_path", "prompt",
              "is_imagenet", "split"]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    with (root / "data.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        splits = [name for name, count in SPLITS.items() for _ in range(count)]
        for i, (reference, split) in enumerate(zip(references, splits, strict=True)):
            generator = torch.Generator().manual_seed(i)
            family = ("noise", "blur", "color", "contrast")[i % 4]
            ref = pil_to_tensor(reference)
            mild, strong = (apply_distortion(ref, family, level, generator) for level in (0, 3))
            right_is_mild = i % 2 == 0
            left, right = (strong, mild) if right_is_mild else (mild, strong)
            paths = {"ref_path": f"ref/{i:03d}/000.png", "left_path": f"distort/{i:03d}/000_0.png",
                     "right_path": f"distort/{i:03d}/000_1.png"}  # fmt: skip
            for key, image in zip(paths, (reference, tensor_to_pil(left), tensor_to_pil(right)), strict=True):
                (root / paths[key]).parent.mkdir(parents=True, exist_ok=True)
                image.save(root / paths[key])
            p = (5 + i % 3) / 7 if right_is_mild else (2 - i % 3) / 7  # majorities of 5/7 .. 7/7 for the milder
            writer.writerow({"id": i, "votes": 7, "right_vote": round(p, 6), "left_vote": round(1 - p, 6), **paths,
                             "prompt": "a photo", "is_imagenet": i % 2 == 0, "split": split})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for imagenet/ and nights/")
    parser.add_argument("--dreamsim-random", type=Path, default=None, metavar="CACHE",
                        help="also write random DreamSim ensemble weights into CACHE/teachers/dreamsim")  # fmt: skip
    args = parser.parse_args(argv)
    write_imagenet(args.out / "imagenet")
    triplets = write_nights(args.out / "nights")
    print(f"stand-ins in {args.out}: imagenet/train (2 classes x 8 JPEGs), nights ({triplets} triplets)")
    if args.dreamsim_random is not None:
        from lipsim_tm.training.teachers.dreamsim_random import write_random_dreamsim_cache

        folder = args.dreamsim_random / "teachers" / "dreamsim"
        if not (folder / "ensemble_lora").is_dir():  # a rerun keeps the weights (and the teacher's identity)
            write_random_dreamsim_cache(folder, "ensemble")
        print(f"random DreamSim ensemble weights in {folder}")


if __name__ == "__main__":
    main()
