"""Data readers: NIGHTS and BAPPS fixtures laid out like the real datasets, photo folders, synthetic 2AFC."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from dataset_writers import write_bapps, write_nights
from lipsim_tm.data import BAPPS2AFCDataset, ImageFolderDataset, NightsDataset, Synthetic2AFCDataset, load_image
from lipsim_tm.data.distortions import DISTORTION_FAMILIES, apply_distortion
from lipsim_tm.data.images import safe_join
from lipsim_tm.data.transforms import ColorJitter, hsv_to_rgb, item_generator, rgb_to_hsv

NIGHTS_ROWS = [
    {"votes": 6, "p": 1.0, "split": "train"},
    {"votes": 5, "p": 0.0, "split": "train"},  # dropped: fewer than 6 votes
    {"votes": 7, "p": 0.25, "split": "train"},
    {"votes": 6, "p": 0.5, "split": "val"},
    {"votes": 6, "p": 0.0, "split": "test", "is_imagenet": True},
    {"votes": 9, "p": 1.0, "split": "test", "is_imagenet": False},
    {"votes": 6, "p": 0.75, "split": "test", "is_imagenet": False},
]


@pytest.fixture(scope="module")
def nights_root(tmp_path_factory):
    return write_nights(tmp_path_factory.mktemp("nights") / "nights", NIGHTS_ROWS, size=40)


@pytest.mark.parametrize(
    ("split", "expected_p"),
    [
        ("train", [1.0, 0.25]),
        ("val", [0.5]),
        ("test", [0.0, 1.0, 0.75]),
        ("test_imagenet", [0.0]),
        ("test_no_imagenet", [1.0, 0.75]),
    ],
)
def test_nights_splits_votes_filter_and_p(nights_root, split, expected_p):
    dataset = NightsDataset(nights_root, split, image_size=32)
    assert [float(dataset[i][3]) for i in range(len(dataset))] == expected_p


def test_nights_items_are_the_files_resized(nights_root):
    dataset = NightsDataset(nights_root, "val", image_size=32)
    ref, left, right, _p = dataset[0]
    assert ref.shape == left.shape == right.shape == (3, 32, 32)
    assert ref.dtype == torch.float32
    assert ref.min() >= 0
    assert ref.max() <= 1
    # img0 is the left (_0) file, img1 the right (_1) file.
    row = next(r for r in csv.DictReader((nights_root / "data.csv").open()) if r["split"] == "val")
    expected = load_image(nights_root / row["right_path"], 32)
    assert torch.equal(right, expected)
    assert row["left_path"].endswith("_0.png")
    assert row["right_path"].endswith("_1.png")
    full = NightsDataset(nights_root, "val", image_size=40)[0][0]
    pixels = np.array(Image.open(nights_root / row["ref_path"]), dtype=np.float32) / 255
    assert torch.allclose(full, torch.from_numpy(pixels).permute(2, 0, 1))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("/etc/passwd", "absolute path"),
        ("../outside.png", "escapes"),
        ("ref/../../x.png", "escapes"),
        ("C:\\x.png", "absolute"),
    ],
)
def test_nights_refuses_paths_that_escape_the_root(tmp_path, bad, match):
    root = write_nights(tmp_path / "n", [{"votes": 6, "p": 1.0, "split": "train", "ref_path": bad}], size=8)
    with pytest.raises(ValueError, match=match):
        NightsDataset(root, "train")


def test_nights_missing_and_corrupt_files_are_named(tmp_path):
    root = write_nights(tmp_path / "n", [{"votes": 6, "p": 1.0, "split": "train"}], size=8)
    dataset = NightsDataset(root, "train", image_size=8)
    ref = root / "ref/000/000.png"
    ref.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode image file .*000\.png"):
        dataset[0]
    ref.unlink()
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*000\.png"):
        dataset[0]


def test_nights_bad_arguments(tmp_path, nights_root):
    with pytest.raises(ValueError, match="split must be one of"):
        NightsDataset(nights_root, "testing")
    with pytest.raises(FileNotFoundError, match=r"data\.csv"):
        NightsDataset(tmp_path, "train")


def test_safe_join_accepts_nested_relative_paths(tmp_path):
    assert safe_join(tmp_path, "a/b/c.png", source="x") == (tmp_path / "a/b/c.png").resolve()
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(ValueError, match="outside the dataset root"):
        safe_join(tmp_path, "link/etc/passwd", source="index.csv")


def test_bapps_layout_and_judges(tmp_path):
    root = write_bapps(tmp_path / "bapps", {"traditional": [0.0, 0.75], "cnn": [1.0]}, size=16)
    dataset = BAPPS2AFCDataset(root, "val")
    assert len(dataset) == 3
    assert sorted(float(dataset[i][3]) for i in range(3)) == [0.0, 0.75, 1.0]
    assert dataset[0][0].shape == (3, 64, 64)  # resized to the requested 64
    only = BAPPS2AFCDataset(root, "val", subsets=["cnn"], image_size=16)
    assert len(only) == 1
    assert only.subset(0) == "cnn"
    assert float(only[0][3]) == 1.0
    with pytest.raises(ValueError, match="subsets must be a non-empty subset"):
        BAPPS2AFCDataset(root, "val", subsets=["superres"])
    with pytest.raises(FileNotFoundError, match="2afc/train"):
        BAPPS2AFCDataset(root, "train")


def test_bapps_missing_image_and_bad_judge_are_named(tmp_path):
    root = write_bapps(tmp_path / "bapps", {"color": [0.5, 0.5]}, size=8)
    np.save(root / "2afc/val/color/judge/000001.npy", np.array([1.5]))
    with pytest.raises(ValueError, match=r"judge file .*000001\.npy must hold a value in \[0, 1\]"):
        BAPPS2AFCDataset(root, "val")[1]
    (root / "2afc/val/color/p1/000000.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"p1/000000\.png"):
        BAPPS2AFCDataset(root, "val")


def test_image_folder_views_are_reproducible_and_official(photos_dir):
    dataset = ImageFolderDataset(photos_dir, crop_size=32, jitter=ColorJitter(), seed=3)
    assert len(dataset) == 8
    assert any("nested" in str(p) for p in dataset.paths)
    assert {p.suffix for p in dataset.paths} == {".png", ".jpg"}
    plain, jittered, key = dataset[5]
    again = ImageFolderDataset(photos_dir, crop_size=32, jitter=ColorJitter(), seed=3)[5]
    assert torch.equal(plain, again[0])
    assert torch.equal(jittered, again[1])
    assert key == again[2]
    assert plain.shape == jittered.shape == (3, 32, 32)
    # The plain view is a crop of the photo (possibly flipped).
    spec = dataset.view_spec(5)
    photo = load_image(spec.path)[:, spec.top : spec.top + 32, spec.left : spec.left + 32]
    assert torch.equal(plain, photo.flip(-1) if spec.flip else photo)
    dataset.set_epoch(1)
    assert dataset[5][2] != key  # a new crop in the next epoch


def test_image_folder_views_per_image_cycles_crops(photos_dir):
    dataset = ImageFolderDataset(photos_dir, crop_size=32, seed=0, views_per_image=2)
    keys = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        keys.append(dataset[0][2])
    assert keys[0] == keys[2]
    assert keys[1] == keys[3]


def test_image_folder_center_crop_and_upscaling(photos_dir):
    dataset = ImageFolderDataset(photos_dir, crop_size=96, crop="center", flip_p=0.0)
    plain, jittered, _ = dataset[0]
    assert plain.shape == (3, 96, 96)
    assert torch.equal(plain, jittered)
    with pytest.raises(ValueError, match="crop must be one of"):
        ImageFolderDataset(photos_dir, crop_size=32, crop="middle")
    with pytest.raises(ValueError, match="no image files"):
        ImageFolderDataset(photos_dir / "nested", crop_size=32, extensions=(".webp",))


@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_hsv_round_trip(rgb):
    image = torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1).expand(3, 2, 2)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(image)), image, atol=1e-9)


def test_color_jitter_is_deterministic_and_in_range():
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    jitter = ColorJitter()
    a = jitter(image, item_generator(1, 2))
    assert torch.equal(a, jitter(image, item_generator(1, 2)))
    assert not torch.equal(a, jitter(image, item_generator(1, 3)))
    assert a.min() >= 0
    assert a.max() <= 1
    assert torch.equal(ColorJitter(p=0.0, grayscale_p=0.0)(image, item_generator(0)), image)
    gray = ColorJitter(p=0.0, grayscale_p=1.0)(image, item_generator(0))
    assert torch.equal(gray[0], gray[1])
    assert torch.equal(gray[1], gray[2])
    with pytest.raises(ValueError, match=r"ColorJitter.hue must be in \[0, 0.5\]"):
        ColorJitter(hue=0.7)


@pytest.mark.parametrize("family", sorted(DISTORTION_FAMILIES))
def test_distortion_severity_is_monotone(photos_dir, family):
    image = load_image(sorted(photos_dir.glob("*.png"))[0])[:, :48, :48]
    distances = [
        float(np.mean([(apply_distortion(image, family, level, item_generator(s)) - image).norm() for s in range(3)]))
        for level in range(len(DISTORTION_FAMILIES[family]))
    ]
    assert distances == sorted(distances), distances
    with pytest.raises(ValueError, match="level for"):
        apply_distortion(image, family, 99, item_generator(0))


def test_synthetic_2afc_is_deterministic_and_labels_the_milder(photos_dir):
    dataset = Synthetic2AFCDataset(photos_dir, image_size=32, length=40, seed=7)
    same = Synthetic2AFCDataset(photos_dir, image_size=32, length=40, seed=7)
    other = Synthetic2AFCDataset(photos_dir, image_size=32, length=40, seed=8)
    for i in range(40):
        spec = dataset.spec(i)
        _ref, _img0, _img1, p = dataset[i]
        assert all(torch.equal(a, b) for a, b in zip(dataset[i], same[i], strict=True))
        assert spec.same_family
        assert spec.level0 != spec.level1
        assert float(p) == (1.0 if spec.level1 < spec.level0 else 0.0)
    assert any(not torch.equal(dataset[i][0], other[i][0]) for i in range(5))
    labels = [float(dataset[i][3]) for i in range(40)]
    assert 0 < sum(labels) < 40  # both orders occur


def test_synthetic_2afc_cross_family_uses_the_labeller(photos_dir):
    calls = []

    def labeller(ref, img0, img1):
        calls.append(ref.shape[0])
        return ((img1 - ref).flatten(1).norm(dim=1) < (img0 - ref).flatten(1).norm(dim=1)).float()

    with pytest.raises(ValueError, match="needs a labeller"):
        Synthetic2AFCDataset(photos_dir, image_size=32, cross_family_fraction=0.5)
    lazy = Synthetic2AFCDataset(
        photos_dir, image_size=32, length=30, seed=1, cross_family_fraction=0.5, labeller=labeller
    )
    eager = Synthetic2AFCDataset(
        photos_dir, image_size=32, length=30, seed=1, cross_family_fraction=0.5, labeller=labeller
    )
    eager.precompute_labels(batch_size=8)
    assert max(calls) > 1  # batched
    cross = [i for i in range(30) if not lazy.spec(i).same_family]
    assert 5 <= len(cross) <= 25
    for i in range(30):
        assert float(lazy[i][3]) == float(eager[i][3])
    bad = Synthetic2AFCDataset(
        photos_dir,
        image_size=32,
        length=30,
        seed=1,
        cross_family_fraction=1.0,
        labeller=lambda r, a, b: torch.full((1,), 2.0),
    )
    with pytest.raises(ValueError, match=r"labeller must return 1 values in \[0, 1\]"):
        bad[0]


def test_embedding_labeller_follows_the_teacher_distances():
    from lipsim_tm.data.synthetic_2afc import embedding_labeller

    ref = torch.zeros(3, 3, 4, 4)
    near, far = torch.full((3, 3, 4, 4), 0.1), torch.full((3, 3, 4, 4), 0.5)
    img0 = torch.stack([near[0], far[0], near[0]])
    img1 = torch.stack([far[1], near[1], near[2]])
    labels = embedding_labeller(lambda x: x.mean(dim=(2, 3)))(ref, img0, img1)
    assert labels.tolist() == [0.0, 1.0, 0.5]


def test_nights_reads_p_from_the_third_column_like_the_official_reader(tmp_path):
    root = write_nights(tmp_path / "n", [{"votes": 6, "p": 0.75, "split": "train"}], size=8)
    text = (root / "data.csv").read_text().replace("right_vote", "p_any_name", 1)
    (root / "data.csv").write_text(text)
    assert float(NightsDataset(root, "train", image_size=8)[0][3]) == 0.75
    lines = text.splitlines()
    columns = [c.split(",") for c in lines]
    swapped = [",".join([r[0], r[1], r[4], r[3], r[2], *r[5:]]) for r in columns]  # ref_path into column 2
    (root / "data.csv").write_text("\n".join(swapped) + "\n")
    with pytest.raises(ValueError, match="third column must hold p"):
        NightsDataset(root, "train")
