"""The plain (1-Lipschitz) rule: triplet margins -> user-pixel radii, the published LipSim certificate.

Needs a 1-Lipschitz normalisation (``"augment"``, ``"ball"``): a perturbation ``delta`` of an image moves
its embedding by at most ``L ||delta||`` (see :mod:`.margins`), so embedding-space margins divided by ``L``
are user-pixel radii.
"""

from __future__ import annotations

from torch import Tensor

from lipsim_tm.functional.certificates.margins import TripletMargins
from lipsim_tm.functional.certificates.policy import RELATIVE_SLACK


def plain_radii(
    margins: TripletMargins, lipschitz_reference: float | Tensor, lipschitz_all: float | Tensor
) -> tuple[Tensor, Tensor]:
    """``(reference_radius, all_images_radius)`` float64 ``(N,)`` in user pixels.

    ``lipschitz_reference``: ``L`` of the reference's map (only it moves); ``lipschitz_all``: a bound ``L`` that
    holds for all three images' maps (the largest, when their sizes differ). Numbers or float64 ``(N,)``.

    Reference. ``||r - p_0||^2 - ||r - p_1||^2 = 2 <r, p_1 - p_0> + ||p_0||^2 - ||p_1||^2`` is affine in ``r``;
    the decision flips only when ``phi(ref)`` crosses its zero set, the bisecting hyperplane of ``p_0, p_1``. The
    distance of ``r`` to it is ``H = |u_0^2 - u_1^2| / (2 ||p_0 - p_1||)``, i.e. ``|d_0 - d_1| / ||p_0 - p_1||``
    for the cosine form (LipSim's formula) and ``|d_0^2 - d_1^2| / (2 ||p_0 - p_1||)`` for the l2 form. A
    reference perturbation of norm ``< H / L`` moves ``phi(ref)`` by less than ``H``, so the decision holds:
    ``R = max(0, H - slack) / L``. ``R = 0`` when ``p_0 = p_1`` (then ``u_0 = u_1``, a tie). Since
    ``u_0 + u_1 >= ||p_0 - p_1||``, ``R >= 2 * all_images_radius`` (for one ``L``).

    All images. Each embedding moves by less than ``L R``. By the triangle inequality ``u_0`` changes by less than
    ``2 L R`` (both ends move) and so does ``u_1``, so ``u_0 - u_1`` changes by less than ``4 L R`` and keeps its
    sign when ``4 L R <= |u_0 - u_1|``: ``R = max(0, |u_0 - u_1| - slack) / (4 L)``. Tight in embedding space
    (``p_0, r, p_1`` on a line, ``r`` and ``p_0`` moving toward each other, ``p_1`` away). The budget is per image
    (each ``||delta_i|| < R``), not shared.
    """
    reference = margins.hyperplane_margin.clamp_min(0.0) * ((1 - RELATIVE_SLACK) / lipschitz_reference)
    return reference, margins.difference_margin * (((1 - RELATIVE_SLACK) / lipschitz_all) / 4)
