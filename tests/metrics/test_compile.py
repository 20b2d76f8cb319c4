"""``compile=True``: torch.compile of the network's forward only; clear failures without a C++ compiler."""

from __future__ import annotations

import re
import sys

import pytest
import torch
from torch._inductor import exc

from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from lipsim_tm.models import compiling
from metrics_helpers import images, tiny, triplets


def test_compile_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="compile must be a bool, got 'yes'"):
        LipSimDistance(tiny(), compile="yes")


def test_missing_compiler_fails_at_construction_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiler() -> str:
        raise exc.InvalidCxxCompiler()

    monkeypatch.setattr(compiling, "_find_inductor_compiler", lambda: no_compiler)
    for metric in (LipSimDistance, Certified2AFCAccuracy):
        with pytest.raises(RuntimeError, match=r"compile=True needs a C\+\+ compiler.*or pass compile=False"):
            metric(tiny(), compile=True)


def test_the_compiler_lookup_of_this_torch_release_is_found() -> None:
    assert callable(compiling._find_inductor_compiler())  # cpp_builder (torch >= 2.5) or codecache (older)


def test_a_torch_without_a_known_compiler_lookup_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch._inductor.cpp_builder", None)  # import -> ImportError
    monkeypatch.setitem(sys.modules, "torch._inductor.codecache", None)
    with pytest.raises(RuntimeError, match=rf"compile=True: torch {re.escape(torch.__version__)} has no inductor C"):
        LipSimDistance(tiny(), compile=True)


def test_compile_registers_no_module_and_no_state() -> None:
    eager, compiled = LipSimDistance(tiny()), LipSimDistance(tiny(), compile=True)  # compiles lazily: no call here
    assert [name for name, _ in compiled.named_modules()] == [name for name, _ in eager.named_modules()]
    assert compiled.state_dict().keys() == eager.state_dict().keys()


@pytest.mark.slow
def test_compiled_metrics_match_eager() -> None:
    x, y = images(1, n=2), images(2, n=2)
    eager, compiled = LipSimDistance(tiny()), LipSimDistance(tiny(), compile=True)
    for metric in (eager, compiled):
        metric.update(x, y)
    torch.testing.assert_close(compiled.compute(), eager.compute(), rtol=1e-5, atol=1e-6)
    batch = triplets(0, n=2)
    cert_eager, cert_compiled = Certified2AFCAccuracy(tiny()), Certified2AFCAccuracy(tiny(), compile=True)
    for metric in (cert_eager, cert_compiled):
        metric.update(*batch)
    assert cert_compiled.compute()["score_2afc"] == cert_eager.compute()["score_2afc"]


@pytest.mark.slow
def test_compiled_network_is_one_graph_that_follows_weight_updates_of_a_shared_backbone() -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()  # graphs compiled by earlier tests in this process
    net = tiny()  # shared (not owned): a trainer could keep updating it
    compiled, eager = LipSimDistance(net, compile=True), LipSimDistance(net)
    batch = torch.cat([images(3, n=2), images(4, n=2)])
    with torch.no_grad():
        before = compiled._features(batch)
        torch.testing.assert_close(before, eager._features(batch), rtol=1e-6, atol=1e-7)
        net.convs[0].kernel.mul_(0.5)  # an in-place update, as an optimizer step does
        after = compiled._features(batch)
        torch.testing.assert_close(after, eager._features(batch), rtol=1e-6, atol=1e-7)
    assert not torch.allclose(before, after)
    assert counters["stats"]["unique_graphs"] == 1  # no recompilation per layer or per weight update
    net.train()  # training mode: the rescaling cache is unusable, so the call runs eagerly (same numbers)
    with torch.no_grad():
        torch.testing.assert_close(compiled._features(batch), after, rtol=1e-6, atol=1e-7)
