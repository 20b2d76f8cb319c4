"""How close one SLL convolution layer of LipSim ``small`` gets to this CPU's peak, in several formulations.

    python benchmarks/bench_cpu_kernels.py --threads 2

The batch-1 forward of ``small`` is 20 SLL convolution layers at 224x224 (45 channels, inner width 5:
a 45 -> 5 and a 5 -> 45 3x3 convolution, 2 * 224^2 * 45 * 5 * 9 = 203 MMAC per layer) plus 7 dense
layers. Measured here, each the median of ``--repeats`` calls after a warm-up, one image:

- the machine's attainable float32 rate: a 1024^3 matrix product (MKL/oneDNN sgemm), in GMAC/s;
- one cached SLL layer (conv -> ReLU -> conv -> residual add, the library's eval-mode path) with
  activations in channels_last (the library's choice), NCHW, and oneDNN's blocked layout
  (``torch.utils.mkldnn``);
- the same layer as two matrix products: the 45 -> 5x9 taps as one GEMM on planar data, shifted sums,
  im2col of the 5-channel hidden map, and a second GEMM fused with the residual (``addmm_``).

Reports ms per layer, GMAC/s and the fraction of the sgemm rate. Writes ``results/cpu-kernels.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
import torch.utils.mkldnn as mkldnn_utils
from torch import Tensor, nn

from common import apply_timing_options, machine_description, median_seconds, timing_parser, write_json

CHANNELS, INNER, SIZE = 45, 5, 224
LAYER_MACS = 2 * SIZE * SIZE * CHANNELS * INNER * 9


def sgemm_gmacs(repeats: int) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 1024**3 / median_seconds(lambda: a @ b, repeats=repeats) / 1e9


def layer_weights(seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Forward kernel ``(5, 45, 3, 3)``, bias ``(5,)`` and folded back kernel ``(45, 5, 3, 3)``."""
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(INNER, CHANNELS, 3, 3, generator=gen) * 0.05,
        torch.randn(INNER, generator=gen) * 0.05,
        torch.randn(CHANNELS, INNER, 3, 3, generator=gen) * 0.05,
    )


def conv_layer(kernel: Tensor, bias: Tensor, back: Tensor) -> Callable[[Tensor], Tensor]:
    """The library's cached layer (``SLLConv2d.cached_forward``) on dense tensors of any memory format."""

    def layer(x: Tensor) -> Tensor:
        hidden = F.conv2d(x, kernel, bias, padding=1).relu_()
        return F.conv2d(hidden, back, padding=1).add_(x)

    return layer


def blocked_layer(kernel: Tensor, bias: Tensor, back: Tensor) -> Callable[[Tensor], Tensor]:
    """The same layer on oneDNN's opaque blocked tensors (prepacked weights)."""
    forward, backward = nn.Conv2d(CHANNELS, INNER, 3, padding=1), nn.Conv2d(INNER, CHANNELS, 3, padding=1, bias=False)
    with torch.no_grad():
        forward.weight.copy_(kernel)
        forward.bias.copy_(bias)
        backward.weight.copy_(back)
    forward, backward = mkldnn_utils.to_mkldnn(forward.eval()), mkldnn_utils.to_mkldnn(backward.eval())

    def layer(x: Tensor) -> Tensor:
        return backward(torch.relu(forward(x))) + x

    return layer


def gemm_layer(kernel: Tensor, bias: Tensor, back: Tensor) -> Callable[[Tensor], Tensor]:
    """The layer as two GEMMs: taps of the forward conv as one product, back conv as im2col + product."""
    taps = kernel.permute(2, 3, 0, 1).reshape(9 * INNER, CHANNELS)  # row tap * 5 + o
    back_taps = back.permute(2, 3, 1, 0).reshape(9 * INNER, CHANNELS)  # row tap * 5 + i, column c_out

    def layer(x: Tensor) -> Tensor:  # x: (1, 45, H, W) channels_last
        pixels = x.permute(0, 2, 3, 1).reshape(SIZE * SIZE, CHANNELS)
        partial_sums = F.pad((taps @ pixels.t()).view(9, INNER, SIZE, SIZE), (1, 1, 1, 1))
        hidden = bias.view(INNER, 1, 1).expand(INNER, SIZE, SIZE).clone()
        for tap in range(9):
            dy, dx = divmod(tap, 3)
            hidden += partial_sums[tap, :, dy : dy + SIZE, dx : dx + SIZE]
        padded = F.pad(hidden.relu_(), (1, 1, 1, 1))
        columns = torch.empty(9, INNER, SIZE, SIZE)
        for tap in range(9):
            dy, dx = divmod(tap, 3)
            columns[tap] = padded[:, dy : dy + SIZE, dx : dx + SIZE]
        out = x.clone(memory_format=torch.channels_last)
        out.permute(0, 2, 3, 1).reshape(SIZE * SIZE, CHANNELS).addmm_(columns.view(9 * INNER, -1).t(), back_taps)
        return out

    return layer


def main(argv: Sequence[str] | None = None) -> dict:
    parser = timing_parser(__doc__.splitlines()[0], repeats=10)
    args = parser.parse_args(argv)
    apply_timing_options(args)
    peak = sgemm_gmacs(args.repeats)
    weights = layer_weights()
    x = torch.randn(1, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    channels_last = x.contiguous(memory_format=torch.channels_last)
    variants = {
        "oneDNN channels_last (library)": (conv_layer(*weights), channels_last),
        "oneDNN NCHW": (conv_layer(*weights), x),
        "oneDNN blocked (to_mkldnn)": (blocked_layer(*weights), x.to_mkldnn()),
        "two GEMMs (planar taps, im2col)": (gemm_layer(*weights), channels_last),
    }
    reference = conv_layer(*weights)(channels_last)
    rows = []
    with torch.no_grad():
        for name, (layer, data) in variants.items():
            out = layer(data)
            difference = ((out.to_dense() if out.is_mkldnn else out) - reference).abs().max().item()
            seconds = median_seconds(lambda layer=layer, data=data: layer(data), repeats=args.repeats)
            rows.append(
                {
                    "variant": name,
                    "ms_per_layer": seconds * 1e3,
                    "gmacs": LAYER_MACS / seconds / 1e9,
                    "fraction_of_sgemm": LAYER_MACS / seconds / 1e9 / peak,
                    "max_difference": difference,
                }
            )
            print(rows[-1], flush=True)
    result = {"machine": machine_description(), "sgemm_gmacs": peak, "layer_macs": LAYER_MACS, "rows": rows}
    write_json("cpu-kernels", result, args.out_dir)
    print(f"sgemm 1024^3: {peak:.1f} GMAC/s")
    return result


if __name__ == "__main__":
    main()
