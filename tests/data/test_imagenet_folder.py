"""An ImageNet-style tree (class folders of JPEGs) as distillation data: listing, the official views, workers,
sharding over ranks and resuming mid-epoch, each against an independent computation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dataset_writers import synthetic_photo
from lipsim_tm.data import ImageFolderDataset, find_images
from lipsim_tm.data.images import IMAGE_EXTENSIONS
from lipsim_tm.data.transforms import ColorJitter
from lipsim_tm.training.sampling import ResumableBatchSampler

#: (width, height) of the photos: odd and even margins around a 224 crop, as in ImageNet's 500x375, 333x500, ...
SIZES = [(500, 375), (333, 500), (225, 240), (300, 227), (257, 256)]


def write_imagenet_tree(root: Path, classes: int = 3, per_class: int = 4) -> Path:
    for c in range(classes):
        folder = root / "train" / f"n{c:08d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            width, height = SIZES[(c * per_class + i) % len(SIZES)]
            suffix = ".JPEG" if i % 2 == 0 else ".jpg"
            photo = Image.fromarray(synthetic_photo(100 * c + i, height, width))
            photo.save(folder / f"n{c:08d}_{i}{suffix}", quality=90)
    return root


def rglob_reference(root: Path, extensions=IMAGE_EXTENSIONS) -> list[Path]:
    """The listing by pathlib, independently of find_images' scandir walk."""
    allowed = {e.lower() for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in allowed)


def test_listing_equals_pathlib_on_a_class_tree(tmp_path):
    root = write_imagenet_tree(tmp_path / "imagenet")
    (root / "train" / "n00000000" / "notes.txt").write_text("not an image")
    (root / "train" / "n00000001" / "deeper" / "x").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "train" / "n00000001" / "deeper" / "x" / "odd.PNG")
    os.symlink(root / "train" / "n00000000" / "n00000000_0.JPEG", root / "train" / "linked.jpeg")
    os.symlink(root / "train" / "n00000002", root / "linked-folder", target_is_directory=True)  # not followed
    found = find_images(root)
    assert found == rglob_reference(root)
    assert len(found) == 3 * 4 + 2
    assert not any("linked-folder" in str(p) for p in found)
    assert find_images(str(root / "train")) == rglob_reference(root / "train")  # str roots, relative parts kept


def test_listing_refuses_an_unreadable_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    root = write_imagenet_tree(tmp_path / "imagenet", classes=2, per_class=1)
    locked = root / "train" / "n00000001"
    locked.chmod(0)
    try:
        with pytest.raises(PermissionError, match="cannot list the image folder"):
            find_images(root)
    finally:
        locked.chmod(0o755)


def test_center_view_is_torchvisions_center_crop(tmp_path):
    """Offsets ``int(round((size - 224) / 2))`` (torchvision's formula, half to even), checked pixel for pixel."""
    root = write_imagenet_tree(tmp_path / "imagenet", classes=1, per_class=len(SIZES))
    dataset = ImageFolderDataset(root, crop_size=224, crop="center", flip_p=0.0, jitter=None)
    for index, path in enumerate(dataset.paths):
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
        height, width = array.shape[:2]
        top, left = round((height - 224) / 2.0), round((width - 224) / 2.0)  # int(round(.)) in torchvision
        expected = torch.from_numpy(array[top : top + 224, left : left + 224]).permute(2, 0, 1)
        assert torch.equal(dataset[index][0], expected), path.name


def test_center_view_equals_torchvision(tmp_path):
    root = write_imagenet_tree(tmp_path / "imagenet", classes=1, per_class=len(SIZES))
    dataset = ImageFolderDataset(root, crop_size=224, crop="center", flip_p=0.0, jitter=None)
    torchvision = pytest.importorskip("torchvision", reason="torchvision (vision extra) for the direct comparison")
    crop, to_tensor = torchvision.transforms.CenterCrop(224), torchvision.transforms.ToTensor()
    for index, path in enumerate(dataset.paths):
        with Image.open(path) as image:
            assert torch.equal(dataset[index][0], to_tensor(crop(image.convert("RGB")))), path.name


def batches(dataset, sampler, workers: int) -> list[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers)
    return [(plain, jittered, list(keys)) for plain, jittered, keys in loader]


def test_workers_ranks_and_resume_give_the_same_views(tmp_path):
    root = write_imagenet_tree(tmp_path / "imagenet", classes=3, per_class=4)  # 12 photos
    dataset = ImageFolderDataset(root, crop_size=224, crop="center", jitter=ColorJitter(), seed=3)
    dataset.set_epoch(1)
    one = ResumableBatchSampler(dataset, batch_size=4, rank=0, world_size=1, seed=3)
    one.set_epoch(1)
    serial = batches(dataset, one, 0)
    assert len(serial) == 3
    for parallel, reference in zip(batches(dataset, one, 2), serial, strict=True):  # 2 workers, the same views
        assert torch.equal(parallel[0], reference[0])
        assert torch.equal(parallel[1], reference[1])
        assert parallel[2] == reference[2]
    # Two ranks: local batches of 2; together each step's 4 images are the single-process batch's.
    ranks = []
    for rank in range(2):
        sampler = ResumableBatchSampler(dataset, batch_size=2, rank=rank, world_size=2, seed=3)
        sampler.set_epoch(1)
        ranks.append(list(sampler))
    single = list(one)
    for step, batch in enumerate(single):
        assert sorted(ranks[0][step] + ranks[1][step]) == sorted(batch)
    # Resume mid-epoch: the remaining batches, the same views.
    resumed = ResumableBatchSampler(dataset, batch_size=4, rank=0, world_size=1, seed=3)
    resumed.set_epoch(1, start=2)
    rest = batches(dataset, resumed, 1)
    assert len(rest) == 1
    assert torch.equal(rest[0][0], serial[2][0])
    assert torch.equal(rest[0][1], serial[2][1])
    assert rest[0][2] == serial[2][2]
