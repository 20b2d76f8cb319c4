"""Trainer building blocks against independent references: schedule, losses, sampler, checkpoints, cache, logs."""

from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from lipsim_tm import LipSimBackbone
from lipsim_tm.data import ImageFolderDataset
from lipsim_tm.training import DistillConfig, FinetuneConfig
from lipsim_tm.training.checkpointing import (
    CheckpointManager,
    capture_rng_state,
    load_training_checkpoint,
    restore_rng_state,
)
from lipsim_tm.training.distill import cosine_loss, distillation_loss, precompute_teacher_embeddings, rmse_loss
from lipsim_tm.training.evaluation import evaluate_2afc
from lipsim_tm.training.finetune import hinge_2afc_loss
from lipsim_tm.training.logging import CSVLogger, ProgressBar
from lipsim_tm.training.sampling import ResumableBatchSampler
from lipsim_tm.training.schedule import WarmupCosine
from lipsim_tm.training.teacher_cache import TeacherCache


def test_warmup_cosine_closed_form():
    schedule = WarmupCosine(warmup_steps=4, total_steps=14)
    assert [schedule(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    for s in range(4, 20):
        progress = min((s - 4) / 10, 1.0)
        assert schedule(s) == pytest.approx(0.5 * (1 + math.cos(math.pi * progress)))
    assert WarmupCosine(0, 10, min_factor=0.1)(10) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="total_steps must be an int >= 1"):
        WarmupCosine(2, 0)


@given(st.integers(1, 60), st.integers(1, 4), st.integers(1, 5), st.integers(0, 3))
def test_global_batches_do_not_depend_on_the_number_of_ranks(size, world, local, epoch):
    dataset = TensorDataset(torch.arange(size))
    single = ResumableBatchSampler(dataset, batch_size=world * local, rank=0, world_size=1, seed=5)
    ranks = [ResumableBatchSampler(dataset, batch_size=local, rank=r, world_size=world, seed=5) for r in range(world)]
    for sampler in [single, *ranks]:
        sampler.set_epoch(epoch)
    global_batches = list(single)
    local_batches = [list(s) for s in ranks]
    assert all(len(batches) == len(global_batches) for batches in local_batches)
    for b, batch in enumerate(global_batches):
        assert sorted(batch) == sorted(i for batches in local_batches for i in batches[b])
    resumed = ResumableBatchSampler(dataset, batch_size=world * local, rank=0, world_size=1, seed=5)
    resumed.set_epoch(epoch, start=1)
    assert list(resumed) == global_batches[1:]


def test_rmse_and_cosine_losses_against_float64_references():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, 7, generator=g, dtype=torch.float64)
    expected = np.mean([np.sqrt(np.mean((a - b) ** 2)) for a, b in zip(s.numpy(), t.numpy(), strict=True)])
    assert float(rmse_loss(s, t)) == pytest.approx(expected, rel=1e-12)
    cos = [a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(s.numpy(), t.numpy(), strict=True)]
    assert float(cosine_loss(s, t)) == pytest.approx(np.mean([1 - c for c in cos]), rel=1e-12)
    assert float(distillation_loss(s, t, t)) == pytest.approx(expected / 2, rel=1e-9)
    with pytest.raises(ValueError, match="must match the teacher's"):
        distillation_loss(s, s, t[:, :3])
    with pytest.raises(ValueError, match="kind must be one of"):
        distillation_loss(s, s, t, "l1")


def test_hinge_loss_brute_force():
    d0 = torch.tensor([0.1, 0.5, 0.3, 0.2], dtype=torch.float64)
    d1 = torch.tensor([0.4, 0.2, 0.3, 0.25], dtype=torch.float64)
    p = torch.tensor([0.0, 0.9, 0.6, 0.2], dtype=torch.float64)
    margin = 0.2
    expected = []
    for a, b, q in zip(d0.tolist(), d1.tolist(), p.tolist(), strict=True):
        sign = 1.0 if q >= 0.5 else -1.0  # round(p): 1 means img1 is judged closer, so d1 should be smaller
        expected.append(max(0.0, margin - (a - b) * sign))
    assert float(hinge_2afc_loss(d0, d1, p, margin)) == pytest.approx(np.mean(expected))
    with pytest.raises(ValueError, match="same shape"):
        hinge_2afc_loss(d0, d1[:2], p, margin)


def test_norm_floor_penalty_and_its_place_in_the_finetune_loss():
    from lipsim_tm.training.finetune import FinetuneStep, norm_floor_penalty

    embeddings = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)  # norms 5, 0.5, 0
    assert float(norm_floor_penalty(embeddings, 1.0)) == pytest.approx((0 + 0.5 + 1.0) / 3)
    assert float(norm_floor_penalty(embeddings, 0.0)) == 0.0

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).double()
    batch = [torch.randn(2, 4, dtype=torch.float64) for _ in range(3)] + [torch.tensor([1.0, 0.0])]
    plain, _ = FinetuneStep(margin=0.1)(model, batch)
    floored, count = FinetuneStep(margin=0.1, norm_floor=10.0, norm_weight=0.5)(model, batch)
    expected = 0.5 * float(norm_floor_penalty(model(torch.cat(batch[:3])), 10.0))
    assert count == 6
    assert float(floored - plain) == pytest.approx(expected)


def test_evaluation_agrees_with_a_direct_computation(photos_dir):
    from lipsim_tm.data import Synthetic2AFCDataset
    from lipsim_tm.metrics import Certified2AFCAccuracy

    torch.manual_seed(0)
    backbone = LipSimBackbone("tiny32")
    dataset = Synthetic2AFCDataset(photos_dir, image_size=32, length=12, seed=0)
    radii = (0.0, 0.01, 10.0)
    metric = evaluate_2afc(backbone, dataset, radii=radii, batch_size=5)
    agree, certified = [], {eps: [] for eps in radii}
    for i in range(12):
        ref, img0, img1, p = dataset[i]
        with torch.no_grad():
            f = backbone(torch.stack([ref, img0, img1])).double()
        phi = torch.cat([f, torch.ones(3, 1, dtype=torch.float64)], 1)
        phi = phi / phi.norm(dim=1, keepdim=True)
        d0, d1 = 1 - phi[0] @ phi[1], 1 - phi[0] @ phi[2]
        agree.append(float((d0 < d1) * (1 - p) + (d1 < d0) * p))
        # Distance from phi[0] to the bisecting hyperplane of phi[1], phi[2], by projection.
        normal = (phi[2] - phi[1]) / (phi[2] - phi[1]).norm()
        radius = abs(float((phi[0] - (phi[1] + phi[2]) / 2) @ normal))
        for eps in radii:
            certified[eps].append(float((d1 < d0) == (p > 0.5)) * (radius > eps))
    assert metric["score_2afc"] == pytest.approx(np.mean(agree), abs=1e-6)
    for eps in radii:
        assert metric[f"certified_2afc@{eps:.4g}"] == pytest.approx(np.mean(certified[eps]), abs=1e-6)
    assert metric["certified_2afc@10"] == 0.0  # beyond any possible radius
    assert backbone.training  # evaluation restores the mode
    # v/||v|| (the released checkpoints' map) is evaluated, certificates included, by the metric's norm-aware rule
    plain = evaluate_2afc(backbone, dataset, normalization="plain", radii=(0.0, 0.01), batch_size=5)
    reference = Certified2AFCAccuracy(backbone, epsilons=(0.0, 0.01), normalization="plain")
    backbone.eval()
    for i in range(12):
        reference.update(*(t[None] for t in dataset[i]))
    backbone.train()
    assert plain == pytest.approx({key: float(value) for key, value in reference.compute().items()}, abs=1e-12)
    with pytest.raises(ValueError, match="no triplets to evaluate: the dataset is empty"):
        evaluate_2afc(backbone, dataset, max_triplets=0)


def test_checkpoint_manager_keeps_last_k_atomically(tmp_path):
    manager = CheckpointManager(tmp_path / "ck", keep_last=2)
    state = {"model": {"w": torch.ones(2)}, "optimizer": {}, "scheduler": {}, "epoch": 0, "batch_in_epoch": 0}
    for step in (5, 10, 15):
        manager.save({**state, "step": step, "rng": capture_rng_state()}, step)
    assert [p.name for p in manager.checkpoints()] == ["checkpoint-000000010.pt", "checkpoint-000000015.pt"]
    assert not [p for p in (tmp_path / "ck").iterdir() if p.suffix == ".tmp"]
    assert load_training_checkpoint(manager.latest())["step"] == 15
    (tmp_path / "ck" / "checkpoint-000000020.pt").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="cannot read training checkpoint"):
        load_training_checkpoint(manager.latest())
    with pytest.raises(ValueError, match="keep_last must be an int >= 1"):
        CheckpointManager(tmp_path, keep_last=0)


def test_rng_state_round_trip():
    import random

    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert torch.equal(first[2], second[2])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
        ({"epochs": 1.5}, TypeError, "epochs must be an int"),
        ({"precision": "fp8"}, ValueError, "precision must be one of"),
        ({"precision": "bf16", "dtype": "float64"}, ValueError, "needs dtype='float32'"),
        ({"precision": "fp16", "device": "cpu"}, ValueError, "fp16' needs CUDA"),
        ({"model": "huge"}, ValueError, "config must be one of"),
        ({"model_overrides": {"unshufle": 2}}, ValueError, "unknown LipSimConfig fields"),
        ({"betas": (0.5, 1.0)}, ValueError, r"betas\[1\] must be < 1"),
        ({"loss": "l1"}, ValueError, "loss must be one of"),
        ({"resize": 16}, ValueError, "resize must be >= the model input size 32"),
    ],
)
def test_distill_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DistillConfig(**{"output_dir": "out", "data_dir": "photos", "model": "tiny32", **kwargs})


def test_finetune_config_errors():
    with pytest.raises(ValueError, match="dataset must be one of"):
        FinetuneConfig(output_dir="o", data_dir="d", dataset="kadid")
    with pytest.raises(ValueError, match="train_split must be one of"):
        FinetuneConfig(output_dir="o", data_dir="d", dataset="nights", train_split="dev")
    with pytest.raises(ValueError, match="synthetic_families must be a non-empty subset"):
        FinetuneConfig(output_dir="o", data_dir="d", dataset="synthetic", synthetic_families=("rain",))


def test_teacher_cache_hits_misses_and_invalidation(tmp_path, photos_dir):
    calls = []

    def teacher(images):
        calls.append(images.shape[0])
        return images.mean(dim=(2, 3))

    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(photos_dir.rglob("*.png"))[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    dataset = ImageFolderDataset(folder, crop_size=32, seed=0, views_per_image=1)
    with pytest.raises(ValueError, match="teacher_id is required"):
        TeacherCache(tmp_path / "cache", teacher)
    cache = TeacherCache(tmp_path / "cache", teacher, "mean-rgb-v1")
    assert precompute_teacher_embeddings(dataset, cache, epochs=(0, 1), batch_size=2) == 3  # epoch 1 = same views
    items = [dataset[i] for i in range(3)]
    images, keys = torch.stack([x[0] for x in items]), [x[2] for x in items]
    assert torch.allclose(cache.embed(images, keys), images.mean(dim=(2, 3)))
    assert sum(calls) == 3
    assert cache.hits == 6
    # Another teacher id, or an edited file, are different keys.
    assert TeacherCache(tmp_path / "cache", teacher, "mean-rgb-v2").embed(images, keys).shape == (3, 3)
    os.utime(dataset.paths[0], ns=(1, 1))
    assert dataset[0][2] != keys[0]
    module_cache = TeacherCache(tmp_path / "cache", torch.nn.Linear(2, 2))
    assert module_cache.teacher_id.startswith("Linear:")


def test_csv_logger_appends_and_refuses_new_columns(tmp_path):
    log = CSVLogger(tmp_path / "log.csv")
    log.log({"step": 1, "loss": 0.5})
    CSVLogger(tmp_path / "log.csv").log({"step": 2, "loss": 0.25})
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,loss", "1,0.5", "2,0.25"]
    with pytest.raises(ValueError, match=r"columns \['lr'\]"):
        log.log({"step": 3, "lr": 0.1})


def test_progress_bar_without_tqdm_shows_loss_and_images_per_second(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    stream = io.StringIO()
    bar = ProgressBar(10, description="distill", stream=stream)
    bar.update(16, 0.123)
    bar.close()
    assert "distill 1/10 loss=0.123 img/s=" in stream.getvalue()


def test_stop_flag_first_signal_requests_a_stop_second_ctrl_c_interrupts():
    import signal

    from lipsim_tm.training.interrupt import StopFlag

    before = signal.getsignal(signal.SIGINT)
    stop = StopFlag()
    with stop.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        assert stop.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    fresh = StopFlag()
    with fresh.installed():
        os.kill(os.getpid(), signal.SIGINT)
        assert fresh.requested
        assert fresh.signal_name == "SIGINT"
