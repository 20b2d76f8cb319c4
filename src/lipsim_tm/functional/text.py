"""Numbers written for people: l2 budgets as users type them."""

from __future__ import annotations


def describe_eps(eps: float) -> str:
    """``0.1412 (36/255)`` when ``eps`` is a whole number of 1/255 steps, else ``0.1412``."""
    steps = eps * 255
    whole = round(steps)
    return f"{eps:.4g} ({whole}/255)" if whole > 0 and abs(steps - whole) < 1e-6 else f"{eps:.4g}"
