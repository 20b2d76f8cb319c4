"""Attacks on perceptual distances: l2/l_inf PGD and APGD, for 2AFC flips and distance changes.

Budgets are in the user's pixel space (per image), and every iterate stays in the valid range. Any
differentiable ``distance_fn(x, y) -> (N,)`` works, e.g.::

    from lipsim_tm.attacks import attack_2afc, attack_distance

    # torchmetrics LPIPS: call its network directly (per-sample values, no metric state growing per step).
    lpips = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).eval()
    distance = lambda x, y: lpips.net(x, y, normalize=True).reshape(-1)  # inputs in [0, 1]
    result = attack_2afc(distance, reference, x0, x1, eps=0.5, norm="l2", perturb="reference")
    result.success        # (N,) decisions flipped within ||delta|| <= 0.5 of the reference
    result.images         # (reference_adv, x0, x1)

    up = attack_distance(distance, x, y, eps=8 / 255, norm="linf", maximize=True)
    up.objective          # (N,) the largest d(x + delta, y) found
"""

from lipsim_tm.attacks.api import attack_2afc, attack_distance
from lipsim_tm.attacks.problem import AttackResult

__all__ = ["AttackResult", "attack_2afc", "attack_distance"]
