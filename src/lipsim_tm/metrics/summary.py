"""What one 2AFC evaluation measured, with counts and 95% intervals (see :meth:`Certified2AFCAccuracy.summary`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lipsim_tm.functional.confidence import Estimate


@dataclass(frozen=True)
class CertifiedRow:
    """Certified accuracy at one l2 budget ``eps`` (user pixels): the reference perturbed, or all three images."""

    eps: float
    reference: Estimate
    all: Estimate


@dataclass(frozen=True)
class TwoAFCSummary:
    """Counts, rates and 95% intervals of a :class:`~lipsim_tm.metrics.Certified2AFCAccuracy`.

    - ``score``: the soft 2AFC score over all ``triplets`` (``p`` when the metric prefers img1, ``1 - p`` when
      it prefers img0, 0.5 on a tie), normal interval;
    - ``natural``: the hard natural accuracy over the ``decided`` triplets (``p != 0.5``): the metric prefers the
      image most people chose, ties wrong; Wilson interval. The certified accuracies' population and rule, so
      each certified accuracy is at most this;
    - ``rows``: certified accuracy per budget (correct AND radius > eps, over the decided triplets), Wilson.
    """

    triplets: int
    decided: int
    score: Estimate
    natural: Estimate
    rows: tuple[CertifiedRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as ``None``)."""
        return {
            "triplets": self.triplets,
            "decided": self.decided,
            "score_2afc": self.score.to_dict(),
            "natural_accuracy": self.natural.to_dict(),
            "certified": [
                {"eps": row.eps, "reference": row.reference.to_dict(), "all": row.all.to_dict()} for row in self.rows
            ],
        }
