"""torchmetrics ecosystem behaviour: FeatureShare/MetricCollection, copies, devices, a training-loop example."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.wrappers import FeatureShare

from lipsim_tm.losses import LipSimLoss
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import images, tiny, triplets

W = "random:tiny32"


def _floats(result: object) -> object:
    if isinstance(result, dict):
        return {k: _floats(v) for k, v in result.items()}
    return result.detach().cpu().double()


def _inputs() -> dict[str, torch.Tensor]:
    ref, img0, img1, target = triplets(0, n=4, noise=0.02)
    return {"x": images(1, n=4), "y": images(2, n=4), "ref": ref, "img0": img0, "img1": img1, "target": target}


def test_feature_share_uses_one_backbone_and_matches_separate_metrics() -> None:
    metrics = {
        "cosine": LipSimDistance(W),
        "l2": LipSimDistance(W, distance="l2"),
        "afc": Certified2AFCAccuracy(W, epsilons=(0.0, 0.05)),
    }
    separate = {k: copy.deepcopy(v) for k, v in metrics.items()}
    shared = FeatureShare(metrics)
    nets = {id(m.net) for m in shared.values()}
    assert len(nets) == 1
    batch = _inputs()
    shared.update(**batch)
    got = shared.compute()
    for name, metric in separate.items():
        kwargs = {k: batch[k] for k in ("x", "y")} if name != "afc" else {k: batch[k] for k in batch if k not in "xy"}
        metric.update(**kwargs)
        expected = _floats(metric.compute())
        if isinstance(expected, dict):
            for key, value in expected.items():
                torch.testing.assert_close(_floats(got[key]), value)  # MetricCollection flattens dict results
        else:
            torch.testing.assert_close(_floats(got[name]), expected)


def test_feature_share_runs_the_network_once_for_metrics_fed_the_same_batch() -> None:
    metrics = {"plain": Certified2AFCAccuracy(W, certificate="plain"), "aware": Certified2AFCAccuracy(W)}
    separate = {k: copy.deepcopy(v) for k, v in metrics.items()}
    shared = FeatureShare(metrics)
    calls: list[int] = []
    shared["plain"].backbone.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    batch = _inputs()
    triplet = (batch["ref"], batch["img0"], batch["img1"], batch["target"])
    shared.update(*triplet)
    assert calls == [12]  # one forward of the 3 x 4 images serves both metrics
    shared.update(*triplets(5, n=4, noise=0.02))  # a new batch: one more forward, no stale cache hit
    assert calls == [12, 12]
    got = shared.compute()
    for name, metric in separate.items():
        metric.update(*triplet)
        metric.update(*triplets(5, n=4, noise=0.02))
        for key, value in _floats(metric.compute()).items():
            torch.testing.assert_close(_floats(got[f"{name}_{key}"]), value)  # colliding keys get prefixes


def test_metric_collection_of_both_metrics() -> None:
    collection = MetricCollection({"distance": LipSimDistance(W), "afc": Certified2AFCAccuracy(W)})
    collection.update(**_inputs())
    result = collection.compute()
    assert "distance" in result
    assert "score_2afc" in result


@pytest.mark.parametrize("copier", ["clone", "deepcopy", "pickle"])
def test_copies_compute_the_same(copier: str) -> None:
    metric = Certified2AFCAccuracy(W, per_sample=True)
    batch = _inputs()
    metric.update(batch["ref"], batch["img0"], batch["img1"], batch["target"])
    other = {
        "clone": lambda m: m.clone(),
        "deepcopy": copy.deepcopy,
        "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    }[copier](metric)
    assert other.backbone is not metric.backbone
    mine, theirs = _floats(metric.compute()), _floats(other.compute())
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    other.update(batch["ref"], batch["img0"], batch["img1"], batch["target"])
    assert float(other.compute()["score_2afc"]) == pytest.approx(float(metric.compute()["score_2afc"]))
    assert isinstance(hash(metric), int)


def test_constants_are_read_only() -> None:
    metric = LipSimDistance(W)
    with pytest.raises(RuntimeError, match="Can't change const"):
        metric.higher_is_better = True


def test_to_device_moves_states_and_backbone(device: torch.device) -> None:
    metric = LipSimDistance(W, reduction="none", certify_eps=0.1).to(device)
    assert next(metric.backbone.parameters()).device.type == device.type
    assert metric.sum_distance.device.type == device.type
    x, y = images(3, n=2, size=(20, 30)), images(4, n=2, size=(20, 30))
    metric.update(x.to(device), y.to(device))
    cpu = LipSimDistance(W, reduction="none", certify_eps=0.1)
    cpu.update(x, y)
    torch.testing.assert_close(_floats(metric.compute()), _floats(cpu.compute()), atol=1e-5, rtol=1e-4)


def test_training_loop_logging_example() -> None:
    """Worked example (plain PyTorch): train a small denoiser with LipSimLoss; log LipSimDistance per step
    (``forward`` gives the batch value) and per epoch (``compute`` then ``reset``)."""
    torch.manual_seed(0)
    clean = images(5, n=8, size=(32, 32))
    noisy = (clean + 0.2 * torch.randn_like(clean)).clamp(0, 1)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid())
    loss_fn = LipSimLoss(W)
    train_metric = LipSimDistance(W)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    assert all(p.requires_grad for p in model.parameters())
    history: list[float] = []
    for _epoch in range(3):
        for batch in range(2):
            x, target = noisy[4 * batch : 4 * batch + 4], clean[4 * batch : 4 * batch + 4]
            output = model(x)
            loss = loss_fn(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_value = train_metric(output.detach(), target)  # batch value, for a per-step log
            assert torch.isfinite(step_value)
        history.append(float(train_metric.compute()))  # epoch value, for a per-epoch log
        train_metric.reset()
    assert history[-1] < history[0]
    assert list(loss_fn.parameters()) == []
    assert loss_fn.state_dict() == {}


def test_lightning_module_holding_the_metrics() -> None:
    lightning = pytest.importorskip("lightning")

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Conv2d(3, 3, 1)
            self.metric = LipSimDistance(tiny())

    module = Module()
    assert set(module.state_dict()) == {"net.weight", "net.bias"}


def test_plot_both_metrics() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    distance = LipSimDistance(W)
    distance.update(images(1, n=2), images(2, n=2))
    fig, _ = distance.plot()
    assert fig is not None
    afc = Certified2AFCAccuracy(W)
    afc.update(*triplets(3, n=2))
    fig, _ = afc.plot()
    assert fig is not None
