"""Official checkpoint loading (prefixes, aliases, strictness, bad files) and the lipsim-tm export format."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from lipsim_tm.models.backbone import LipSimBackbone, LipSimConfig
from lipsim_tm.models.checkpoints import io as checkpoint_io
from lipsim_tm.models.checkpoints.auto import load_backbone
from lipsim_tm.models.checkpoints.export import EXPORT_FORMAT, load_export, save_export, state_dict_sha256
from lipsim_tm.models.checkpoints.io import file_sha256
from lipsim_tm.models.checkpoints.official import (
    infer_official_config,
    load_official_checkpoint,
    official_to_backbone_state,
)

from oracle import TINY_OFFICIAL_SIZES, build_official_model, lipsim_config_fields, save_official_checkpoint

SIZES = TINY_OFFICIAL_SIZES
CONFIG = LipSimConfig(**lipsim_config_fields(**SIZES))


class NotACheckpoint:
    """An arbitrary object: weights-only unpickling must refuse it."""

    def __init__(self) -> None:
        self.payload = torch.zeros(3)


@pytest.fixture
def official() -> torch.nn.Module:
    return build_official_model(seed=11, **SIZES)


@pytest.fixture
def checkpoint(official: torch.nn.Module) -> dict[str, object]:
    """An official training checkpoint dict (as read back from disk)."""
    return {"epoch": 1, "global_step": 10, "model_state_dict": dict(official.state_dict()), "optimizer_state_dict": {}}


def expected_state(official: torch.nn.Module) -> dict[str, torch.Tensor]:
    """LipSimBackbone keys of the oracle's weights, built from the oracle's modules (not its state dict)."""
    net = official.module.model
    state = {}
    for i, conv in enumerate(net.convs):
        state |= {f"convs.{i}.{n}": getattr(conv, n).detach() for n in ("kernel", "bias", "q")}
    for k, dense in enumerate(list(net.linear)[1:]):
        state |= {f"dense.{k}.{n}": getattr(dense, n).detach() for n in ("weight", "bias", "q")}
    return state


def assert_has_weights(backbone: LipSimBackbone, official: torch.nn.Module) -> None:
    loaded = backbone.state_dict()
    expected = expected_state(official)
    assert set(loaded) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(loaded[key], tensor), key


def rename(state: dict[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    return {new + k.removeprefix(old): v for k, v in state.items()}


# --- (b) accepted layouts -------------------------------------------------------------------------------------------


def test_official_file_loads_strictly(official: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt-10.pth"
    save_official_checkpoint(official, path)
    backbone = load_official_checkpoint(path, config=CONFIG)
    assert not backbone.training
    assert_has_weights(backbone, official)


@pytest.mark.parametrize("prefix", ["module.model.", "module.backbone.", "model.", ""])
@pytest.mark.parametrize("wrapped", [True, False], ids=["training-checkpoint", "bare-state-dict"])
def test_prefixes_and_bare_state_dicts(official: torch.nn.Module, prefix: str, wrapped: bool, tmp_path: Path) -> None:
    state = rename(dict(official.state_dict()), "module.model.", prefix)
    path = tmp_path / "weights.pth"
    torch.save({"epoch": 0, "global_step": 0, "model_state_dict": state} if wrapped else state, path)
    assert_has_weights(load_backbone(path, config=CONFIG), official)


@pytest.mark.parametrize("family", ["convs-linear", "base"])
def test_single_alias_family_is_accepted(official: torch.nn.Module, family: str) -> None:
    keep = re.compile(r"module\.model\.(convs|linear)\." if family == "convs-linear" else r"module\.model\.base\.")
    state = {k: v for k, v in official.state_dict().items() if keep.match(k)}
    assert len(state) == 12
    assert_has_weights(load_backbone(state, config=CONFIG), official)


def test_config_is_inferred_from_shapes(official: torch.nn.Module) -> None:
    state = official_to_backbone_state(official.state_dict())
    assert infer_official_config(state, out_features=20) == CONFIG
    with pytest.raises(ValueError, match="out_features=1792 exceeds the dense width 32; pass config="):
        load_backbone(official.state_dict())


# --- (c) errors -----------------------------------------------------------------------------------------------------


def test_alias_disagreement(checkpoint: dict) -> None:
    state = checkpoint["model_state_dict"]
    state["module.model.base.1.1.kernel"] = state["module.model.base.1.1.kernel"].clone()
    state["module.model.base.1.1.kernel"][0, 0, 0, 0] += 1e-6
    with pytest.raises(
        ValueError,
        match=r"aliases module\.model\.convs\.1\.kernel and module\.model\.base\.1\.1\.kernel of parameter "
        r"convs\.1\.kernel disagree",
    ):
        load_backbone(checkpoint, config=CONFIG)


def test_missing_alias(checkpoint: dict) -> None:
    del checkpoint["model_state_dict"]["module.model.base.2.1.weight"]
    with pytest.raises(ValueError, match=r"missing keys: alias of module\.model\.linear\.1\.weight \(-> dense\.0"):
        load_backbone(checkpoint, config=CONFIG)


def test_missing_parameter(checkpoint: dict) -> None:
    for key in ("module.model.linear.2.q", "module.model.base.2.2.q"):
        del checkpoint["model_state_dict"][key]
    with pytest.raises(ValueError, match=r"missing keys \(1\): dense\.1\.q"):
        load_backbone(checkpoint, config=CONFIG)


def test_unexpected_key(checkpoint: dict) -> None:
    checkpoint["model_state_dict"]["module.model.head.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"unexpected keys: module\.model\.head\.weight"):
        load_backbone(checkpoint, config=CONFIG)


def test_extra_layer_is_unexpected(checkpoint: dict) -> None:
    state = checkpoint["model_state_dict"]
    for name in ("kernel", "bias", "q"):
        tensor = state[f"module.model.convs.1.{name}"].clone()
        state[f"module.model.convs.2.{name}"] = state[f"module.model.base.1.2.{name}"] = tensor
    with pytest.raises(ValueError, match=r"unexpected keys \(3\): convs\.2\.bias, convs\.2\.kernel, convs\.2\.q"):
        load_backbone(checkpoint, config=CONFIG)


def test_wrong_shape(checkpoint: dict) -> None:
    state = checkpoint["model_state_dict"]
    state["module.model.convs.1.kernel"] = state["module.model.base.1.1.kernel"] = torch.zeros(4, 8, 3, 3)
    with pytest.raises(
        ValueError, match=r"shape mismatches \(1\): convs\.1\.kernel: checkpoint \(4, 8, 3, 3\) vs model \(3, 8, 3, 3\)"
    ):
        load_backbone(checkpoint, config=CONFIG)


def test_wrong_architecture_for_small(official: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    save_official_checkpoint(official, path)
    with pytest.raises(ValueError, match=r"weights do not fit .*missing keys \(69\): convs\.2\.bias.*shape mismatches"):
        load_backbone(path, config="small")


def test_wrong_architecture_inferred(checkpoint: dict) -> None:
    state = checkpoint["model_state_dict"]
    state["module.model.convs.0.kernel"] = state["module.model.base.1.0.kernel"] = torch.zeros(3, 8, 5, 5)
    with pytest.raises(ValueError, match=r"wrong architecture: expected conv kernels .* got \(3, 8, 5, 5\)"):
        load_backbone(checkpoint)


def test_non_official_config_is_refused(checkpoint: dict) -> None:
    config = LipSimConfig(**{**lipsim_config_fields(**SIZES), "q_scaled_conv": True})
    with pytest.raises(ValueError, match=r"not an official LipSim layout: q_scaled_conv=True"):
        load_backbone(checkpoint, config=config)


def test_other_model_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ValueError, match=r"resnet\.pth'.*no official LipSim parameters found \(keys: weight, bias"):
        load_backbone(path)


def test_mixed_dtypes(checkpoint: dict) -> None:
    state = checkpoint["model_state_dict"]
    state["module.model.convs.0.q"] = state["module.model.base.1.0.q"] = state["module.model.convs.0.q"].double()
    with pytest.raises(ValueError, match=r"one floating dtype, got dtypes \['torch.float32', 'torch.float64'\]"):
        load_backbone(checkpoint, config=CONFIG)


def test_non_finite_weights(checkpoint: dict) -> None:
    state = checkpoint["model_state_dict"]
    state["module.model.linear.1.bias"][0, 3] = float("nan")  # the aliases share this tensor
    with pytest.raises(ValueError, match=r"non-finite \(nan or inf\) values in dense\.0\.bias"):
        load_backbone(checkpoint, config=CONFIG)


def test_truncated_file(official: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt-10.pth"
    save_official_checkpoint(official, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cannot read weights '.*model\.ckpt-10\.pth': it is corrupted, truncated"):
        load_backbone(path, config=CONFIG)


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage", bytes(range(256)) * 16], ids=["empty", "short", "bytes"])
def test_garbage_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"cannot read weights '.*garbage\.pth': it is corrupted, truncated"):
        load_backbone(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_arbitrary_pickle_is_refused(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "object.pkl"
    if writer == "torch.save":
        torch.save({"model_state_dict": NotACheckpoint()}, path)
    else:
        path.write_bytes(pickle.dumps(NotACheckpoint()))
    with pytest.raises(ValueError, match=r"cannot read weights '.*object\.pkl'"):
        load_backbone(path)


def test_weights_only_refusal_is_named(tmp_path: Path) -> None:
    path = tmp_path / "object.pth"
    torch.save(NotACheckpoint(), path)
    with pytest.raises(ValueError, match="weights-only loading refuses"):
        load_backbone(path)


def test_dict_without_tensors(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    torch.save({"epoch": 3, "notes": "hello"}, path)
    with pytest.raises(ValueError, match=r"notes\.pth'.*not a LipSim checkpoint: no 'model_state_dict'.*'epoch': int"):
        load_backbone(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "model.pth"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_backbone(path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_export(path)


def test_directory_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="expected a weights file, got the folder"):
        load_backbone(tmp_path)


def test_bad_argument_type() -> None:
    with pytest.raises(TypeError, match="path_or_state must be a path or a dict, got int"):
        load_backbone(3)  # type: ignore[arg-type]


# --- (d) export format ----------------------------------------------------------------------------------------------


def trained_like_backbone(config: str = "tiny32", seed: int = 0) -> LipSimBackbone:
    torch.manual_seed(seed)
    backbone = LipSimBackbone(config)
    with torch.no_grad():
        for param in backbone.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return backbone


def test_export_round_trip(tmp_path: Path) -> None:
    backbone = trained_like_backbone()
    path = tmp_path / "lipsim.pt"
    metadata = {"epochs": 3, "loss": 0.25, "notes": None, "margins": (0.2, 0.5), "data": {"name": "nights"}}
    digest = save_export(backbone, path, metadata=metadata)
    assert digest == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, loaded_metadata = load_export(path)
    assert not loaded.training
    assert loaded.config == backbone.config
    assert loaded_metadata == {**metadata, "margins": [0.2, 0.5]}
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), backbone.eval()(x))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == EXPORT_FORMAT == "lipsim-tm-export/1"
    assert payload["config"]["conv_stages"] == [2]
    assert payload["weights_sha256"] == state_dict_sha256(backbone.state_dict())


def test_export_keeps_dtype_and_auto_detects(tmp_path: Path) -> None:
    backbone = trained_like_backbone("tiny64").double()
    path = tmp_path / "lipsim64.pt"
    save_export(backbone, path)
    loaded = load_backbone(path)
    assert loaded.config == backbone.config
    assert {p.dtype for p in loaded.parameters()} == {torch.float64}
    with pytest.raises(ValueError, match=r"config=LipSimConfig\(input_size=32.* differs from the recorded"):
        load_backbone(path, config="tiny32")


def test_load_backbone_map_location(device: torch.device, tmp_path: Path) -> None:
    path = tmp_path / "lipsim.pt"
    save_export(trained_like_backbone(), path)
    loaded = load_backbone(path, map_location=device)
    assert {p.device.type for p in loaded.parameters()} == {device.type}


def test_tampered_export_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "lipsim.pt"
    save_export(trained_like_backbone(), path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["dense.1.weight"][3, 5] += 1e-3
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"lipsim\.pt'.*weights_sha256 mismatch"):
        load_export(path)
    with pytest.raises(ValueError, match="weights_sha256 mismatch"):
        load_backbone(path)


def test_wrong_format_tag(tmp_path: Path) -> None:
    path = tmp_path / "lipsim.pt"
    save_export(trained_like_backbone(), path)
    payload = torch.load(path, weights_only=True)
    payload["format"] = "lipsim-tm-export/99"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"expected export format 'lipsim-tm-export/1', got 'lipsim-tm-export/99'"):
        load_export(path)


def test_official_checkpoint_is_not_an_export(official: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt-10.pth"
    save_official_checkpoint(official, path)
    with pytest.raises(ValueError, match="expected export format 'lipsim-tm-export/1', got None"):
        load_export(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lipsim.pt"
    first = save_export(trained_like_backbone(seed=0), path)
    second = save_export(trained_like_backbone(seed=1), path)  # replaces the file
    assert first != second
    assert os.listdir(tmp_path) == ["lipsim.pt"]

    def failing_save(obj: object, f: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_io.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_export(trained_like_backbone(seed=2), path)
    assert os.listdir(tmp_path) == ["lipsim.pt"]
    assert file_sha256(path) == second


def test_export_argument_errors(tmp_path: Path) -> None:
    backbone = trained_like_backbone()
    with pytest.raises(TypeError, match=r"metadata\['run'\]\['optimizer'\] must hold only None, .* got SGD"):
        save_export(
            backbone, tmp_path / "a.pt", metadata={"run": {"optimizer": torch.optim.SGD(backbone.parameters())}}
        )
    with pytest.raises(TypeError, match="backbone must be a LipSimBackbone, got Linear"):
        save_export(torch.nn.Linear(2, 2), tmp_path / "a.pt")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"its folder .* does not exist"):
        save_export(backbone, tmp_path / "missing" / "a.pt")
    assert os.listdir(tmp_path) == []


def test_state_dict_hash_is_canonical() -> None:
    state = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(2, dtype=torch.float64)}
    digest = state_dict_sha256(state)
    assert state_dict_sha256(dict(reversed(state.items()))) == digest  # key order
    assert state_dict_sha256({"b": torch.arange(6.0).reshape(3, 2).T.T, "a": state["a"]}) != digest  # shape
    assert state_dict_sha256({**state, "b": state["b"].T.contiguous().T}) == digest  # strides
    assert state_dict_sha256({**state, "a": state["a"].float()}) != digest  # dtype
    assert state_dict_sha256({"c": state["b"], "a": state["a"]}) != digest  # name
    flipped = state["b"].clone()
    flipped.view(torch.int32)[1, 1] ^= 1  # one bit of one element
    assert state_dict_sha256({**state, "b": flipped}) != digest
