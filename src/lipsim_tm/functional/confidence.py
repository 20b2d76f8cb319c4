"""95% intervals of the accuracies and scores in evaluation reports.

- An accuracy is ``k`` successes of ``n`` triplets: the Wilson score interval of a binomial proportion
  (:func:`wilson`), which stays inside ``[0, 1]`` and is sensible at ``k = 0`` and ``k = n``.
- The soft 2AFC score is a mean of per-triplet values in ``[0, 1]``: a normal (CLT) interval from the sample
  variance (:func:`mean_interval`), clipped to ``[0, 1]``.

Both assume independent triplets; neither accounts for the correlation of triplets that share images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

#: Two-sided 95% standard-normal quantile.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A rate or mean ``value`` with its 95% interval ``[low, high]``, from ``count`` (successes or the sum of
    the values) over ``total`` items. NaN everywhere when ``total == 0``."""

    value: float
    low: float
    high: float
    count: float
    total: int

    def __str__(self) -> str:
        """``0.8123 [0.7904, 0.8324]``, or ``n/a`` with no items."""
        return "n/a" if self.total == 0 else f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN becomes ``None``."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def wilson(successes: float, total: int, z: float = Z95) -> Estimate:
    """Wilson score interval of ``successes / total``:
    ``(p + z^2 / 2n +- z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)``."""
    if total == 0:
        return Estimate(math.nan, math.nan, math.nan, successes, 0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    # The interval always holds p; min/max keep that exact where rounding would put an end past it (k = 0, n).
    return Estimate(p, max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)), successes, total)


def mean_interval(
    total_sum: float, sum_of_squares: float, total: int, z: float = Z95, clip: tuple[float, float] = (0.0, 1.0)
) -> Estimate:
    """Mean of ``total`` values in ``clip`` (default ``[0, 1]``) given their sum and sum of squares, with the normal
    interval ``mean +- z s / sqrt(n)`` (``s`` the sample standard deviation, ``n - 1`` in its denominator), clipped
    to ``clip``."""
    if total == 0:
        return Estimate(math.nan, math.nan, math.nan, total_sum, 0)
    mean = total_sum / total
    variance = max(0.0, (sum_of_squares - total * mean * mean) / (total - 1)) if total > 1 else 0.0
    half = z * math.sqrt(variance / total)
    return Estimate(mean, max(clip[0], mean - half), min(clip[1], mean + half), total_sum, total)
