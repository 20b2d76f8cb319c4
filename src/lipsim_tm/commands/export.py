"""``lipsim export``: inference weights (with metadata and sha256) from a training checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = (
    "Read a training checkpoint (checkpoints/checkpoint-<step>.pt written by 'lipsim train') and write "
    "the student's weights in the export format the metrics load (configuration, weights, weights "
    "sha256 and a training summary as metadata). Prints the export file's sha256."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument(
        "checkpoint", help="training checkpoint file, or a run's output folder (its newest readable checkpoint)"
    )
    parser.add_argument("output", help="export file to write (replaced atomically if it exists)")


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.models.backbone import LipSimBackbone
    from lipsim_tm.models.checkpoints.export import config_from_dict, save_export
    from lipsim_tm.training.checkpointing import CheckpointManager, load_training_checkpoint

    path = Path(args.checkpoint)
    if path.is_dir():
        found = CheckpointManager(path / "checkpoints").newest_readable() or CheckpointManager(path).newest_readable()
        if found is None:
            raise FileNotFoundError(f"no checkpoint-<step>.pt in {path} or {path / 'checkpoints'}")
        path, state, skipped = found
        for line in skipped:
            print(f"lipsim export: note: skipping {line}; exporting {path.name}", file=sys.stderr)
    else:
        state = load_training_checkpoint(path)
    backbone = LipSimBackbone(config_from_dict(state["model_config"], source=str(path)))
    backbone.load_state_dict(state["model"])
    metadata = {
        "training": {"checkpoint": str(path), "steps": state["step"], "epoch": state["epoch"]},
        "config": state.get("config", {}),
    }
    digest = save_export(backbone, args.output, metadata=metadata)
    print(f"{args.output} sha256={digest}")
    return 0
