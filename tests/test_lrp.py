"""Checks of the LRP engine (audio_xai_kit.lrp) that can fail, and proofs that they do fail on broken rules.

Tolerances (float64 unless stated): LRP-0 vs gradient x input 1e-10; gradient-trick path vs general path 1e-10;
conservation of conserving composites on bias-free networks 1e-9 (with epsilon = stabilizer = 0);
captum agreement 1e-8 (1e-6 for AudioNet-lite) (max abs error / max |R|).
"""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from audio_xai_kit import lrp
from audio_xai_kit.models import build_model

F64 = torch.float64


def seeded(seed=0):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cnn1d(bias=True, bn=False):
    seeded(0)
    layers = [nn.Conv1d(1, 8, 5, bias=bias)]
    if bn: layers.append(nn.BatchNorm1d(8))
    layers += [nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(8, 8, 3, bias=bias), nn.ReLU(), nn.AvgPool1d(2), nn.Flatten(),
               nn.Linear(8 * 6, 16, bias=bias), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4, bias=bias)]
    m = nn.Sequential(*layers).to(F64)
    if bn:
        with torch.no_grad():
            m[1].running_mean.uniform_(-0.5, 0.5); m[1].running_var.uniform_(0.5, 2)
            m[1].weight.uniform_(0.5, 1.5); m[1].bias.uniform_(-0.2, 0.2)
    return m


class Net2d(nn.Module):
    "A small CNN of the layers captum supports (Conv2d, ReLU, MaxPool2d, Linear, Dropout; flatten in forward)."
    def __init__(self, bias=True, groups=1):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, bias=bias), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 8, 3, bias=bias, groups=groups), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(8 * 5 * 5, 32, bias=bias), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(32, 5, bias=bias))
    def forward(self, x): return self.classifier(self.features(x).flatten(1))


def net2d(bias=True, groups=1):
    seeded(1)
    return Net2d(bias, groups).to(F64)


def audionet_lite(n_classes=10):
    return build_model("audionet-lite", n_classes).to(F64)


def x1d(b=6, n=32, seed=0):
    return torch.randn(b, 1, n, generator=seeded(seed), dtype=F64)


def x2d(b=4, seed=0):
    return torch.randn(b, 1, 28, 28, generator=seeded(seed), dtype=F64)


def xwave(b=3, seed=0):
    return torch.randn(b, 1, 8000, generator=seeded(seed), dtype=F64)


def nobias(model):
    m = copy.deepcopy(model)
    for mod in m.modules():
        if getattr(mod, "bias", None) is not None and not isinstance(mod, nn.BatchNorm1d):
            nn.init.zeros_(mod.bias)
    return m


# ---------------------------------------------------------------- the basic identities
@pytest.mark.parametrize("make,x", [(lambda: cnn1d(bias=False), x1d()), (lambda: cnn1d(bias=True), x1d()),
                                    (lambda: net2d(), x2d()), (audionet_lite, xwave())])
def test_lrp0_is_gradient_x_input(make, x):
    err = lrp.check_gradient_x_input(make(), x, rtol=1e-10)
    assert err < 1e-10


@pytest.mark.parametrize("composite", list(lrp.COMPOSITES))
@pytest.mark.parametrize("make,x", [(lambda: cnn1d(bn=True), x1d()), (lambda: net2d(groups=2), x2d()),
                                    (audionet_lite, xwave(2))])
def test_fast_path_equals_general_path(composite, make, x):
    "The gradient trick and the fusion of divisions give what the general path (modified forward + vjp) gives."
    m = make()
    R1, l1 = lrp.attribute(m, x, composite=composite, epsilon=0.01)
    R2, l2 = lrp.attribute(m, x, composite=composite, epsilon=0.01, use_trick=False)
    assert torch.equal(l1, l2)
    assert float((R1 - R2).abs().max() / R2.abs().max()) < 1e-10


CONSERVING = ["lrp0", "epsilon", "gamma", "alpha1-beta0", "epsilon-gamma", "epsilon-gamma-box", "epsilon-gamma-flat",
              "epsilon-plus", "epsilon-plus-flat", "epsilon-wsquare"]


@pytest.mark.parametrize("composite", CONSERVING)
@pytest.mark.parametrize("make,x", [(lambda: cnn1d(bias=False), x1d(16)), (lambda: net2d(bias=False, groups=2), x2d()),
                                    (lambda: nobias(audionet_lite()), xwave(3))])
def test_conservation_bias_free(composite, make, x):
    err = lrp.check_conservation(make(), x, composite, rtol=1e-9, epsilon=0, stabilizer=0)
    assert err <= 1e-9


def test_conservation_float32_default_parameters():
    "With the default epsilon / stabiliser 1e-6 and float32, conserving composites still agree to 1e-4."
    m = nobias(cnn1d()).float()
    for c in CONSERVING:
        lrp.check_conservation(m, x1d(16).float(), c, rtol=1e-4)


def test_leakage_is_measured():
    "Biases and a large epsilon make relevance leak; alpha2-beta1 does not conserve even without biases."
    m, x = cnn1d(bias=True), x1d(16)
    with torch.no_grad():
        for mod in m.modules():
            if getattr(mod, "bias", None) is not None: mod.bias.uniform_(-0.05, 0.05)
    leak = {}
    for c, kw in [("lrp0", {}), ("epsilon", dict(epsilon=0.5))]:
        R, logits = lrp.attribute(m, x, composite=c, **kw)
        leak[c] = float(lrp.conservation_error(R, logits).abs().max())
    assert leak["lrp0"] > 1e-3 and leak["epsilon"] > 1e-3
    R, logits = lrp.attribute(nobias(m), x, composite="alpha2-beta1", stabilizer=0)
    assert float(lrp.conservation_error(R, logits).abs().max()) > 1e-3
    with pytest.raises(AssertionError, match="not conserved"):
        lrp.check_conservation(m, x, "lrp0", rtol=1e-6)


def test_batchnorm_is_folded():
    "conv -> bn gives the same relevance as one conv with the folded parameters."
    m = cnn1d(bn=True).eval()
    folded = nn.Sequential(*[copy.deepcopy(mod) for i, mod in enumerate(m) if i != 1])
    p = lrp.unit_params(lrp.layer_units(m)[0])
    with torch.no_grad():
        folded[0].weight.copy_(p["weight"]); folded[0].bias.copy_(p["bias"])
    x = x1d()
    for c in ["epsilon-gamma-box", "epsilon", "alpha2-beta1"]:
        R1, l1 = lrp.attribute(m, x, composite=c)
        R2, l2 = lrp.attribute(folded, x, composite=c)
        torch.testing.assert_close(l1, l2)
        torch.testing.assert_close(R1, R2, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- agreement with captum and zennit
@pytest.mark.parametrize("epsilon,gamma", [(1e-6, None), (0.25, None), (1e-6, 0.25), (0.1, 0.5)])
def test_captum_agreement_2d(epsilon, gamma):
    err = lrp.check_captum(net2d(), x2d(), epsilon=epsilon, gamma=gamma, rtol=1e-8)
    assert err < 1e-8


@pytest.mark.parametrize("epsilon,gamma", [(1e-6, None), (0.25, None), (1e-6, 0.25)])
def test_captum_agreement_audionet_lite(epsilon, gamma):
    "AudioNet-lite (Conv1d, MaxPool1d, Flatten, dense layers without ReLU) against captum with rules set by hand."
    x = xwave(3)
    t = torch.tensor([0, 3, 7])
    err = lrp.check_captum(audionet_lite(), x, target=t, epsilon=epsilon, gamma=gamma, rtol=1e-6)
    assert err < 1e-6   # captum's max pooling and flatten carry our epsilon = 1e-12 on activations ~1e-5


def _zennit():
    try:
        import zennit.composites, zennit.canonizers  # noqa: F401
        return zennit
    except Exception as e:   # zennit imports torchvision at import time
        pytest.skip(f"zennit does not import here ({type(e).__name__}: {e}); zennit imports torchvision, "
                    "which is not installed for this torch build")


def _zennit_relevance(model, x, target, composite):
    from zennit.core import Composite
    logits = model(x).detach()
    seed = torch.zeros_like(logits).scatter_(1, target[:, None], logits.gather(1, target[:, None]))
    xg = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(xg)
        R, = torch.autograd.grad(out, xg, seed)
    return R


@pytest.mark.parametrize("name", ["epsilon-gamma-box", "epsilon-plus", "epsilon-plus-flat",
                                  "epsilon-alpha2-beta1", "epsilon-alpha2-beta1-flat"])
def test_zennit_agreement(name):
    zennit = _zennit()
    from zennit import composites as zc
    m, x = net2d().eval(), x2d()
    with torch.no_grad():   # biases of both signs: the bias conventions of every rule are compared too
        for mod in m.modules():
            if getattr(mod, "bias", None) is not None: mod.bias.uniform_(-0.1, 0.1)
    t = m(x).argmax(1)
    low, high = x.amin(dim=(1, 2, 3), keepdim=True).expand_as(x), x.amax(dim=(1, 2, 3), keepdim=True).expand_as(x)
    zcomp = {"epsilon-gamma-box": lambda: zc.EpsilonGammaBox(low=low, high=high),
             "epsilon-plus": zc.EpsilonPlus, "epsilon-plus-flat": zc.EpsilonPlusFlat,
             "epsilon-alpha2-beta1": zc.EpsilonAlpha2Beta1, "epsilon-alpha2-beta1-flat": zc.EpsilonAlpha2Beta1Flat}[name]()
    Rz = _zennit_relevance(m, x, t, zcomp)
    R, _ = lrp.attribute(m, x, t, composite=name)
    err = float((R - Rz).abs().max() / Rz.abs().max())
    print(f"{name}: relative difference to zennit {err:.2e}")
    assert err < 1e-8, f"{name}: differs from zennit by {err:.3g}"


# ---------------------------------------------------------------- model randomisation (Adebayo et al. 2018)
def _toy_data(n, seed):
    "Three classes: a short 'word' (a burst of one of three tones) at a random place in 256 samples of noise."
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(256, dtype=torch.float32)
    x = 0.1 * torch.randn(n, 1, 256, generator=g)
    for i in range(n):
        start = int(torch.randint(0, 256 - 64, (1,), generator=g))
        f = [0.05, 0.12, 0.25][int(y[i])]
        x[i, 0, start:start + 64] += torch.sin(2 * np.pi * f * t[:64]) * torch.hann_window(64)
    return x, y


def _trained_toy_model(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv1d(1, 8, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4), nn.Conv1d(8, 16, 5, padding=2),
                      nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(16 * 16, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = _toy_data(600, seed)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for epoch in range(8):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 50):
            idx = perm[i:i + 50]
            opt.zero_grad(); nn.functional.cross_entropy(m(x[idx]), y[idx]).backward(); opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def toy():
    m = _trained_toy_model()
    x, y = _toy_data(64, seed=1)
    acc = float((m(x).argmax(1) == y).float().mean())
    assert acc > 0.9, f"the toy model did not learn its task (accuracy {acc:.2f})"
    return m, x, y


@pytest.mark.parametrize("composite", ["epsilon-gamma-box", "epsilon", "epsilon-plus-flat"])
def test_randomisation_changes_relevance(toy, composite):
    m, x, y = toy
    out = lrp.randomization_check(m, x, y, composite=composite, max_rho=0.5)
    print(composite, out)
    assert out["rho"] < 0.5


def test_manipulation_curve_on_trained_toy(toy):
    "Removing the most relevant samples hurts the trained model more than removing random ones."
    m, x, y = toy
    R, _ = lrp.attribute(m, x, y)
    mc = lrp.manipulation_curve(m, x, y, R, ks=(0, 5, 10, 20, 40), seed=0)
    assert mc["acc_relevant"][0] == mc["acc_random"][0]
    assert mc["area"] > 0.05, mc


# ---------------------------------------------------------------- the checks can fail (deliberate breakage)
def test_breakage_stabiliser_sign_is_caught(monkeypatch):
    "Drop the stabiliser's sign (z + eps instead of z + eps sign z): the captum agreement check fails."
    m, x = audionet_lite(), xwave(3)
    t = m(x).argmin(1)            # explain the least likely class: negative logits, where the sign matters
    lrp.check_captum(m, x, t, epsilon=0.25, rtol=1e-8)                                   # passes as built
    monkeypatch.setattr(lrp, "stabilize", lambda z, eps=1e-6: z + eps)
    with pytest.raises(AssertionError, match="differs from captum"):
        lrp.check_captum(m, x, t, epsilon=0.25, rtol=1e-8)


def test_breakage_forgotten_input_is_caught(monkeypatch):
    "A reducer that forgets to multiply by the input (R = c instead of x c): the gradient x input check fails."
    m, x = cnn1d(), x1d()
    lrp.check_gradient_x_input(m, x, rtol=1e-10)
    orig = lrp.epsilon_rule
    def broken(epsilon=1e-6, zero_bias=False):
        r = orig(epsilon, zero_bias); r.reducer = lambda xs, cs: cs[0]; return r
    monkeypatch.setattr(lrp, "epsilon_rule", broken)
    with pytest.raises(AssertionError, match="gradient x input"):
        lrp.check_gradient_x_input(m, x, rtol=1e-10)


def test_breakage_swapped_alpha_beta_is_caught(monkeypatch):
    "alpha2-beta1 with alpha and beta swapped in the reducer: conservation on one dense layer fails."
    seeded(3)
    m, x = nn.Sequential(nn.Linear(12, 4, bias=False)).to(F64), torch.randn(8, 12, dtype=F64)
    lrp.check_conservation(m, x, "alpha2-beta1", rtol=1e-9, stabilizer=0)     # both parts present: conserves
    orig = lrp.alpha_beta_rule
    def swapped(alpha=1.0, beta=0.0, epsilon=1e-6, zero_bias=False):
        r = orig(alpha, beta, epsilon, zero_bias)
        if beta:
            r.reducer = lambda xs, cs: (beta * (xs[0] * cs[0] + xs[1] * cs[1]) - alpha * (xs[2] * cs[2] + xs[3] * cs[3]))
        return r
    monkeypatch.setattr(lrp, "alpha_beta_rule", swapped)
    with pytest.raises(AssertionError, match="not conserved"):
        lrp.check_conservation(m, x, "alpha2-beta1", rtol=1e-9, stabilizer=0)


def test_breakage_randomisation_check_fails_on_identical_models(toy, monkeypatch):
    "If 'randomise' returned the trained model, the sanity check must fail (rho = 1)."
    m, x, y = toy
    monkeypatch.setattr(lrp, "randomize", lambda model, seed=1234: copy.deepcopy(model))
    with pytest.raises(AssertionError, match="survives weight randomisation"):
        lrp.randomization_check(m, x, y, max_rho=0.5)


# ---------------------------------------------------------------- hooks always come off
def _hook_state(model):
    return [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks), m.training,
             getattr(m, "inplace", None)) for m in model.modules()]


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _model_with_inplace():
    seeded(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(inplace=True), nn.MaxPool1d(2),
                         nn.Flatten(), nn.Linear(4 * 15, 8), nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(8, 3))


def test_context_restores_model():
    m = _model_with_inplace().train()
    x = torch.randn(5, 1, 32)
    before, params = _hook_state(m), _snapshot(m)
    m.eval(); out_before = m(x).detach(); m.train()
    for c in lrp.COMPOSITES:
        R, logits = lrp.attribute(m, x, composite=c)
        assert R.shape == x.shape and torch.isfinite(R).all()
    assert _hook_state(m) == before
    assert all(torch.equal(params[k], v) for k, v in m.state_dict().items())
    assert m.training and m[2].inplace
    m.eval(); torch.testing.assert_close(m(x).detach(), out_before, rtol=0, atol=0)
    assert torch.equal(logits, out_before)


def test_context_restores_after_exception_in_block():
    m = _model_with_inplace().train()
    before, params = _hook_state(m), _snapshot(m)
    with pytest.raises(RuntimeError, match="boom"):
        with lrp.lrp_context(m, "epsilon-gamma-box"):
            assert not m.training and not m[2].inplace
            assert any(len(mod._forward_hooks) for mod in m.modules())
            m(torch.randn(2, 1, 32))
            raise RuntimeError("boom")
    assert _hook_state(m) == before
    assert all(torch.equal(params[k], v) for k, v in m.state_dict().items())


def test_context_restores_after_exception_in_forward():
    m = audionet_lite()
    before = _hook_state(m)
    with pytest.raises(ValueError, match="expected input of shape"):
        lrp.attribute(m, torch.randn(2, 1, 100, dtype=F64))
    assert _hook_state(m) == before


def test_context_restores_after_exception_during_registration(monkeypatch):
    "An error half-way through registering the hooks removes the hooks already registered."
    m = _model_with_inplace().train()
    before = _hook_state(m)
    calls = {"n": 0}
    orig = lrp._UnitHook.__init__
    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2: raise RuntimeError("registration failed")
        orig(self, *a, **k)
    monkeypatch.setattr(lrp._UnitHook, "__init__", flaky)
    with pytest.raises(RuntimeError, match="registration failed"):
        lrp.attribute(m, torch.randn(2, 1, 32))
    assert calls["n"] == 2
    assert _hook_state(m) == before


def test_unsupported_layer_is_named():
    m = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Tanh()), nn.Linear(4, 2))
    before = _hook_state(m)
    with pytest.raises(lrp.UnsupportedLayerError, match=r"'1\.1' \(Tanh\)"):
        lrp.attribute(m, torch.randn(2, 4))
    assert _hook_state(m) == before
    with pytest.raises(ValueError, match="does not directly follow"):
        lrp.layer_units(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))


def test_batchnorm_not_fed_by_its_layer_is_refused():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__(); self.lin, self.bn = nn.Linear(3, 3), nn.BatchNorm1d(3)
        def forward(self, x): return self.bn(x + 0 * self.lin(x))
    m = Skip().eval()
    with pytest.raises(ValueError, match="cannot be folded"):
        lrp.attribute(m, torch.randn(4, 3))
    assert _hook_state(m) == [(0, 0, 0, False, None)] * 3


# ---------------------------------------------------------------- the API
def test_targets():
    m, x = cnn1d(), x1d(4)
    logits = m.eval()(x)
    R_none, _ = lrp.attribute(m, x)
    R_pred, _ = lrp.attribute(m, x, logits.argmax(1))
    assert torch.equal(R_none, R_pred)
    R_int, lg = lrp.attribute(m, x, 2, composite="epsilon")
    R_list, _ = lrp.attribute(m, x, [2, 2, 2, 2], composite="epsilon")
    R_np, _ = lrp.attribute(m, x, np.array([2, 2, 2, 2]), composite="epsilon")
    assert torch.equal(R_int, R_list) and torch.equal(R_int, R_np)
    # the explained output is the target logit (bias-free: relevance sums to it)
    R0, lg0 = lrp.attribute(nobias(m), x, 2, composite="lrp0")
    torch.testing.assert_close(R0.sum((1, 2)), lg0[:, 2], rtol=1e-4, atol=1e-6)
    for bad, msg in [(4, "0..3"), ([0, 1], "one per example"), (1.5, "class indices"), (-1, "0..3")]:
        with pytest.raises(ValueError, match=msg):
            lrp.attribute(m, x, bad)


def test_bad_arguments():
    m, x = cnn1d(), x1d(2)
    with pytest.raises(ValueError, match="unknown preset"):
        lrp.attribute(m, x, composite="epsilon-gama")
    with pytest.raises(ValueError, match="gama"):
        lrp.attribute(m, x, composite="epsilon", gama=0.1)
    with pytest.raises(ValueError, match="x: expected"):
        lrp.attribute(m, torch.randn(3))
    with pytest.raises(ValueError, match="epsilon"):
        lrp.epsilon_rule(-1.0)
    with pytest.raises(ValueError, match="alpha - beta"):
        lrp.alpha_beta_rule(1.0, 1.0)


def test_every_preset_takes_every_rule_parameter():
    "A user interface can pass epsilon and gamma to any preset (the widgets do)."
    m, x = cnn1d(), x1d(2)
    for c in [None, *lrp.COMPOSITES]:
        R, _ = lrp.attribute(m, x, composite=c, epsilon=0.05, gamma=0.5)
        assert torch.isfinite(R).all()
    assert lrp.DEFAULT_COMPOSITE in lrp.COMPOSITES and "lrp" in lrp.METHODS


@pytest.mark.parametrize("method", lrp.METHODS)
def test_explain_methods(method):
    m, x = audionet_lite().float(), xwave(2).float()
    R = lrp.explain(m, x, method=method)
    assert R.shape == x.shape and torch.isfinite(R).all()


def test_explain_gradxinput_is_lrp0():
    m, x = cnn1d(), x1d(3)
    torch.testing.assert_close(lrp.explain(m, x, method="gradxinput"), lrp.explain(m, x, composite="lrp0"))
    with pytest.raises(ValueError, match="method"):
        lrp.explain(m, x, method="deeplift")


def test_frequency_relevance_conserves():
    x = xwave(2).float()
    R = x * torch.randn(x.shape, generator=seeded(4))
    Rtf, freqs, times = lrp.frequency_relevance(x, R)
    assert Rtf.shape == (2, 228, len(times)) and freqs[-1] == pytest.approx(227 * 8000 / 455)
    torch.testing.assert_close(Rtf.double().sum((1, 2)), R.double().sum((1, 2)), rtol=1e-5, atol=1e-4)
