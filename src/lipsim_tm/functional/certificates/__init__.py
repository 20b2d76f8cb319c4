"""Certificates of LipSim's 2AFC decisions and distances, in the caller's pixel units.

Data flows one way: :mod:`.policy` (rules, dtypes, floating-point slack) -> :mod:`.margins` (triplet
margins in embedding space) -> a rule, :mod:`.plain` (1-Lipschitz) or :mod:`.norm_aware` (uses the
pre-normalisation norms) -> :mod:`.triplets` (decision and radii of a batch) and :mod:`.intervals`
(certified distance intervals).
"""

from lipsim_tm.functional.certificates.intervals import PERTURBED, distance_interval, distance_shift, embedding_shift
from lipsim_tm.functional.certificates.margins import TripletMargins, decision, triplet_margins
from lipsim_tm.functional.certificates.norm_aware import (
    NORM_FLOORS,
    all_images_radius_norm_aware,
    invert_shift,
    norm_and_floor,
    norm_aware_radii,
    normalization_shift,
    reference_radius_norm_aware,
)
from lipsim_tm.functional.certificates.plain import all_images_radius, plain_radii, reference_radius
from lipsim_tm.functional.certificates.policy import (
    CERTIFIABLE_DTYPES,
    CERTIFICATES,
    PAPER_EPSILONS,
    RELATIVE_SLACK,
    check_certifiable,
    check_certificate,
    embedding_slack,
)
from lipsim_tm.functional.certificates.triplets import CertifiedTriplets, certify_triplets

__all__ = [
    "CERTIFIABLE_DTYPES",
    "CERTIFICATES",
    "NORM_FLOORS",
    "PAPER_EPSILONS",
    "PERTURBED",
    "RELATIVE_SLACK",
    "CertifiedTriplets",
    "TripletMargins",
    "all_images_radius",
    "all_images_radius_norm_aware",
    "certify_triplets",
    "check_certifiable",
    "check_certificate",
    "decision",
    "distance_interval",
    "distance_shift",
    "embedding_shift",
    "embedding_slack",
    "invert_shift",
    "norm_and_floor",
    "norm_aware_radii",
    "normalization_shift",
    "plain_radii",
    "reference_radius",
    "reference_radius_norm_aware",
    "triplet_margins",
]
