"""The DreamSim teacher equals the dreamsim package's own model and preprocessing, and distils through the CLI."""

from __future__ import annotations

import csv
import math
import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image

from dataset_writers import synthetic_photo
from lipsim_tm.cli import main
from lipsim_tm.data.images import load_image
from lipsim_tm.models.checkpoints.export import load_export
from lipsim_tm.training.teachers.dreamsim import DREAMSIM_KINDS, DreamSimTeacher, load_dreamsim_teacher

MISSING = "the DreamSim teacher needs the teachers extra: pip install 'lipsim-tm[teachers]' (tox -e teachers)"
dreamsim = pytest.importorskip("dreamsim", reason=MISSING)
PHOTOS = sorted((Path(__file__).resolve().parents[3] / "src" / "lipsim_tm" / "assets" / "photos").glob("*.jpg"))


def dreamsim_own(cache: Path, kind: str):
    """The dreamsim package's ``(model, preprocess)``, exactly as the official LipSim trainer builds its teacher."""
    return dreamsim.dreamsim(pretrained=True, device="cpu", cache_dir=str(cache), dreamsim_type=kind)


def test_preprocessing_equals_dreamsims_on_real_photos(dreamsim_cache):
    _, preprocess = dreamsim_own(dreamsim_cache("clip_vitb32"), "clip_vitb32")
    assert len(PHOTOS) >= 3
    for path in PHOTOS:
        with Image.open(path) as image:
            assert min(image.size) != 224  # the resize really runs
            theirs = preprocess(image)
            ours_from_pil = DreamSimTeacher.preprocess(image)
        assert theirs.shape == (1, 3, 224, 224)
        assert torch.equal(DreamSimTeacher.preprocess(path), theirs), path.name
        assert torch.equal(ours_from_pil, theirs), path.name
        assert torch.equal(load_image(path, 224)[None], theirs), path.name  # the library's reader at 224


@pytest.mark.parametrize("kind", sorted(DREAMSIM_KINDS))
def test_teacher_equals_dreamsims_embedding(dreamsim_cache, kind, capsys):
    cache = dreamsim_cache(kind)
    hub_dir = torch.hub.get_dir()
    teacher = load_dreamsim_teacher(kind, cache_dir=cache)
    assert torch.hub.get_dir() == hub_dir  # dreamsim sets it globally; the loader puts it back
    assert capsys.readouterr().out == ""  # dreamsim's chatter goes to stderr, stdout stays the command's
    model, preprocess = dreamsim_own(cache, kind)
    images = torch.cat([preprocess(Image.open(path)) for path in PHOTOS])
    ours = teacher(images)
    assert ours.shape == (len(PHOTOS), DREAMSIM_KINDS[kind]) == (len(PHOTOS), teacher.embedding_dim)
    assert torch.equal(ours, model.embed(images))
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(PHOTOS)), atol=1e-5)  # normalize_embeds=True
    assert torch.allclose(ours.mean(dim=1), torch.zeros(len(PHOTOS)), atol=1e-6)  # ... after centring
    assert torch.equal(teacher(images[:1]), model.embed(images[:1]))  # one image keeps its batch dimension
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not teacher.train().model.training  # frozen in eval whatever the caller does


def test_teacher_lora_adapters_are_loaded(dreamsim_cache):
    """Random non-zero LoRA B matrices: dropping the adapters changes the embedding, so they were loaded."""
    teacher = load_dreamsim_teacher("dino_vitb16", cache_dir=dreamsim_cache("dino_vitb16"))
    images = DreamSimTeacher.preprocess(PHOTOS[0])
    with teacher.model.disable_adapter():
        plain = teacher(images)
    assert not torch.allclose(plain, teacher(images), atol=1e-4)


def test_other_sizes_are_resized_to_224(dreamsim_cache):
    teacher = load_dreamsim_teacher("clip_vitb32", cache_dir=dreamsim_cache("clip_vitb32"))
    images = torch.rand(2, 3, 64, 64)
    resized = torch.nn.functional.interpolate(images, size=(224, 224), mode="bicubic", antialias=True).clamp(0, 1)
    assert torch.equal(teacher(images), teacher(resized))
    assert torch.equal(teacher(images.double()), teacher(images))  # cast to the teacher's dtype


def test_identity_follows_the_weights(dreamsim_cache):
    first = load_dreamsim_teacher("clip_vitb32", cache_dir=dreamsim_cache("clip_vitb32"))
    again = load_dreamsim_teacher("clip_vitb32", cache_dir=dreamsim_cache("clip_vitb32"))
    other = load_dreamsim_teacher("clip_vitb32", cache_dir=dreamsim_cache("clip_vitb32", seed=1))
    assert first.identity() == again.identity()
    assert first.identity().startswith(f"dreamsim:clip_vitb32|dreamsim=={first.version}|weights:")
    assert other.identity() != first.identity()


def test_offline_error_names_what_to_download_and_where(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(OSError, match="could not fetch the DreamSim 'ensemble'") as info:
        load_dreamsim_teacher("ensemble", cache_dir=tmp_path / "empty")
    message = str(info.value)
    assert dreamsim.config.dreamsim_weights["ensemble"] in message
    assert str(tmp_path / "empty") in message
    for part in ("dino_vitbase16_pretrain.pth", "facebookresearch_dino_main", "LIPSIM_CACHE_DIR", "Temporary failure"):
        assert part in message


def test_bad_input(dreamsim_cache):
    teacher = load_dreamsim_teacher("clip_vitb32", cache_dir=dreamsim_cache("clip_vitb32"))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 3, H, W\).*got \(2, 1, 224, 224\)"):
        teacher(torch.rand(2, 1, 224, 224))
    with pytest.raises(TypeError, match=r"images must be floating point in \[0, 1\], got torch.uint8"):
        teacher(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"images must hold values in \[0, 1\].*got \[-0\.5, 1\.0\]"):
        teacher(torch.cat([torch.full((1, 3, 224, 224), -0.5), torch.ones(1, 3, 224, 224)]))
    with pytest.raises(ValueError, match=r"images must hold values in \[0, 1\]"):
        teacher(torch.full((1, 3, 224, 224), float("nan")))
    with pytest.raises(TypeError, match=r"images must be a torch\.Tensor, got list"):
        teacher([1.0])
    with pytest.raises(ValueError, match="dreamsim teacher kind must be one of"):
        load_dreamsim_teacher("clip_vitl14")


def write_photos(folder: Path, count: int, size: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(synthetic_photo(i, *size)).save(folder / f"photo{i}.png")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def distill_args(photos: Path, output: Path, teacher: str) -> list[str]:
    return ["train", "distill", "--data-dir", str(photos), "--teacher", teacher, "--model", "tiny32",
            "--batch-size", "4", "--epochs", "2", "--warmup-steps", "1", "--device", "cpu", "--no-progress",
            "--log-every", "1", "--crop", "center", "--out", str(output)]  # fmt: skip


def test_distillation_with_the_dreamsim_ensemble_through_the_cli(tmp_path, dreamsim_cache, monkeypatch, capsys):
    """``--teacher dreamsim`` from the lipsim cache (LIPSIM_CACHE_DIR), teacher-embedding cache, export metadata."""
    cache_root = tmp_path / "lipsim-cache"
    (cache_root / "teachers").mkdir(parents=True)
    (cache_root / "teachers" / "dreamsim").symlink_to(dreamsim_cache("ensemble"), target_is_directory=True)
    monkeypatch.setenv("LIPSIM_CACHE_DIR", str(cache_root))
    photos = tmp_path / "photos"
    write_photos(photos, 8, (48, 40))
    student = ["--set-model", "channels=28", "--set-model", "out_features=1792"]  # 28 * 8 * 8 = 1792 features
    argv = [*distill_args(photos, tmp_path / "run", "dreamsim"), *student, "--teacher-cache", str(tmp_path / "tc")]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "done: 4 steps" in out
    _, meta = load_export(tmp_path / "run" / "export.pt")
    teacher_id = meta["training"]["teacher_id"]
    expected = load_dreamsim_teacher("ensemble", cache_dir=dreamsim_cache("ensemble")).identity()
    assert teacher_id == expected
    with (tmp_path / "run" / "log.csv").open() as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 4
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)
    cached = list((tmp_path / "tc").rglob("*"))
    assert cached  # the teacher's embeddings were cached under its identity


def test_student_width_must_match_the_teacher(tmp_path, dreamsim_cache, monkeypatch, capsys):
    cache_root = tmp_path / "lipsim-cache"
    (cache_root / "teachers").mkdir(parents=True)
    (cache_root / "teachers" / "dreamsim").symlink_to(dreamsim_cache("clip_vitb32"), target_is_directory=True)
    monkeypatch.setenv("LIPSIM_CACHE_DIR", str(cache_root))
    write_photos(tmp_path / "photos", 4, (40, 40))
    code, _, err = run(distill_args(tmp_path / "photos", tmp_path / "run", "dreamsim:clip_vitb32"), capsys)
    assert code == 2
    assert "the teacher produces 512-d embeddings but the student's out_features is 256" in err
    assert "--set-model out_features=512" in err
    assert not (tmp_path / "run" / "export.pt").exists()
