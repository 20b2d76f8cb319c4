"""The LipSim paper's numbers for its released checkpoints (the reference document, section 7), for
``lipsim certify --compare-paper``: printed beside ours, never used in any computation."""

from __future__ import annotations

from typing import Any

#: weights name -> dataset format -> what the paper (or its independent re-run) reports, as fractions.
#: ``score``: the soft NIGHTS-test 2AFC score. ``certified``: {eps in [0, 1] pixels: certified accuracy}.
PAPER_RESULTS: dict[str, dict[str, dict[str, Any]]] = {
    "lipsim-pretrained": {"nights": {"score": 0.866}},
    "lipsim-margin0.2": {
        "nights": {"score": 0.885},
        "bapps": {
            "score": 0.7347,
            # The authors' rebuttal evaluated BAPPS on [-1, 1] inputs, so their 36/72/108 /255 budgets are
            # 18/36/54 /255 in [0, 1] pixels, the units of this package.
            "certified": {18 / 255: 0.300, 36 / 255: 0.1296, 54 / 255: 0.0533},
            "note": "BAPPS certified numbers from the authors' rebuttal, evaluated on [-1, 1] inputs: their"
            " 36/72/108 /255 are 18/36/54 /255 in [0, 1] pixels (listed here at those budgets)",
        },
    },
    "lipsim-margin0.5": {"nights": {"score": 0.851}},
}


def paper_results(weights: str, dataset: str) -> dict[str, Any]:
    """The paper's numbers for ``weights`` on ``dataset`` (``"nights"``/``"bapps"``); ``ValueError`` for weights
    that are not a released checkpoint, ``{}`` when the paper reports nothing for that dataset."""
    if weights not in PAPER_RESULTS:
        raise ValueError(
            f"--compare-paper needs one of the paper's released checkpoints as --weights ({sorted(PAPER_RESULTS)}),"
            f" got {weights!r}"
        )
    return PAPER_RESULTS[weights].get(dataset, {})
