"""The one home of argument checks: each names the argument, what was expected and what came, and raises
``TypeError`` for a wrong type and ``ValueError`` for a wrong value."""

from __future__ import annotations

import math

import pytest
import torch

from lipsim_tm.checks import (
    check_bool,
    check_callable,
    check_choice,
    check_device,
    check_int,
    check_number,
    check_numbers,
    check_range,
    check_same_shape,
    check_tensor,
)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: check_int("steps", 1.5), TypeError, "steps must be an int, got float 1.5"),
        (lambda: check_int("steps", True), TypeError, "steps must be an int, got bool True"),
        (lambda: check_int("steps", 0, minimum=1), ValueError, "steps must be an int >= 1, got 0"),
        (lambda: check_int("k", 7, minimum=1, maximum=6), ValueError, "k must be an int in [1, 6], got 7"),
        (lambda: check_number("lr", "0.1"), TypeError, "lr must be a number, got str '0.1'"),
        (lambda: check_number("lr", 0.0, minimum=0.0, open_minimum=True), ValueError, "lr must be a finite number > 0"),
        (lambda: check_number("eps", math.nan, minimum=0.0), ValueError, "eps must be a finite number >= 0, got nan"),
        (lambda: check_number("p", 2.0, minimum=0.0, maximum=1.0), ValueError, "p must be a finite number in [0, 1]"),
        (lambda: check_numbers("epsilons", 0.1), TypeError, "epsilons must be a non-empty sequence of numbers"),
        (lambda: check_numbers("epsilons", [0.1, -1]), ValueError, "epsilons must hold finite numbers >= 0"),
        (lambda: check_bool("compile", "yes"), TypeError, "compile must be a bool, got 'yes'"),
        (
            lambda: check_choice("norm", "l1", ("l2", "linf")),
            ValueError,
            "norm must be one of ('l2', 'linf'), got 'l1'",
        ),
        (lambda: check_callable("progress", 3), TypeError, "progress must be callable, got int"),
        (lambda: check_tensor("x", [1.0]), TypeError, "x must be a torch.Tensor, got list"),
        (lambda: check_tensor("x", torch.zeros(2), floating=False, shape=(3,)), ValueError, "x must have shape (3,)"),
        (lambda: check_tensor("x", torch.zeros(2, dtype=torch.int64), floating=True), TypeError, "floating-point"),
    ],
)
def test_messages_name_the_argument_what_was_expected_and_what_came(call, error, message) -> None:
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_valid_values_come_back_converted() -> None:
    assert check_int("n", 3, minimum=1) == 3
    assert check_number("x", 2) == 2.0
    assert isinstance(check_number("x", 2), float)
    assert check_numbers("eps", [0, 0.5]) == (0.0, 0.5)
    check_callable("progress", None, optional=True)


def test_range_check_reads_the_data_once_and_says_what_it_saw() -> None:
    check_range("x", torch.tensor([0.0, 1.0]), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"x values must lie in \[0, 1\] \(hint\), got min -0.5 and max 1$"):
        check_range("x", torch.tensor([-0.5, 1.0]), 0.0, 1.0, context=" (hint)")
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        check_range("x", torch.tensor([0.5, math.nan]), 0.0, 1.0)
    check_range("x", torch.tensor([0.5], dtype=torch.bfloat16), 0.0, 1.0)  # half precision on the CPU


def test_shape_and_device_checks_list_what_they_compare() -> None:
    with pytest.raises(ValueError, match=r"x and y must have the same shape, got x \(2,\), y \(3,\)"):
        check_same_shape(x=torch.zeros(2), y=torch.zeros(3))
    with pytest.raises(ValueError, match="x is on meta but the network is on cpu; move it"):
        check_device("x", torch.zeros(2, device="meta"), torch.device("cpu"), "the network", "move it")
