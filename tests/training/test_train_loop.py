"""The training loop on every device and precision, and its KeyboardInterrupt handling."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm.data import ImageFolderDataset
from lipsim_tm.distributed import DistributedContext
from lipsim_tm.training import DistillConfig, run_distill
from lipsim_tm.training.checkpointing import load_training_checkpoint
from lipsim_tm.training.distill import DistillStep
from lipsim_tm.training.trainer import build_student, train
from training_fixtures import LinearTeacher


def config(tmp_path, photos_dir, **kwargs) -> DistillConfig:
    base = {
        "output_dir": str(tmp_path), "data_dir": str(photos_dir), "model": "tiny32", "batch_size": 4, "epochs": 1,
        "warmup_steps": 1, "progress": False, "log_every": 1, "checkpoint_every": 100,
    }  # fmt: skip
    return DistillConfig(**{**base, **kwargs})


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_two_steps_on_each_device_and_precision(tmp_path, photos_dir, device, precision):
    if precision == "fp16" and device.type == "cpu":
        with pytest.raises(ValueError, match="fp16' needs CUDA"):
            config(tmp_path, photos_dir, precision=precision, device=device.type)
        return
    cfg = config(tmp_path, photos_dir, precision=precision, device=device.type)
    teacher = LinearTeacher().float()
    seed_model = build_student(cfg)
    before = {k: v.clone() for k, v in seed_model.state_dict().items()}
    result = run_distill(cfg, teacher)
    assert result.step == 2
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in result.history)
    params = result.model.state_dict()
    assert next(iter(params.values())).device.type == device.type
    assert params["dense.0.weight"].dtype == torch.float32  # autocast leaves the parameters in float32
    assert not torch.equal(params["dense.0.weight"].cpu(), before["dense.0.weight"])


def test_keyboard_interrupt_between_updates_saves_a_checkpoint_and_resumes_exactly(tmp_path, photos_dir):
    teacher = LinearTeacher()
    context = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))

    def run(out, resume=None, interrupt_at=None):
        cfg = config(out, photos_dir, epochs=2, resume=resume)
        dataset = ImageFolderDataset(photos_dir, crop_size=32, seed=cfg.seed)
        step = DistillStep(teacher)
        calls = []

        def step_fn(model, batch):
            calls.append(1)
            if len(calls) == interrupt_at:
                raise KeyboardInterrupt
            return step(model, batch)

        return train(cfg, model=build_student(cfg), dataset=dataset, step_fn=step_fn, context=context)

    reference = run(tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", interrupt_at=3)  # during the third step's forward: two steps are complete
    saved = load_training_checkpoint(tmp_path / "cut" / "checkpoints" / "checkpoint-000000002.pt")
    assert (saved["step"], saved["epoch"], saved["batch_in_epoch"]) == (2, 1, 0)
    resumed = run(tmp_path / "cut", resume="latest")
    assert resumed.step == reference.step == 4
    for name, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_loader_workers_do_not_change_the_result(tmp_path, photos_dir):
    teacher = LinearTeacher()
    results = [
        run_distill(config(tmp_path / f"w{workers}", photos_dir, num_workers=workers, epochs=2), teacher)
        for workers in (0, 2)
    ]
    for name, value in results[0].model.state_dict().items():
        assert torch.equal(results[1].model.state_dict()[name], value), name
