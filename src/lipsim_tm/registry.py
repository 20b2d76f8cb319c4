"""``lipsim_tm.registry.describe_weights()``, the path the 0.1 README documented; the registry lives in
:mod:`lipsim_tm.models.registry`."""

from lipsim_tm.models.registry import WeightsNotFoundError, describe_weights

__all__ = ["WeightsNotFoundError", "describe_weights"]
