"""A run never loses or mislabels work: no silent reuse of a run folder, resumption only with the checkpoint's
settings (or an explicit override that is recorded and applied), a teacher cache keyed on the teacher's content,
and the smaller edges (files' permissions, elapsed time, epochs vs max steps, init-from architecture, names)."""

from __future__ import annotations

import csv
import io
import os
import stat
import textwrap
from pathlib import Path

import pytest
import torch

from lipsim_tm.cli import main
from lipsim_tm.models.checkpoints.export import load_export
from lipsim_tm.training.checkpointing import load_training_checkpoint

TINY = ["--model", "tiny32", "--no-progress", "--device", "cpu", "--threads", "1"]


def run(argv: list[str]) -> int:
    """``lipsim`` in-process; the exit code, also of an argument error (argparse exits)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


def distill(out: Path, photos: Path, *extra: str, teacher: str = "training_fixtures:make_teacher") -> int:
    argv = ["train", "distill", "--out", str(out), "--data-dir", str(photos), "--teacher", teacher]
    return run([*argv, "--batch-size", "4", "--lr", "0.01", "--warmup-steps", "0", *TINY, *extra])


def _steps(path: Path) -> list[int]:
    with path.open(newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_a_folder_holding_a_run_is_refused_without_resume(tmp_path, photos_dir, capsys):
    out = tmp_path / "run"
    assert distill(out, photos_dir, "--max-steps", "4", "--log-every", "1") == 0
    export = load_export(out / "export.pt")
    assert distill(out, photos_dir, "--max-steps", "2") == 2
    err = capsys.readouterr().err
    assert "holds an earlier run (log.csv, export.pt, checkpoints)" in err
    assert "--resume latest" in err
    assert "--overwrite" in err
    assert load_export(out / "export.pt")[1]["training"]["steps"] == export[1]["training"]["steps"]
    assert _steps(out / "log.csv") == [1, 2, 3, 4]


def test_overwrite_moves_the_earlier_run_aside_and_never_deletes_it(tmp_path, photos_dir, capsys):
    out = tmp_path / "run"
    assert distill(out, photos_dir, "--max-steps", "4") == 0
    first = (out / "export.pt").read_bytes()
    assert distill(out, photos_dir, "--max-steps", "2", "--overwrite", "--log-every", "1") == 0
    [aside] = tmp_path.glob("run.previous-*")
    assert (aside / "export.pt").read_bytes() == first
    assert load_export(out / "export.pt")[1]["training"]["steps"] == 2
    assert _steps(out / "log.csv") == [1, 2]  # a fresh log, not appended to the old one
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-000000002.pt"]
    assert "moved the earlier run" in capsys.readouterr().err


def test_resuming_a_finished_run_leaves_its_export_untouched(tmp_path, photos_dir, capsys):
    out = tmp_path / "run"
    assert distill(out, photos_dir, "--max-steps", "4") == 0
    before = (out / "export.pt").read_bytes()
    mtime = (out / "export.pt").stat().st_mtime_ns
    assert distill(out, photos_dir, "--max-steps", "4", "--resume", "latest") == 0
    assert (out / "export.pt").read_bytes() == before
    assert (out / "export.pt").stat().st_mtime_ns == mtime
    assert "nothing to train: the run is complete at step 4" in capsys.readouterr().out


def test_resume_with_changed_settings_is_refused_with_the_differences(tmp_path, photos_dir, capsys):
    out = tmp_path / "run"
    assert distill(out, photos_dir, "--max-steps", "2", "--checkpoint-every", "2") == 0
    code = distill(out, photos_dir, "--max-steps", "4", "--resume", "latest", "--batch-size", "2", "--lr", "0.5")
    assert code == 2
    err = capsys.readouterr().err
    for difference in ("max_steps: 2 -> 4", "batch_size: 4 -> 2", "lr: 0.01 -> 0.5"):
        assert difference in err
    assert "--allow-changed-settings" in err


def test_allowed_changes_apply_and_are_recorded(tmp_path, photos_dir):
    out = tmp_path / "run"
    assert distill(out, photos_dir, "--max-steps", "2", "--checkpoint-every", "1", "--log-every", "1") == 0
    code = distill(
        out, photos_dir, "--max-steps", "4", "--resume", "latest", "--lr", "0.5", "--allow-changed-settings",
        "--checkpoint-every", "1", "--log-every", "1",
    )  # fmt: skip
    assert code == 0
    metadata = load_export(out / "export.pt")[1]
    assert metadata["config"]["lr"] == 0.5
    [resume] = metadata["training"]["resumes"]
    assert resume["step"] == 2
    assert resume["changed"] == {"lr": [0.01, 0.5], "max_steps": [2, 4], "epochs": [2, 4]}  # epochs follow max_steps
    state = load_training_checkpoint(out / "checkpoints" / "checkpoint-000000003.pt")
    lrs = [group["lr"] for group in state["optimizer"]["param_groups"]]
    assert lrs[0] > 0.01  # the new peak lr (cosine over the new 4 steps) is in use
    with (out / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[2]["lr"]) == pytest.approx(0.5 * 0.5 * (1 + torch.cos(torch.tensor(3 / 4 * torch.pi)).item()))


def test_resume_continues_the_elapsed_time_and_keeps_one_row_per_step(tmp_path, photos_dir):
    out = tmp_path / "run"
    options = ["--max-steps", "4", "--epochs", "2", "--checkpoint-every", "2", "--log-every", "1"]
    assert distill(out, photos_dir, *options) == 0
    elapsed = {int(r["step"]): float(r["elapsed_s"]) for r in csv.DictReader((out / "log.csv").open(newline=""))}
    os.remove(out / "export.pt")
    for name in ("checkpoint-000000004.pt", "checkpoint-000000003.pt"):
        (out / "checkpoints" / name).unlink(missing_ok=True)
    assert distill(out, photos_dir, *options, "--resume", "latest") == 0
    rows = list(csv.DictReader((out / "log.csv").open(newline="")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # steps 3, 4 redone once, not appended twice
    assert float(rows[2]["elapsed_s"]) >= elapsed[2]  # the clock continues from the checkpoint


def test_files_get_ordinary_permissions(tmp_path, photos_dir):
    out = tmp_path / "run"
    assert distill(out, photos_dir, "--max-steps", "2") == 0
    umask = os.umask(0)
    os.umask(umask)
    for path in (out / "export.pt", next((out / "checkpoints").iterdir())):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_max_steps_alone_is_not_capped_by_the_default_epochs(tmp_path, photos_dir):
    out = tmp_path / "run"  # 8 photos, batch 4: 2 steps per epoch
    assert distill(out, photos_dir, "--max-steps", "5") == 0
    assert load_export(out / "export.pt")[1]["training"]["steps"] == 5


def test_explicit_epochs_below_max_steps_are_announced(tmp_path, photos_dir, capsys):
    assert distill(tmp_path / "run", photos_dir, "--max-steps", "5", "--epochs", "1") == 0
    assert "epochs=1 (2 steps each) ends the run after 2 steps, before max_steps=5" in capsys.readouterr().err


def test_init_from_supplies_the_architecture(tmp_path, photos_dir):
    assert distill(tmp_path / "a", photos_dir, "--max-steps", "1") == 0
    argv = ["train", "distill", "--out", str(tmp_path / "b"), "--data-dir", str(photos_dir),
            "--teacher", "training_fixtures:make_teacher", "--batch-size", "4", "--max-steps", "1",
            "--no-progress", "--device", "cpu", "--init-from", str(tmp_path / "a" / "export.pt")]  # fmt: skip
    assert run(argv) == 0  # no --model: tiny32 from the export
    assert load_export(tmp_path / "b" / "export.pt")[0].config.input_size == 32


def test_registered_names_load_as_teacher_and_backbone():
    from lipsim_tm import load_backbone
    from lipsim_tm.training.distill import load_teacher

    assert load_backbone("default").config.input_size == 224
    teacher, identity = load_teacher("export:default")
    assert identity.startswith("export:")
    assert not any(p.requires_grad for p in teacher.parameters())


def test_a_fixed_size_teacher_gets_the_students_view_resized(tmp_path, photos_dir):
    """``--teacher export:default`` (224 px) with a tiny32 student (32-px views): the teacher sees each view resized
    to 224 (bicubic, antialiased, clamped), as the DreamSim teacher does."""
    import torch.nn.functional as F

    from lipsim_tm import load_backbone
    from lipsim_tm.training.distill import load_teacher

    teacher, _ = load_teacher("export:default")
    views = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    resized = F.interpolate(views, size=(224, 224), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        assert torch.equal(teacher(views), load_backbone("default")(resized))
        assert torch.equal(teacher(resized), load_backbone("default")(resized))  # its own size: unchanged
    argv = ["train", "distill", "--out", str(tmp_path / "run"), "--data-dir", str(photos_dir),
            "--teacher", "export:default", "--model", "tiny32", "--set-model", "out_features=512",
            "--batch-size", "4", "--max-steps", "1", "--warmup-steps", "1", *TINY[2:]]  # fmt: skip
    assert run(argv) == 0


def test_a_teacher_factory_in_the_current_folder_gets_a_hint(tmp_path, monkeypatch):
    from lipsim_tm.training.distill import load_teacher

    (tmp_path / "myteachers.py").write_text("def make():\n    return lambda x: x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".", str(tmp_path))])
    with pytest.raises(ValueError, match=r"current folder.*PYTHONPATH=\."):
        load_teacher("myteachers:make")


def test_changing_a_teachers_weights_changes_its_cache_key(tmp_path, monkeypatch, photos_dir):
    from lipsim_tm.training.distill import load_teacher

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "tm.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            import torch
            from training_fixtures import LinearTeacher

            def make():
                teacher = LinearTeacher()
                scale = float((Path(__file__).parent / "scale.txt").read_text())
                teacher.weight.mul_(scale)
                return teacher
            """
        )
    )
    (package / "scale.txt").write_text("1.0")
    monkeypatch.syspath_prepend(str(package))
    _, first = load_teacher("tm:make")
    (package / "scale.txt").write_text("1.5")
    _, second = load_teacher("tm:make")
    assert first != second  # weights changed: new key
    assert first.split("|")[1] == second.split("|")[1]  # same code
    cache = tmp_path / "cache"
    losses = []
    for scale in ("1.0", "1.5"):
        (package / "scale.txt").write_text(scale)
        out = tmp_path / f"run{scale}"
        assert distill(out, photos_dir, "--max-steps", "1", "--log-every", "1", "--teacher-cache", str(cache),
                       teacher="tm:make") == 0  # fmt: skip
        losses.append(float(next(csv.DictReader((out / "log.csv").open(newline="")))["loss"]))
    assert losses[0] != pytest.approx(losses[1], rel=1e-4)  # the second run did not read the first's embeddings


def test_progress_is_labelled_by_stage_and_plain_off_a_terminal(tmp_path, photos_dir, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    argv = ["train", "distill", "--out", str(tmp_path / "run"), "--data-dir", str(photos_dir),
            "--teacher", "training_fixtures:make_teacher", "--batch-size", "4", "--max-steps", "4",
            "--model", "tiny32", "--device", "cpu"]  # fmt: skip
    assert run(argv) == 0
    text = stream.getvalue()
    assert "\r" not in text
    assert "distill 4/4" in text
    assert "DistillConfig" not in text


@pytest.mark.parametrize("is_main", [True, False])
def test_an_interrupted_rank_exits_130_and_only_rank_0_speaks(is_main, capsys):
    from lipsim_tm.commands.train import _report
    from lipsim_tm.training.trainer import TrainResult

    result = TrainResult(
        model=None, step=7, epoch=0, interrupted=True, last_checkpoint=Path("c.pt") if is_main else None,
        is_main=is_main,
    )  # fmt: skip
    assert _report(result) == 130
    out = capsys.readouterr().out
    assert out == ("interrupted at step 7; checkpoint: c.pt\n" if is_main else "")


def test_a_setting_added_after_a_checkpoint_was_written_resumes_at_its_default():
    """A checkpoint from before ``min_votes`` existed records no value: it was trained with the default (6)."""
    from lipsim_tm.training.config import FinetuneConfig
    from lipsim_tm.training.trainer import _changed_settings

    config = FinetuneConfig(dataset="nights", data_dir="d", output_dir="o")
    saved = {k: v for k, v in config.to_dict().items() if k != "min_votes"}
    assert _changed_settings(config, saved) == {}
    changed = FinetuneConfig(dataset="nights", data_dir="d", output_dir="o", min_votes=3)
    assert _changed_settings(changed, saved) == {"min_votes": [6, 3]}


def test_finetune_min_votes_selects_the_nights_rows(tmp_path):
    from dataset_writers import write_nights
    from lipsim_tm.training.config import FinetuneConfig
    from lipsim_tm.training.finetune import build_2afc_datasets

    rows = [{"votes": v, "p": 1.0, "split": s} for v, s in [(6, "train"), (2, "train"), (7, "train"), (1, "val")]]
    root = write_nights(tmp_path / "nights", rows, size=16)
    default = FinetuneConfig(dataset="nights", data_dir=str(root), output_dir=str(tmp_path / "o"), val_split=None)
    assert len(build_2afc_datasets(default, 16)[0]) == 2
    single = FinetuneConfig(dataset="nights", data_dir=str(root), output_dir="o", val_split="val", min_votes=1)
    train, val = build_2afc_datasets(single, 16)
    assert (len(train), len(val)) == (3, 1)
