"""``lipsim 2afc``: the decision and radii against the functional API and a closed-form reference."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import WEIGHTS, photo_array, pil_tensor, run_cli, run_json
from PIL import Image

from lipsim_tm.functional import lipsim_embedding, resize_operator_norm
from lipsim_tm.functional.certificates.policy import RELATIVE_SLACK, embedding_slack


@pytest.fixture
def triplet(tmp_path):
    """REF, X0 (REF with mild noise: closer) and X1 (another picture), all 40x48 RGB PNGs."""
    ref = photo_array(20, 40, 48)
    noisy = (
        ref.astype(int) + (torch.randn(40, 48, 3, generator=torch.Generator().manual_seed(0)) * 6).round().int().numpy()
    )
    paths = [tmp_path / name for name in ("ref.png", "x0.png", "x1.png")]
    Image.fromarray(ref).save(paths[0])
    Image.fromarray(noisy.clip(0, 255).astype("uint8")).save(paths[1])
    Image.fromarray(photo_array(21, 40, 48)).save(paths[2])
    return paths


def argv(paths, *extra: str) -> list[str]:
    return ["2afc", *(str(p) for p in paths), "--weights", WEIGHTS, *extra]


@pytest.mark.parametrize("certificate", ["norm_aware", "plain"])
def test_swapping_the_candidates_swaps_the_decision_and_keeps_the_radii(triplet, capsys, certificate):
    result = run_json(argv(triplet, "--certificate", certificate), capsys)
    swapped = run_json(argv([triplet[0], triplet[2], triplet[1]], "--certificate", certificate), capsys)
    assert result["closer"] == "img0"
    assert swapped["closer"] == "img1"
    assert (swapped["d0"], swapped["d1"]) == (result["d1"], result["d0"])
    for key in ("radius_reference", "radius_all"):
        assert swapped[key] == pytest.approx(result[key], rel=1e-12)
    assert result["radius_reference"] > result["radius_all"] > 0
    assert result["certificate"] == certificate


def test_files_of_different_sizes_use_each_bound_closed_form(tmp_path, capsys):
    """Plain rule, reference 40x48 RGB, candidates 30x30 RGB and 44x36 grey: radii from the closed form."""
    paths = [tmp_path / name for name in ("ref.png", "x0.png", "x1.png")]
    Image.fromarray(photo_array(30, 40, 48)).save(paths[0])
    Image.fromarray(photo_array(31, 30, 30)).save(paths[1])
    Image.fromarray(photo_array(32, 44, 36, channels=1)).save(paths[2])
    result = run_json(argv(paths, "--certificate", "plain"), capsys)
    ref, x0, x1 = pil_tensor(paths[0]), pil_tensor(paths[1]), pil_tensor(paths[2], "L")
    phi = [lipsim_embedding(t, weights=WEIGHTS, grayscale=True)[0].double() for t in (ref, x0, x1)]
    u0, u1, gap = (phi[0] - phi[1]).norm(), (phi[0] - phi[2]).norm(), (phi[1] - phi[2]).norm()
    lip = {
        "ref": resize_operator_norm(40, 48, 32, "bicubic", True),
        "img0": resize_operator_norm(30, 30, 32, "bicubic", True),
        "img1": 3**0.5 * resize_operator_norm(44, 36, 32, "bicubic", True),
    }
    assert result["closer"] == ("img1" if u1 < u0 else "img0")
    assert result["d0"] == pytest.approx(float(u0**2 / 2), rel=1e-5)
    assert result["d1"] == pytest.approx(float(u1**2 / 2), rel=1e-5)
    slack = embedding_slack(torch.float32)
    closed_reference = float((u0**2 - u1**2).abs() / (2 * gap)) / lip["ref"]
    closed_all = float((u0 - u1).abs()) / (4 * max(lip.values()))
    # The reported radius is the closed form shrunk by the floating-point slack, never more.
    assert (
        0 <= closed_reference - result["radius_reference"] <= slack / lip["ref"] + 2 * RELATIVE_SLACK * closed_reference
    )
    assert 0 <= closed_all - result["radius_all"] <= slack / (4 * max(lip.values())) + 2 * RELATIVE_SLACK * closed_all


def test_identical_candidates_are_a_tie_with_zero_radii(triplet, capsys):
    paths = [triplet[0], triplet[1], triplet[1]]
    result = run_json(argv(paths), capsys)
    assert result["closer"] == "tie"
    assert result["d0"] == result["d1"]
    assert result["radius_reference"] == result["radius_all"] == 0.0
    code, out, _ = run_cli(argv(paths), capsys)
    assert code == 0
    assert out.startswith("tie:")


def test_text_output_names_the_closer_image_and_both_radii(triplet, capsys):
    result = run_json(argv(triplet), capsys)
    code, out, _ = run_cli(argv(triplet), capsys)
    assert code == 0
    assert f"{triplet[1]} (IMG0) is closer to {triplet[0]}" in out
    assert f"d0 = {result['d0']:.6f}  d1 = {result['d1']:.6f}" in out
    assert f"reference perturbed:        {result['radius_reference']:.6f}" in out
    assert f"all three images perturbed: {result['radius_all']:.6f}" in out
    assert "norm_aware rule" in out


def test_missing_image_and_bad_rule_exit_2(triplet, tmp_path, capsys):
    code, _, err = run_cli(argv([triplet[0], triplet[1], tmp_path / "none.png"]), capsys)
    assert code == 2
    assert "image file not found" in err
    code, _, err = run_cli(argv(triplet, "--normalization", "plain", "--certificate", "plain"), capsys)
    assert code == 2
    assert "needs a 1-Lipschitz normalization" in err


def test_device_option_gives_the_cpu_decision(triplet, capsys, device):
    on_cpu = run_json(argv(triplet), capsys)
    on_device = run_json(argv(triplet, "--device", str(device)), capsys)
    assert on_device["closer"] == on_cpu["closer"]
    for key in ("d0", "d1", "radius_reference", "radius_all"):
        assert on_device[key] == pytest.approx(on_cpu[key], rel=1e-3, abs=1e-7), key
