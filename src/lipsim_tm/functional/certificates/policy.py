"""What may be certified and with how much floating-point allowance: the rules, the dtypes, the slack.

Every certificate in this package is shrunk by ``slack = 8 * eta`` (embedding-space l2) with
``eta = 64 * finfo(dtype).eps`` of the embedding dtype (float32: ``6.1e-5``), an allowance for the
evaluation error of each of the (at most four) embeddings involved, and every radius is further
multiplied by ``1 - RELATIVE_SLACK``. Arithmetic is in float64. Reduced-precision (bfloat16/float16)
networks are refused (:func:`check_certifiable`).
"""

from __future__ import annotations

import torch

from lipsim_tm.checks import check_choice

#: ``"norm_aware"`` (default): the larger of the plain and norm-aware radius; ``"plain"``: 1-Lipschitz only.
CERTIFICATES: tuple[str, ...] = ("norm_aware", "plain")
#: The paper's l2 budgets in [0, 1] pixels: 36/255, 72/255, 108/255.
PAPER_EPSILONS: tuple[float, ...] = (36 / 255, 72 / 255, 108 / 255)
#: Relative shrink of every radius, on top of the absolute slack.
RELATIVE_SLACK = 1e-6
#: Network dtypes whose embeddings the floating-point slack accounts for.
CERTIFIABLE_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def check_certificate(certificate: object, normalization: str) -> str:
    """Return ``certificate`` if it is one of :data:`CERTIFICATES` and usable with ``normalization``, else raise."""
    check_choice("certificate", certificate, CERTIFICATES)
    if certificate == "plain" and normalization == "plain":
        raise ValueError(
            "certificate='plain' needs a 1-Lipschitz normalization ('augment' or 'ball'), got normalization='plain'"
            " (v/||v|| is certifiable only with certificate='norm_aware')"
        )
    return certificate


def check_certifiable(network_dtype: torch.dtype) -> None:
    """Raise ``ValueError`` unless certificates may be computed from a network of ``network_dtype``.

    Precision policy: reduced-precision networks (bfloat16, float16) compute embeddings and distances, but
    never certificates. Their embeddings are upcast to float32 before normalisation, so the slack of
    :func:`embedding_slack` (sized for float32/float64 evaluation) would not bound their rounding error.
    """
    if network_dtype not in CERTIFIABLE_DTYPES:
        raise ValueError(
            f"certificates need a float32 or float64 network, got a {network_dtype} network: its rounding"
            " error is not bounded by the certificates' slack. Use a float32 network for certificates"
            " (reduced precision is supported for distances and embeddings without certificates)"
        )


def embedding_slack(dtype: torch.dtype) -> float:
    """Absolute allowance (embedding-space l2) for the floating-point error of the embeddings of one decision."""
    return 8 * 64 * torch.finfo(dtype).eps
