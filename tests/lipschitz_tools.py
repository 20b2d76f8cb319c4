"""Helpers for testing l2 Lipschitz bounds: sampled pairs, VJPs, an adversarial search and exact spectra.

Every function treats the first dimension as a batch of independent samples: ``f`` must map each
sample on its own (true for every layer and backbone here), so per-sample ratios are meaningful.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor

from lipsim_tm.nn import SLLConv2d, SLLLinear

Fn = Callable[[Tensor], Tensor]


def _flat_norm(x: Tensor) -> Tensor:
    """Per-sample l2 norm, ``(N, ...) -> (N,)``."""
    return x.flatten(1).norm(dim=1)


def random_pairs(
    shape: tuple[int, ...],
    *,
    scale: float,
    relative_gap: float,
    seed: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Gaussian points ``x`` of scale ``scale`` and partners ``y = x + d`` with ``||d|| ~ relative_gap * ||x||``.

    Returns two tensors of shape ``shape`` (``shape[0]`` samples); half of the partners are
    independent points of the same scale instead of nearby ones, so far and nearby pairs are both
    exercised.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    d = torch.randn(shape, generator=gen, dtype=torch.float64) * (scale * relative_gap)
    far = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    n_far = shape[0] // 2
    y = torch.cat([far[:n_far], x[n_far:] + d[n_far:]])
    return x.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)


def pair_ratios(f: Fn, x: Tensor, y: Tensor) -> Tensor:
    """``||f(x_i) - f(y_i)|| / ||x_i - y_i||`` for each sample ``i``, shape ``(N,)``."""
    with torch.no_grad():
        return _flat_norm(f(x) - f(y)) / _flat_norm(x - y)


def vjp_ratios(f: Fn, x: Tensor, v: Tensor) -> Tensor:
    """``||J_i^T v_i|| / ||v_i||`` per sample, with ``J_i`` the Jacobian of ``f`` at ``x_i`` (autograd)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x, grad_outputs=v)
    return _flat_norm(grad) / _flat_norm(v)


def local_spectral_norm(f: Fn, x: Tensor, *, iters: int = 30, seed: int = 0) -> Tensor:
    """Per-sample ``||J(x_i)||_2`` by power iteration on ``J^T J`` (forward- and reverse-mode AD), ``(N,)``.

    A lower bound that converges to the local Lipschitz constant; the last iterate's ``||J u||``.
    """
    gen = torch.Generator().manual_seed(seed)
    view = (-1, *[1] * (x.ndim - 1))
    x = x.detach().requires_grad_(True)
    out = f(x)
    u = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(dtype=x.dtype, device=x.device)
    u = u / _flat_norm(u).reshape(view)
    sigma = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for _ in range(iters):
        with fwAD.dual_level():
            ju = fwAD.unpack_dual(f(fwAD.make_dual(x.detach(), u))).tangent
        sigma = _flat_norm(ju)
        (jtju,) = torch.autograd.grad(out, x, grad_outputs=ju, retain_graph=True)
        u = jtju / _flat_norm(jtju).clamp_min(torch.finfo(x.dtype).tiny).reshape(view)
    return sigma.detach()


def ascent_max_ratio(
    f: Fn,
    x0: Tensor,
    *,
    steps: int = 60,
    lr: float = 0.05,
    relative_gap: float = 1e-2,
    seed: int = 0,
) -> float:
    """Largest ``||f(x) - f(y)|| / ||x - y||`` found by Adam ascent on pairs, started around ``x0``.

    The pair is ``x = s * z`` and ``y = x + exp(g) * u / ||u||`` with ``s = rms(x0)``; Adam maximises
    ``log ||f(x) - f(y)|| - log ||x - y||`` over ``z``, ``u`` and the log-gap ``g`` for every sample
    of the batch independently. Returns the maximum ratio over all iterates and samples.
    """
    gen = torch.Generator().manual_seed(seed)
    dtype, device = x0.dtype, x0.device
    scale = x0.detach().pow(2).mean().sqrt().clamp_min(torch.finfo(dtype).tiny)
    z = (x0.detach() / scale).clone().requires_grad_(True)
    u = torch.randn(x0.shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device).requires_grad_(True)
    start_gap = torch.log(scale * relative_gap * x0[0].numel() ** 0.5)
    log_gap = torch.full((x0.shape[0],), float(start_gap), dtype=dtype, device=device, requires_grad=True)
    opt = torch.optim.Adam([z, u, log_gap], lr=lr)
    view = (-1, *[1] * (x0.ndim - 1))
    best = 0.0
    for _ in range(steps + 1):
        x = scale * z
        direction = u / _flat_norm(u).reshape(view)
        y = x + torch.exp(log_gap).reshape(view) * direction
        log_ratio = torch.log(_flat_norm(f(x) - f(y))) - torch.log(_flat_norm(x - y))
        best = max(best, float(log_ratio.detach().max().exp()))
        opt.zero_grad()
        (-log_ratio.sum()).backward()
        opt.step()
    return best


def conv_operator_matrix(kernel: Tensor, height: int, width: int) -> Tensor:
    """Dense matrix of ``x -> conv2d(x, kernel, padding=1)`` on ``(C, height, width)`` images.

    Shape ``(inner * height * width, C * height * width)``, both sides flattened in C-order.
    """
    channels = kernel.shape[1]
    n = channels * height * width
    basis = torch.eye(n, dtype=kernel.dtype, device=kernel.device).reshape(n, channels, height, width)
    columns = F.conv2d(basis, kernel, padding=1)  # (n, inner, H, W): column j of the operator
    return columns.reshape(n, -1).T


def sll_weight_matrix(layer: SLLConv2d | SLLLinear, image_size: int | None = None) -> Tensor:
    """The layer's linear map ``W`` as a dense float64 matrix (the conv operator on a square image)."""
    with torch.no_grad():
        if isinstance(layer, SLLLinear):
            return layer.weight.detach().double()
        if image_size is None:
            raise ValueError("image_size is needed for an SLLConv2d")
        return conv_operator_matrix(layer.kernel.detach().double(), image_size, image_size)


def sll_rescaling_matrix_diag(layer: SLLConv2d | SLLLinear, t: Tensor, image_size: int | None) -> Tensor:
    """``t`` expanded to the diagonal of ``T`` acting on the hidden units of :func:`sll_weight_matrix`."""
    t = t.detach().double()
    if isinstance(layer, SLLLinear):
        return t
    return t.repeat_interleave(image_size * image_size)


def sll_jacobian(layer: SLLConv2d | SLLLinear, x: Tensor, t: Tensor, image_size: int | None = None) -> Tensor:
    """Closed-form Jacobian ``I - 2 W^T T D W`` of an SLL layer at one input ``x`` (unbatched), float64.

    ``D`` is the ReLU derivative mask at ``W x + b``; ``t`` is the rescaling vector to use.
    """
    w = sll_weight_matrix(layer, image_size)
    bias = layer.bias.detach().double().reshape(-1)
    if isinstance(layer, SLLConv2d):
        bias = bias.repeat_interleave(image_size * image_size)
    pre = w @ x.detach().double().reshape(-1) + bias
    diag = sll_rescaling_matrix_diag(layer, t, image_size) * (pre > 0).double()
    return torch.eye(w.shape[1], dtype=torch.float64, device=w.device) - 2.0 * w.T @ (diag[:, None] * w)


def sll_gram_lambda_max(layer: SLLConv2d | SLLLinear, t: Tensor, image_size: int | None = None) -> float:
    """``lambda_max(T^(1/2) W W^T T^(1/2))`` in float64.

    The Jacobians of an SLL layer are ``J_D = I - 2 W^T T D W`` (symmetric), whose eigenvalues are
    ``1 - 2 mu`` with ``mu`` in ``[0, lambda_max(T^(1/2) D W W^T D T^(1/2))]``, monotone in the mask
    ``D``. The all-active mask is reachable whenever ``W`` has full row rank, so the layer's exact
    Lipschitz constant is ``max(1, 2 * lambda - 1)``: it is 1-Lipschitz iff ``lambda <= 1``.
    """
    w = sll_weight_matrix(layer, image_size)
    root = sll_rescaling_matrix_diag(layer, t, image_size).clamp_min(0).sqrt()
    scaled = root[:, None] * w
    return float(torch.linalg.matrix_norm(scaled, ord=2) ** 2)


def conv_gram_lambda_max_plane(layer: SLLConv2d, t: Tensor, grid: int = 64) -> float:
    """``lambda_max(T^(1/2) A A^T T^(1/2))`` for the conv operator ``A`` on the infinite plane (float64).

    ``A`` commutes with translations, so its spectrum is that of the ``inner x inner`` symbol
    ``K_hat(w) K_hat(w)^*`` over frequencies ``w``; sampled on a ``grid x grid`` frequency lattice
    (a lower bound that converges quickly; images of 224 pixels behave like the plane).
    """
    kernel = layer.kernel.detach().double()
    symbol = torch.fft.fft2(kernel, s=(grid, grid))  # (inner, C, grid, grid)
    symbol = symbol.permute(2, 3, 0, 1)  # (grid, grid, inner, C)
    root = t.detach().double().clamp_min(0).sqrt().to(symbol.device)
    scaled = root[:, None] * symbol
    return float(torch.linalg.matrix_norm(scaled, ord=2).max() ** 2)


def push_parameters(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    *,
    steps: int = 5,
    lr: float = 0.3,
    seed: int = 0,
) -> None:
    """Move the parameters far from their initialisation with a few large Adam steps (in place).

    The loss is adversarial to the bound: it rewards expansion, ``-||f(x) - f(y)||^2 / ||x - y||^2``
    on random pairs, plus a regression of ``f(x)`` to large random targets.
    """
    gen = torch.Generator().manual_seed(seed)
    param = next(module.parameters())
    dtype, device = param.dtype, param.device

    def draw(shape: tuple[int, ...]) -> Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)

    opt = torch.optim.Adam(module.parameters(), lr=lr)
    for _ in range(steps):
        x, y = draw(input_shape), draw(input_shape)
        fx = module(x)
        expansion = (_flat_norm(fx - module(y)) / _flat_norm(x - y)).pow(2).mean()
        target = 10.0 * draw(tuple(fx.shape))
        loss = (fx - target).pow(2).mean() - expansion
        opt.zero_grad()
        loss.backward()
        opt.step()


def _measure_layer_detection(seeds: int = 20) -> None:
    """Print, per SLL layer kind and training state, the exact critical factor and detection rates.

    A layer whose rescaling is multiplied by ``factor`` has exact Lipschitz constant
    ``max(1, 2 * factor * lambda - 1)``, so it is broken iff ``factor > 1 / lambda`` (the critical
    factor). For each factor of a grid this reports how many of ``seeds`` random layers each check
    flags (ratio above ``1 + 1e-6``): the exact spectral check, power iteration at 8 random points,
    the Adam pair search (60 steps, 8 starts) and 8 random pairs.
    """
    factors = [1.05, 1.1, 1.2, 1.3, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]
    tol = 1e-6
    for kind in ["dense", "conv"]:
        for state in ["init", "pushed", "pushed+q"]:
            start = time.time()
            counts = {m: [0] * len(factors) for m in ["exact", "power", "ascent", "pairs"]}
            critical = []
            for seed in range(seeds):
                torch.manual_seed(seed)
                if kind == "dense":
                    layer, shape, size = SLLLinear(32, 8).double(), (8, 32), None
                else:
                    layer, shape, size = SLLConv2d(4, 4).double(), (8, 4, 6, 6), 6
                _push(layer, shape, state, seed)
                t = layer.compute_rescaling().detach()
                lam = sll_gram_lambda_max(layer, t, size)
                critical.append(1.0 / lam)
                for k, factor in enumerate(factors):
                    _scale_rescaling(layer, factor)
                    x, y = random_pairs(shape, scale=1.0, relative_gap=1e-3, seed=seed)
                    counts["exact"][k] += 2 * factor * lam - 1 > 1 + tol
                    counts["pairs"][k] += pair_ratios(layer, x, y).max().item() > 1 + tol
                    counts["power"][k] += local_spectral_norm(layer, x).max().item() > 1 + tol
                    counts["ascent"][k] += ascent_max_ratio(layer, x, seed=seed) > 1 + tol
                    del layer.compute_rescaling
            c = torch.tensor(critical)
            print(
                f"{kind} {state}: critical factor min {c.min():.3f} median {c.median():.3f} max {c.max():.3f}"
                f" ({time.time() - start:.0f} s)"
            )
            for method, row in counts.items():
                print(f"  {method:7s}", " ".join(f"{f}:{c}/{seeds}" for f, c in zip(factors, row, strict=True)))


def _measure_backbone_detection(seeds: int = 4) -> None:
    """Like :func:`_measure_layer_detection` for ``tiny32`` with every dense (or conv) layer broken.

    Checks: power iteration (30 steps) at 2 random points and the Adam pair search (40 steps, 2 starts).
    """
    from lipsim_tm import LipSimBackbone

    factors = [1.3, 2.0, 3.0, 4.0, 6.0, 10.0]
    tol = 1e-6
    shape = (2, 3, 32, 32)
    for broken in [SLLLinear, SLLConv2d]:
        for state in ["init", "pushed+q"]:
            start = time.time()
            counts = {m: [0] * len(factors) for m in ["power", "ascent"]}
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = LipSimBackbone("tiny32").double()
                _push(model, shape, state, seed)
                layers = [m for m in model.modules() if isinstance(m, broken)]
                x, _ = random_pairs(shape, scale=1.0, relative_gap=1e-3, seed=seed)
                for k, factor in enumerate(factors):
                    for m in layers:
                        _scale_rescaling(m, factor)
                    counts["power"][k] += local_spectral_norm(model, x).max().item() > 1 + tol
                    counts["ascent"][k] += ascent_max_ratio(model, x, steps=40, seed=seed) > 1 + tol
                    for m in layers:
                        del m.compute_rescaling
            print(f"tiny32, {broken.__name__} broken, {state} ({time.time() - start:.0f} s)")
            for method, row in counts.items():
                print(f"  {method:7s}", " ".join(f"{f}:{c}/{seeds}" for f, c in zip(factors, row, strict=True)))


def _measure_critical_factors(seeds: int = 20) -> None:
    """Print critical factors ``1 / lambda`` at init for the layer shapes of ``small`` and ``tiny32``."""
    cases = [
        ("SLLConv2d(45, 5), plane", lambda: SLLConv2d(45, 5), lambda m, t: conv_gram_lambda_max_plane(m, t)),
        ("SLLConv2d(45, 5), 6x6", lambda: SLLConv2d(45, 5), lambda m, t: sll_gram_lambda_max(m, t, 6)),
        ("SLLLinear(512, 64)", lambda: SLLLinear(512, 64), sll_gram_lambda_max),
        ("SLLLinear(8820, 1024)", lambda: SLLLinear(8820, 1024), sll_gram_lambda_max),
    ]
    for name, build, lam in cases:
        n = 3 if "8820" in name else seeds
        critical = []
        for seed in range(n):
            torch.manual_seed(seed)
            layer = build().double()
            critical.append(1.0 / lam(layer, layer.compute_rescaling()))
        c = torch.tensor(critical)
        print(f"{name}: critical factor min {c.min():.3f} median {c.median():.3f} max {c.max():.3f} ({n} seeds)")


def _scale_rescaling(layer: SLLConv2d | SLLLinear, factor: float) -> None:
    """Break ``layer`` on purpose: its rescaling becomes ``factor * t`` (undo with ``del layer.compute_rescaling``)."""
    original = type(layer).compute_rescaling
    layer.compute_rescaling = lambda: factor * original(layer)


def _push(module: torch.nn.Module, shape: tuple[int, ...], state: str, seed: int) -> None:
    """``state``: ``init`` (nothing), ``pushed`` (10 Adam steps, lr 0.3), ``pushed+q`` (also ``q *= 10``)."""
    if state == "init":
        return
    push_parameters(module, shape, steps=10, lr=0.3, seed=seed)
    if state == "pushed+q":
        with torch.no_grad():
            for name, p in module.named_parameters():
                if name.split(".")[-1] == "q":
                    p.mul_(10.0)


if __name__ == "__main__":
    # The mutation factors of tests/README_properties.md: python tests/lipschitz_tools.py [layers] [backbone] [critical]
    import sys
    import time

    torch.set_num_threads(1)
    which = sys.argv[1:] or ["layers", "backbone", "critical"]
    if "layers" in which:
        _measure_layer_detection()
    if "backbone" in which:
        _measure_backbone_detection()
    if "critical" in which:
        _measure_critical_factors()
