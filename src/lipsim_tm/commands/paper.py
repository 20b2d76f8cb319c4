"""Published numbers for the LipSim paper's released checkpoints, for ``lipsim certify --compare-paper``: printed
beside ours, never used in any computation.

Sources (``recipes/paper/README.md`` lists them with the table to compare): the NIGHTS scores of
``lipsim-pretrained`` and ``lipsim-margin0.2`` from the LipSim paper (Ghazanfari et al., ICLR 2024,
arXiv:2310.18274); the BAPPS numbers of ``lipsim-margin0.2`` from the authors' rebuttal on its OpenReview page;
the NIGHTS score of ``lipsim-margin0.5`` from an independent re-run of the released checkpoint (Croce, Schlarmann,
Singh, Hein, arXiv:2502.11725, as we read it).
"""

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


#: The embedding map the published numbers were measured with (the official code's ``v/||v||``).
PAPER_NORMALIZATION = "plain"


def paper_results(weights: str, dataset: str, normalization: str = PAPER_NORMALIZATION) -> dict[str, Any]:
    """The paper's numbers for ``weights`` on ``dataset`` (``"nights"``/``"bapps"``); ``ValueError`` for weights
    that are not a released checkpoint, ``{}`` when the paper reports nothing for that dataset. Measured with
    another ``normalization`` than the paper's, the ``note`` says that the two compare different embedding maps."""
    if weights not in PAPER_RESULTS:
        raise ValueError(
            f"--compare-paper needs one of the paper's released checkpoints as --weights ({sorted(PAPER_RESULTS)}),"
            f" got {weights!r}"
        )
    results = dict(PAPER_RESULTS[weights].get(dataset, {}))
    if results and normalization != PAPER_NORMALIZATION:
        mismatch = (
            f"the paper's numbers use --normalization {PAPER_NORMALIZATION} (v/||v||); these use {normalization},"
            f" another embedding map: add --normalization {PAPER_NORMALIZATION} to compare like with like"
        )
        results["note"] = f"{results['note']}; {mismatch}" if "note" in results else mismatch
    return results
