"""``lipsim distance``: against the functional API, itself, images of different sizes/modes, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from cli_helpers import WEIGHTS, pil_tensor, run_cli, run_json

from lipsim_tm.functional import (
    distance_from_embeddings,
    lipsim_embedding,
    resize_operator_norm,
)

EPS = [36 / 255, 0.5, 0.0]


def distance_argv(a, b, *extra: str) -> list[str]:
    return ["distance", str(a), str(b), "--weights", WEIGHTS, "--eps", *(str(e) for e in EPS), *extra]


def test_distance_of_an_image_to_itself_is_zero_inside_its_interval(write_image, capsys):
    a = write_image("a.png", 0)
    result = run_json(distance_argv(a, a), capsys)
    assert result["distance"] == 0.0
    for row in result["intervals"]:
        assert row["lower"] == 0.0 <= row["upper"]
    widths = [row["upper"] for row in result["intervals"]]
    assert widths[1] > widths[0] > widths[2] >= 0.0


def test_text_output_prints_the_distance_and_each_interval(write_image, capsys):
    a, b = write_image("a.png", 3), write_image("b.png", 4)
    result = run_json(distance_argv(a, b), capsys)
    code, out, _ = run_cli(distance_argv(a, b), capsys)
    assert code == 0
    assert f"LipSim distance (1 - cos): {result['distance']:.6f}" in out
    assert "eps 0.1412 (36/255)" in out
    for row in result["intervals"]:
        assert f"[{row['lower']:.6f}, {row['upper']:.6f}]" in out


def _attacked_distance(x: torch.Tensor, y: torch.Tensor, eps: float, sign: float, steps: int = 15) -> float:
    """Distance after an l2 PGD on ``x`` (budget ``eps``, kept in [0, 1]) pushing it up (sign 1) or down (-1)."""
    phi_y = lipsim_embedding(y, weights=WEIGHTS, grayscale=True).detach()
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        phi_x = lipsim_embedding((x + delta).clamp(0, 1), weights=WEIGHTS, grayscale=True)
        (grad,) = torch.autograd.grad(sign * distance_from_embeddings(phi_x, phi_y).sum(), delta)
        with torch.no_grad():
            delta = delta + 0.25 * eps * grad / grad.norm().clamp_min(1e-12)
            delta = delta * min(1.0, eps / float(delta.norm()))
    with torch.no_grad():
        phi_x = lipsim_embedding((x + delta).clamp(0, 1), weights=WEIGHTS, grayscale=True)
        return float(distance_from_embeddings(phi_x, phi_y)[0])


def test_files_of_different_sizes_and_modes_get_sound_intervals_in_their_own_pixels(write_image, capsys):
    a = write_image("a.png", 5, height=40, width=48)
    b = write_image("b.png", 6, height=36, width=52, mode="L")
    result = run_json(distance_argv(a, b), capsys)
    # tiny32 is 1-Lipschitz; the grey file is one channel, replicated to three (factor sqrt(3)).
    assert result["lipschitz"]["image_a"] == pytest.approx(resize_operator_norm(40, 48, 32, "bicubic", True))
    assert result["lipschitz"]["image_b"] == pytest.approx(
        math.sqrt(3) * resize_operator_norm(36, 52, 32, "bicubic", True)
    )
    x, y = pil_tensor(a), pil_tensor(b, "L")
    d = float(
        distance_from_embeddings(
            lipsim_embedding(x, weights=WEIGHTS), lipsim_embedding(y, weights=WEIGHTS, grayscale=True)
        )[0]
    )
    assert result["distance"] == pytest.approx(d, rel=1e-5)
    row = result["intervals"][1]  # eps = 0.5
    for sign in (1.0, -1.0):
        attacked = _attacked_distance(x, y, row["eps"], sign)
        assert row["lower"] <= attacked <= row["upper"]
        attacked_b = _attacked_distance(y, x, row["eps"], sign)
        assert row["lower"] <= attacked_b <= row["upper"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--eps", "-1"], "argument --eps: must be finite and >= 0, got '-1'"),
        (["--eps", "nan"], "argument --eps: must be finite and >= 0"),
        (["--eps", "1/0"], "argument --eps: expected a number >= 0 such as 0.1412 or 36/255, got '1/0'"),
        (["--eps", "wide"], "argument --eps: expected a number"),
        (["--device", "warp9"], "--device must name a torch device such as cpu or cuda, got 'warp9'"),
        (["--threads", "0"], "argument --threads: must be an int >= 1, got '0'"),
        (
            ["--normalization", "plain", "--certificate", "plain"],
            "certificate='plain' needs a 1-Lipschitz normalization",
        ),
        (["--weights", "random:huge"], "weights='random:<config>' needs a config in"),
    ],
)
def test_bad_options_exit_2_with_the_reason(write_image, capsys, extra, message):
    a = write_image("a.png", 9)
    code, _, err = run_cli(["distance", str(a), str(a), "--weights", WEIGHTS, *extra], capsys)
    assert code == 2
    assert message in err


def test_missing_and_undecodable_files_exit_2_naming_the_file(tmp_path, write_image, capsys):
    a = write_image("a.png", 10)
    code, _, err = run_cli(["distance", str(a), str(tmp_path / "missing.png"), "--weights", WEIGHTS], capsys)
    assert code == 2
    assert f"image file not found: {tmp_path / 'missing.png'}" in err
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    code, _, err = run_cli(["distance", str(broken), str(a), "--weights", WEIGHTS], capsys)
    assert code == 2
    assert f"cannot decode image file {broken}" in err


def test_device_option_gives_the_cpu_numbers(write_image, capsys, device):
    a, b = write_image("a.png", 11), write_image("b.png", 12, height=30, width=30)
    on_cpu = run_json(distance_argv(a, b), capsys)
    on_device = run_json(distance_argv(a, b, "--device", str(device)), capsys)
    assert on_device["distance"] == pytest.approx(on_cpu["distance"], rel=1e-4, abs=1e-7)
    for got, expected in zip(on_device["intervals"], on_cpu["intervals"], strict=True):
        assert got["lower"] == pytest.approx(expected["lower"], rel=1e-4, abs=1e-7)
        assert got["upper"] == pytest.approx(expected["upper"], rel=1e-4, abs=1e-7)
