"""1-Lipschitz building blocks (l2), each documenting its bound."""

from lipsim_tm.nn.normalization import ConstantAugmentNormalize, PlainNormalize, UnitBallProjection
from lipsim_tm.nn.reshaping import ChannelZeroPad, NormPreservingSumPool2d, PixelUnshuffle, Truncate
from lipsim_tm.nn.sll import SLLConv2d, SLLLinear

__all__ = [
    "ChannelZeroPad",
    "ConstantAugmentNormalize",
    "NormPreservingSumPool2d",
    "PixelUnshuffle",
    "PlainNormalize",
    "SLLConv2d",
    "SLLLinear",
    "Truncate",
    "UnitBallProjection",
]
