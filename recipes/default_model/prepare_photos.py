"""Collect the real photos of the default model's recipe into ``OUT/train`` and ``OUT/eval``.

Sources (all installable offline): the scikit-image and scikit-learn wheels, matplotlib's sample
data, and the Debian packages ``mate-backgrounds`` and ``plasma-workspace-wallpapers`` (extract them
with ``apt-get download PKG && dpkg-deb -x PKG.deb ROOT``; ``--debian-root`` points at ``ROOT``).
Illustrations and renderings in those packages are left out; only photographs are used.

The evaluation photos (:data:`EVAL_PHOTOS`) never enter ``train``. Training photos are written at
two scales (shorter side 320 and 640 pixels) so that 224-pixel crops show whole objects as well as
textures; evaluation photos at one scale (shorter side 320). PNG, so no JPEG artefacts are added.

Usage: ``python recipes/default_model/prepare_photos.py OUT --debian-root ROOT``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from PIL import Image

SKIMAGE = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
SKLEARN = ("china.jpg", "flower.jpg")
MATPLOTLIB = ("grace_hopper.jpg",)
MATE_NATURE = (
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
)
PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
#: Held out from training: the evaluation protocol and the demo use only these.
EVAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "china", "LadyBird", "Storm", "EveningGlow")
TRAIN_SIDES = (320, 640)
EVAL_SIDE = 320


def source_photos(debian_root: Path) -> dict[str, Path]:
    """Name -> file of every photo of the recipe."""
    import matplotlib
    import skimage.data
    import sklearn.datasets

    photos: dict[str, Path] = {}
    skimage_dir = Path(skimage.data.__file__).parent
    for name in SKIMAGE:
        photos[name.split(".")[0]] = skimage_dir / name
    sklearn_dir = Path(sklearn.datasets.__file__).parent / "images"
    for name in SKLEARN:
        photos[name.split(".")[0]] = sklearn_dir / name
    mpl_dir = Path(matplotlib.get_data_path()) / "sample_data"
    for name in MATPLOTLIB:
        photos[name.split(".")[0]] = mpl_dir / name
    for name in MATE_NATURE:
        photos[name] = debian_root / "usr/share/backgrounds/mate/nature" / f"{name}.jpg"
    for name in PLASMA_PHOTOS:
        folder = debian_root / "usr/share/wallpapers" / name / "contents/images"
        photos[name] = max(folder.iterdir(), key=lambda p: p.stat().st_size)  # the largest rendition
    missing = [str(p) for p in photos.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing source photos: {missing}")
    return photos


def resized(image: Image.Image, short_side: int) -> Image.Image:
    scale = short_side / min(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--debian-root", type=Path, default=Path("/"))
    args = parser.parse_args(argv)
    photos = source_photos(args.debian_root)
    unknown = set(EVAL_PHOTOS) - set(photos)
    if unknown:
        raise ValueError(f"evaluation photos not among the sources: {sorted(unknown)}")
    for split in ("train", "eval"):
        os.makedirs(args.out / split, exist_ok=True)
    for name, path in sorted(photos.items()):
        with Image.open(path) as raw:
            image = raw.convert("RGB")
        if name in EVAL_PHOTOS:
            resized(image, EVAL_SIDE).save(args.out / "eval" / f"{name}.png")
        else:
            for side in TRAIN_SIDES:
                if side <= min(image.size):
                    resized(image, side).save(args.out / "train" / f"{name}_{side}.png")
    print(f"{len(photos) - len(EVAL_PHOTOS)} training and {len(EVAL_PHOTOS)} evaluation photos in {args.out}")


if __name__ == "__main__":
    main()
