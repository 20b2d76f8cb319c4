"""``lipsim train distill|finetune``: the training entry point, for one process or under torchrun.

The options are generated from the configuration dataclasses (:mod:`lipsim_tm.training.config`), which hold each
setting's name, type, default and help. Run on N processes with ``torchrun --nproc_per_node=N -m lipsim_tm.cli
train ...`` (or ``torchrun --nproc_per_node=N $(which lipsim) train ...``); ``--batch-size`` is the global batch.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import types
import typing
from typing import Any

from lipsim_tm.commands._options import add_renamed, eps_value, positive_int
from lipsim_tm.training.config import GROUPS, DistillConfig, FinetuneConfig, TrainConfig
from lipsim_tm.training.teachers import BUILT_IN_TEACHERS

DISTILL = (
    "Distil a teacher's embedding into the student: loss = mean of the per-image RMSE (or 1 - cos) on the plain crop"
    " and on its colour-jittered copy, both against the teacher's embedding of the plain crop. Defaults are the"
    " official recipe (Adam lr 0.01, betas 0.5 0.9, 2000 warm-up steps, cosine, batch 512, 40 epochs)."
)
FINETUNE = (
    "Fine-tune on 2AFC triplets (NIGHTS, BAPPS or synthetic from photos) with the hinge loss"
    " max(0, margin - (d0 - d1)(2 round(p) - 1)) on sound normalised embeddings; natural and certified 2AFC"
    " scores of the validation split are written to eval.csv after every epoch."
)
TEACHER_HELP = (
    "a built-in teacher: "
    + "; ".join(f"'{name}': {text}" for name, text in BUILT_IN_TEACHERS.items())
    + " (pip install 'lipsim-tm[teachers]'; weights downloaded on first use to <cache>/teachers/dreamsim,"
    " $LIPSIM_CACHE_DIR moves the cache); or 'export:PATH' (a LipSim export or official checkpoint); or"
    " 'package.module:factory', a function called with no arguments that returns a callable (N, 3, S, S) images"
    " in [0, 1] -> (N, D) embeddings. D must equal the student's out_features (--set-model out_features=D)"
)


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError) as error:
        raise argparse.ArgumentTypeError(
            f"VALUE of {key} must be a Python literal (e.g. 2, 0.25, (4, 0)), got {value!r}"
        ) from error


def _shown(value: Any) -> str:
    """A default as a user would type it: sequences space-separated."""
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def _add_setting(group: argparse._ArgumentGroup, item: dataclasses.Field, annotation: Any) -> None:
    """One option from a config field: its flag, type (from the annotation), default and help."""
    meta = item.metadata
    flag = meta["flag"] or "--" + item.name.replace("_", "-")
    factory = item.default_factory
    default = factory() if factory is not dataclasses.MISSING else item.default  # type: ignore[misc]
    required = default is dataclasses.MISSING
    if meta["shown_default"] is not None:
        shown: str | None = meta["shown_default"].format(default=_shown(default))
    else:
        shown = None if required or default in (None, {}) or isinstance(default, bool) else _shown(default)
    help_text = meta["help"] + ("" if shown is None else f" (default: {shown})")
    metavar = meta["metavar"] or (None if meta["choices"] else flag.removeprefix("--").replace("-", "_").upper())
    options: dict[str, Any] = {"dest": item.name, "help": help_text, "metavar": metavar}
    if isinstance(annotation, types.UnionType):  # X | None: the option's type is X
        annotation = next(t for t in typing.get_args(annotation) if t is not type(None))
    kind, args = typing.get_origin(annotation) or annotation, typing.get_args(annotation)
    if item.name == "model_overrides":
        group.add_argument(flag, action="append", type=_override, default=[], **options)
        return
    if kind is bool:
        if default:  # an option that turns the setting off: --no-progress, --no-jitter
            flag = "--no-" + item.name.replace("_", "-")
        group.add_argument(flag, action="store_false" if default else "store_true", dest=item.name, help=help_text)
        return
    if kind is tuple:
        options["nargs"] = len(args) if Ellipsis not in args else "+"
        kind = args[0]
    if item.name in ("model", "epochs"):  # resolved from --init-from / --max-steps when not given
        default = None
    parse = eps_value if meta["parse"] == "eps" else meta["parse"]
    group.add_argument(
        flag,
        type=parse or kind,
        choices=meta["choices"],
        default=None if required else default,
        required=required and meta["old_flag"] is None,  # with an old spelling: checked in _config
        **options,
    )
    if meta["old_flag"] is not None:
        add_renamed(group, meta["old_flag"], flag)


def _add_config_arguments(parser: argparse.ArgumentParser, cls: type[TrainConfig]) -> None:
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        _add_setting(groups[item.metadata["group"]], item, hints[item.name])
    groups["run"].add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads per training process (default: torch's choice; on a CPU shared with other jobs 1 is"
        " often several times faster, see benchmarks/RESULTS-training.md)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train a LipSim student. Stage 1: 'distill'; stage 2: 'finetune'."
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    distill = stages.add_parser(
        "distill", help="distil a teacher embedding into the 1-Lipschitz student", description=DISTILL
    )
    _add_config_arguments(distill, DistillConfig)
    distill.add_argument("--teacher", required=True, metavar="SPEC", help=TEACHER_HELP)
    finetune = stages.add_parser(
        "finetune", help="fine-tune on 2AFC triplets with the hinge loss", description=FINETUNE
    )
    _add_config_arguments(finetune, FinetuneConfig)


def _config(args: argparse.Namespace, cls: type[TrainConfig]) -> TrainConfig:
    """The configuration the options name: ``--model`` (absent: the architecture of ``--init-from``) and ``--epochs``
    (absent: enough for ``--max-steps``) resolved, ``--threads`` applied, the run folder created (or refused)."""
    from lipsim_tm.commands._runtime import apply_threads
    from lipsim_tm.files import make_folder

    apply_threads(args)
    if args.output_dir is not None:  # before any data, teacher or model is read
        make_folder(args.output_dir, "run folder")
    for item in dataclasses.fields(cls):
        unset = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if unset and getattr(args, item.name) is None:
            raise ValueError(f"the option {item.metadata['flag'] or '--' + item.name} is required")
    values = {item.name: getattr(args, item.name) for item in dataclasses.fields(cls)}
    values["model_overrides"] = dict(args.model_overrides)
    if args.model is None and args.init_from is not None:
        from lipsim_tm.models.checkpoints.export import config_to_dict
        from lipsim_tm.models.weights import load_backbone

        values["model_overrides"] = {
            **config_to_dict(load_backbone(args.init_from).config),
            **values["model_overrides"],
        }
    if args.model is None:
        values.pop("model")
    if args.epochs is None:
        values.pop("epochs")
        if args.max_steps is not None:
            values["epochs"] = max(args.max_steps, 1)
    return cls(**values)


def run(args: argparse.Namespace) -> int:
    from lipsim_tm.distributed import init_distributed, shutdown_distributed

    try:
        if args.stage == "distill":
            from lipsim_tm.training.distill import load_teacher_in_turn, run_distill

            config = _config(args, DistillConfig)
            context = init_distributed(config.device)
            teacher, teacher_id = load_teacher_in_turn(args.teacher, context)
            result = run_distill(config, teacher, teacher_id=teacher_id, context=context)
        else:
            from lipsim_tm.training.finetune import run_finetune

            result = run_finetune(_config(args, FinetuneConfig))
    finally:
        shutdown_distributed()
    return _report(result)


def _report(result: Any) -> int:
    """One line from rank 0 (the others stay silent); exit code 130 when interrupted."""
    if result.interrupted:
        if result.is_main:
            print(f"interrupted at step {result.step}; checkpoint: {result.last_checkpoint}")
        return 130
    if not result.is_main:
        return 0
    if result.resumed_complete:
        print(f"nothing to train: the run is complete at step {result.step}; its export is unchanged")
    elif result.export_path is not None:
        print(f"done: {result.step} steps; export {result.export_path} sha256={result.export_sha256}")
    return 0
