"""Certified2AFCAccuracy: scoring against the functional two_afc, targets, the shared-backbone policy, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lipsim_tm.functional import two_afc
from lipsim_tm.metrics import Certified2AFCAccuracy
from metrics_helpers import tiny, triplets

W = "random:tiny32"
EPS = (0.0, 0.045, 0.092)  # between the radii of these triplets, so the counts discriminate


def _floats(result: dict) -> dict:
    return {k: float(v) for k, v in result.items()}


def _expected(batches: list[tuple[torch.Tensor, ...]], epsilons: tuple[float, ...] = EPS, **kw: object) -> dict:
    """Scores by hand from the functional decisions and radii (float64)."""
    score, total, decided, natural = 0.0, 0, 0, 0
    cert_ref, cert_all = [0] * len(epsilons), [0] * len(epsilons)
    for ref, img0, img1, target in batches:
        r = two_afc(ref, img0, img1, weights=W, **kw)
        for i in range(ref.shape[0]):
            p = float(target[i])
            total += 1
            if bool(r.tie[i]):
                score += 0.5
            else:
                score += p if bool(r.prefers_img1[i]) else 1 - p
            if p == 0.5:
                continue
            decided += 1
            correct = not bool(r.tie[i]) and bool(r.prefers_img1[i]) == (p > 0.5)
            natural += correct
            for k, eps in enumerate(epsilons):
                cert_ref[k] += correct and float(r.radius_reference[i]) > eps
                cert_all[k] += correct and float(r.radius_all[i]) > eps
    out = {"score_2afc": score / total, "natural_accuracy": natural / decided}
    out.update({f"certified_2afc@{e:.4g}": c / decided for e, c in zip(epsilons, cert_ref, strict=True)})
    out.update({f"certified_2afc_all@{e:.4g}": c / decided for e, c in zip(epsilons, cert_all, strict=True)})
    return out


def _batches() -> list[tuple[torch.Tensor, ...]]:
    a = triplets(0, n=6, noise=0.02)
    b = triplets(1, n=5, size=(24, 40), noise=0.02)
    # exact 0.5 targets, hard labels and a tie (img0 == img1) in the second batch
    target = b[3].clone()
    target[:3] = torch.tensor([0.5, 1.0, 0.0])
    img1 = b[2].clone()
    img1[4] = b[1][4]
    return [a, (b[0], b[1], img1, target)]


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("normalization", ["augment", "ball"])
def test_scores_equal_hand_computation_from_the_functional(distance: str, normalization: str) -> None:
    kw = {"distance": distance, "normalization": normalization, "certificate": "plain"}
    metric = Certified2AFCAccuracy(W, epsilons=EPS, **kw)
    batches = _batches()
    for batch in batches:
        metric.update(*batch)
    result = metric.compute()
    expected = _expected(batches, **kw)
    assert set(result) == set(expected)
    for key, value in expected.items():
        assert float(result[key]) == pytest.approx(value, abs=1e-6), key
    # the radii are not all above or all below the epsilons: the test discriminates
    assert 0 < float(result["certified_2afc@0.092"]) < float(result["certified_2afc@0"])
    assert 0 < float(result["certified_2afc_all@0.045"]) < float(result["certified_2afc_all@0"])


def test_ties_count_half_and_are_never_certified() -> None:
    ref, img0, _, _ = triplets(2, n=4)
    metric = Certified2AFCAccuracy(W, epsilons=(0.0,))
    metric.update(ref, img0, img0.clone(), torch.tensor([1.0, 0.0, 0.9, 0.2]))
    result = metric.compute()
    assert float(result["score_2afc"]) == 0.5
    assert float(result["certified_2afc@0"]) == 0.0
    assert float(result["certified_2afc_all@0"]) == 0.0


def test_half_targets_are_excluded_from_certified_accuracy() -> None:
    ref, img0, img1, _ = triplets(3, n=4, noise=0.01)
    metric = Certified2AFCAccuracy(W, epsilons=(0.0,))
    metric.update(ref, img0, img1, torch.full((4,), 0.5))
    result = metric.compute()
    assert float(result["score_2afc"]) == 0.5
    assert math.isnan(float(result["certified_2afc@0"]))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float16])
def test_hard_label_dtypes_are_accepted(dtype: torch.dtype) -> None:
    ref, img0, img1, _ = triplets(4, n=4)
    labels = torch.tensor([1, 0, 1, 1])
    a, b = Certified2AFCAccuracy(W), Certified2AFCAccuracy(W)
    a.update(ref, img0, img1, labels.to(dtype))
    b.update(ref, img0, img1, labels.float())
    assert _floats(a.compute()) == pytest.approx(_floats(b.compute()))


def test_per_sample_states() -> None:
    metric = Certified2AFCAccuracy(W, per_sample=True)
    batches = _batches()
    for batch in batches:
        metric.update(*batch)
    result = metric.compute()
    ref = torch.cat([b[0] for b in batches[:1]])
    r = two_afc(ref, batches[0][1], batches[0][2], weights=W)
    torch.testing.assert_close(result["radius_reference"][:6], r.radius_reference.float())
    torch.testing.assert_close(result["radius_all"][:6], r.radius_all.float())
    torch.testing.assert_close(result["d0"][:6], r.d0)
    torch.testing.assert_close(result["target"], torch.cat([b[3] for b in batches]))
    assert all(result[k].dtype == torch.float32 and result[k].shape == (11,) for k in ("d0", "d1", "radius_all"))


def test_default_epsilons_follow_the_data_range() -> None:
    assert Certified2AFCAccuracy(W).keys == (
        "certified_2afc@0.1412",
        "certified_2afc@0.2824",
        "certified_2afc@0.4235",
    )
    assert Certified2AFCAccuracy(W, data_range=255.0).epsilons == pytest.approx((36.0, 72.0, 108.0))
    assert Certified2AFCAccuracy(W, data_range=(-1.0, 1.0)).epsilons == pytest.approx((72 / 255, 144 / 255, 216 / 255))


def test_forward_equals_update_compute_and_has_no_graph() -> None:
    batch = _batches()[0]
    a, b = Certified2AFCAccuracy(W), Certified2AFCAccuracy(W)
    ref = batch[0].clone().requires_grad_()
    out = a(ref, *batch[1:])
    b.update(*batch)
    assert _floats(out) == pytest.approx(_floats(b.compute()))
    assert all(v.grad_fn is None for v in out.values())


def test_shared_backbone_is_not_copied_frozen_or_trained() -> None:
    """The trainer pattern: evaluate the model's own backbone at the end of each epoch."""
    net = tiny()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    metric = Certified2AFCAccuracy(net, per_sample=True)
    assert metric.backbone is net
    assert "net" not in {name.split(".")[0] for name in metric.state_dict()}
    batch = _batches()[0]
    net.eval()
    metric.update(*batch)
    first = metric.compute()["d0"].clone()
    assert all(p.requires_grad for p in net.parameters())
    # one training step on the shared network; the metric must see the new weights (no stale cache)
    net.train()
    x = batch[0]
    net(x).pow(2).sum().backward()
    optimizer.step()
    net.eval()
    metric.reset()
    metric.update(*batch)
    after = metric.compute()["d0"]
    fresh = two_afc(*batch[:3], weights=net).d0
    torch.testing.assert_close(after, fresh)
    assert not torch.allclose(first, after)
    # the metric changed nothing on the shared network
    parent = nn.Module()
    parent.metric = metric
    parent.train()
    assert all(p.requires_grad for p in net.parameters())
    assert not net.training  # the caller's eval() above, untouched by parent.train()


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        (torch.rand(5), ValueError, r"target must have shape \(6,\)"),
        (torch.rand(6, 1), ValueError, r"target must have shape \(6,\)"),
        (torch.full((6,), 1.5), ValueError, r"target values must lie in \[0, 1\]"),
        (torch.full((6,), -0.1), ValueError, r"target values must lie in \[0, 1\]"),
        (torch.full((6,), float("nan")), ValueError, "target contains NaN or infinite values"),
        ([0.0] * 6, TypeError, r"target must be a torch\.Tensor"),
    ],
)
def test_bad_target_raises_and_leaves_state_untouched(target: object, error: type[Exception], match: str) -> None:
    metric = Certified2AFCAccuracy(W, per_sample=True)
    batch = _batches()[0]
    metric.update(*batch)
    before = {k: v.clone() for k, v in metric.metric_state.items() if not isinstance(v, list)}
    with pytest.raises(error, match=match):
        metric.update(*batch[:3], target)
    for key, value in before.items():
        assert torch.equal(value, metric.metric_state[key])
    assert all(len(v) == 1 for v in metric.metric_state.values() if isinstance(v, list))


def test_bad_images_and_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr("lipsim_tm.models.registry.PRETRAINED_DIR", tmp_path)  # no shipped default: "default" raises
    ref, img0, img1, target = _batches()[0]
    metric = Certified2AFCAccuracy(W)
    with pytest.raises(ValueError, match="ref and img0 and img1 must have the same shape"):
        metric.update(ref, img0[:, :, :20], img1, target)
    with pytest.raises(ValueError, match=r"img1 values must lie in \[0, 1\]"):
        metric.update(ref, img0, img1 * 255, target)
    with pytest.raises(ValueError, match=r"certificate='plain' needs a 1-Lipschitz normalization"):
        Certified2AFCAccuracy(W, normalization="plain", certificate="plain")
    with pytest.raises(ValueError, match="certificate must be one of"):
        Certified2AFCAccuracy(W, certificate=None)
    with pytest.raises(ValueError, match="epsilons must hold finite numbers >= 0"):
        Certified2AFCAccuracy(W, epsilons=(0.1, -1.0))
    with pytest.raises(TypeError, match="epsilons must be a non-empty sequence"):
        Certified2AFCAccuracy(W, epsilons=())
    with pytest.raises(ValueError, match="epsilons must differ in their first 4 significant digits"):
        Certified2AFCAccuracy(W, epsilons=(0.10001, 0.10002))
    with pytest.raises(ValueError, match="weights='default'"):
        Certified2AFCAccuracy()
