"""The 1-Lipschitz LipSim feature extractor and its named configurations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lipsim_tm.checks import check_int, check_number
from lipsim_tm.nn import (
    ChannelZeroPad,
    NormPreservingSumPool2d,
    PixelUnshuffle,
    SLLConv2d,
    SLLLinear,
    Truncate,
)


@dataclass(frozen=True)
class LipSimConfig:
    """Architecture of a :class:`LipSimBackbone`.

    The network is ``scale * (x - shift)`` -> optional pixel-unshuffle by ``unshuffle`` -> zero-pad
    channels to ``channels`` -> for each entry ``n`` of ``conv_stages``: ``n`` SLL convolutions
    (inner width ``conv_inner``) then one ``pool_size x pool_size`` norm-preserving sum-pool ->
    flatten -> ``dense_depth`` SLL dense layers (inner width ``dense_inner``) -> first
    ``out_features`` coordinates. Its Lipschitz bound in l2 is ``input_scale``.
    """

    input_size: int = 224
    in_channels: int = 3
    unshuffle: int = 1
    channels: int = 45
    conv_inner: int = 5
    conv_stages: tuple[int, ...] = (20, 0)
    pool_size: int = 4
    dense_depth: int = 7
    dense_inner: int = 1024
    out_features: int = 1792
    input_scale: float = 1.0
    input_shift: float = 0.0
    q_scaled_conv: bool = False

    def __post_init__(self) -> None:
        for name in (
            "input_size",
            "in_channels",
            "unshuffle",
            "channels",
            "conv_inner",
            "pool_size",
            "dense_inner",
            "out_features",
        ):
            check_int(f"LipSimConfig.{name}", getattr(self, name), minimum=1)
        check_int("LipSimConfig.dense_depth", self.dense_depth, minimum=0)
        stages = tuple(self.conv_stages)
        for i, n in enumerate(stages):
            check_int(f"LipSimConfig.conv_stages[{i}]", n, minimum=0)
        object.__setattr__(self, "conv_stages", stages)
        check_number("LipSimConfig.input_scale", self.input_scale, minimum=0.0, open_minimum=True)
        check_number("LipSimConfig.input_shift", self.input_shift)
        reduction = self.unshuffle * self.pool_size ** len(stages)
        if self.input_size % reduction:
            raise ValueError(
                f"LipSimConfig.input_size must be a multiple of unshuffle * pool_size**len(conv_stages)"
                f" = {reduction}, got {self.input_size}"
            )
        if self.channels < self.in_channels * self.unshuffle**2:
            raise ValueError(
                f"LipSimConfig.channels must be >= in_channels * unshuffle**2 = "
                f"{self.in_channels * self.unshuffle**2}, got {self.channels}"
            )
        if self.out_features > self.flat_features:
            raise ValueError(
                f"LipSimConfig.out_features must be <= the flattened size {self.flat_features}, got {self.out_features}"
            )

    @property
    def feature_map_size(self) -> int:
        """Side of the last feature map, before flattening."""
        return self.input_size // (self.unshuffle * self.pool_size ** len(self.conv_stages))

    @property
    def flat_features(self) -> int:
        """Width of the dense layers (channels times the last feature map's area)."""
        return self.channels * self.feature_map_size**2

    @property
    def conv_depth(self) -> int:
        return sum(self.conv_stages)


NAMED_CONFIGS: dict[str, LipSimConfig] = {
    # The released model (reference section 3): 63,276,796 parameters.
    "small": LipSimConfig(),
    "medium": LipSimConfig(channels=60, conv_stages=(30, 0), dense_depth=10, dense_inner=2048),
    "large": LipSimConfig(channels=90, conv_stages=(50, 0), dense_depth=10, dense_inner=2048),
    "xlarge": LipSimConfig(channels=120, conv_stages=(70, 0), dense_depth=15, dense_inner=2048),
    # Small configurations for tests, built by the same code.
    "tiny32": LipSimConfig(
        input_size=32, channels=8, conv_inner=4, conv_stages=(2,), dense_depth=2, dense_inner=64, out_features=256
    ),
    "tiny64": LipSimConfig(
        input_size=64, channels=16, conv_inner=4, conv_stages=(2, 1), dense_depth=2, dense_inner=96, out_features=128
    ),
}


def resolve_config(config: str | LipSimConfig, **overrides: object) -> LipSimConfig:
    """A :class:`LipSimConfig` from a name in :data:`NAMED_CONFIGS` or an instance, with overrides."""
    if isinstance(config, str):
        if config not in NAMED_CONFIGS:
            raise ValueError(f"config must be one of {sorted(NAMED_CONFIGS)} or a LipSimConfig, got {config!r}")
        config = NAMED_CONFIGS[config]
    elif not isinstance(config, LipSimConfig):
        raise TypeError(f"config must be a str or LipSimConfig, got {type(config).__name__}")
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(LipSimConfig)}
        if unknown:
            raise TypeError(f"unknown LipSimConfig fields: {sorted(unknown)}")
        config = dataclasses.replace(config, **overrides)
    return config


class LipSimBackbone(nn.Module):
    """1-Lipschitz (times ``config.input_scale``) feature extractor ``(N, C, S, S) -> (N, out_features)``.

    Args:
        config: a name from :data:`NAMED_CONFIGS` (``small`` is the released LipSim model) or a
            :class:`LipSimConfig`.
        **overrides: fields of the configuration to change, e.g. ``input_size=256``.

    Every layer is 1-Lipschitz in l2 (see each layer's docstring) and the input scaling multiplies
    the bound by ``input_scale``, so ``||f(x) - f(y)|| <= lipschitz_bound * ||x - y||``. In eval mode
    with frozen parameters the SLL rescaling vectors are computed once and cached.
    """

    def __init__(self, config: str | LipSimConfig = "small", **overrides: object) -> None:
        super().__init__()
        self.config = resolve_config(config, **overrides)
        cfg = self.config
        self.unshuffle = PixelUnshuffle(cfg.unshuffle) if cfg.unshuffle > 1 else nn.Identity()
        self.pad = ChannelZeroPad(cfg.in_channels * cfg.unshuffle**2, cfg.channels)
        self.convs = nn.ModuleList(
            SLLConv2d(cfg.channels, cfg.conv_inner, q_scaled=cfg.q_scaled_conv) for _ in range(cfg.conv_depth)
        )
        self.pool = NormPreservingSumPool2d(cfg.pool_size)
        self.dense = nn.ModuleList(SLLLinear(cfg.flat_features, cfg.dense_inner) for _ in range(cfg.dense_depth))
        self.truncate = Truncate(cfg.out_features)

    @property
    def lipschitz_bound(self) -> float:
        """Upper bound on the l2 Lipschitz constant of :meth:`forward` with respect to its input."""
        return float(self.config.input_scale)

    @property
    def embedding_dim(self) -> int:
        return self.config.out_features

    def forward(self, x: Tensor) -> Tensor:
        """Embeddings ``(N, out_features)`` of images ``x`` of shape ``(N, in_channels, S, S)``."""
        return self._run(x, lambda index, layer, h: layer(h))

    def inference_tensors(self) -> list[dict[str, Tensor]] | None:
        """Every SLL layer's cached inference tensors (convolutions first), or ``None`` where a cache is unusable.

        See :class:`~lipsim_tm.nn.rescaling.CachedRescaling`: usable in eval mode when no gradient to the
        parameters is recorded. The tensors are detached; they follow parameter updates (rebuilt on change).
        """
        tensors = [layer.inference_tensors() for layer in self._sll_layers()]
        return None if any(t is None for t in tensors) else tensors

    def cached_forward(self, x: Tensor, tensors: list[dict[str, Tensor]]) -> Tensor:
        """:meth:`forward` computed from :meth:`inference_tensors` only: a pure function of ``x`` and ``tensors``.

        Used by ``torch.compile`` (one graph, no guards on the cache's bookkeeping); gradients reach ``x``
        but never the parameters.
        """
        return self._run(x, lambda index, layer, h: layer.cached_forward(h, tensors[index]))

    def _run(self, x: Tensor, apply: Callable[[int, SLLConv2d | SLLLinear, Tensor], Tensor]) -> Tensor:
        self._check_input(x)
        cfg = self.config
        if cfg.input_shift != 0.0 or cfg.input_scale != 1.0:
            x = (x - cfg.input_shift) * cfg.input_scale
        # channels_last makes the thin (inner-width) convolutions markedly faster on CPU. Converting the
        # few input channels before the zero-padding (which keeps the layout) avoids a full-width copy.
        x = self.unshuffle(x).contiguous(memory_format=torch.channels_last)
        x = self.pad(x).contiguous(memory_format=torch.channels_last)
        index = 0
        for depth in cfg.conv_stages:
            for _ in range(depth):
                x = apply(index, self.convs[index], x)
                index += 1
            x = self.pool(x)
        x = x.flatten(1)
        for layer in self.dense:
            x = apply(index, layer, x)
            index += 1
        return self.truncate(x)

    def _sll_layers(self) -> list[SLLConv2d | SLLLinear]:
        return [*self.convs, *self.dense]

    def clear_rescaling_cache(self) -> None:
        """Drop every layer's cached rescaling (needed only after writes through ``param.data``)."""
        for layer in self._sll_layers():
            layer.clear_rescaling_cache()

    def _check_input(self, x: Tensor) -> None:
        cfg = self.config
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        expected = (cfg.in_channels, cfg.input_size, cfg.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
