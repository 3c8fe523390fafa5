"""Tests for audio_xai_kit.models: registry, shapes, layer types, seeding, bad input."""
import pytest
import torch
from torch import nn

from audio_xai_kit.models import (MODELS, AlexNet, AudioNet, build_model, flat_sequential,
                                  model_representation, n_parameters, time_training_step)

SHAPES = {"waveform": (1, 8000), "spectrogram": (1, 227, 227)}
ALLOWED = (nn.Conv1d, nn.Conv2d, nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, nn.Linear, nn.Dropout)


def test_registry_names():
    assert sorted(MODELS) == ["alexnet", "alexnet-lite", "audionet", "audionet-lite"]
    assert model_representation("audionet") == model_representation("audionet-lite") == "waveform"
    assert model_representation("alexnet") == model_representation("alexnet-lite") == "spectrogram"


@pytest.mark.parametrize("bad", ["resnet", "", "AudioNet", None, 3])
def test_unknown_name_lists_names(bad):
    with pytest.raises(ValueError, match="alexnet-lite"):
        build_model(bad)
    with pytest.raises(ValueError, match="audionet-lite"):
        model_representation(bad)


@pytest.mark.parametrize("bad", [0, -1, 2.0, "10"])
def test_bad_n_classes(bad):
    with pytest.raises(ValueError, match="n_classes"):
        build_model("audionet-lite", bad)


@pytest.mark.parametrize("name", ["audionet-lite", "alexnet-lite"])
@pytest.mark.parametrize("n_classes", [10, 2])
def test_lite_forward_backward(name, n_classes):
    m = build_model(name, n_classes)
    x = torch.randn(3, *SHAPES[model_representation(name)], requires_grad=True)
    out = m(x)
    assert out.shape == (3, n_classes)
    out[:, 0].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.name == name and m.n_classes == n_classes


@pytest.mark.parametrize("name", sorted(MODELS))
def test_walkable_layers_and_flat_equivalence(name):
    m = build_model(name, 10).eval()
    assert isinstance(m.features, nn.Sequential) and isinstance(m.classifier, nn.Sequential)
    flat = flat_sequential(m)
    assert all(isinstance(l, ALLOWED) for l in flat), [type(l) for l in flat if not isinstance(l, ALLOWED)]
    x = torch.randn(2, *m.input_shape)
    with torch.no_grad():
        assert torch.allclose(flat(x), m(x))
    # flat shares parameters with the model (an LRP engine editing one edits the other)
    assert flat[0] is m.features[0]


@pytest.mark.parametrize("name", ["audionet", "audionet-lite"])
def test_audionet_has_no_relu_in_dense_part(name):
    m = build_model(name, 10)
    kinds = [type(l) for l in m.classifier]
    assert kinds == [nn.Flatten, nn.Linear, nn.Dropout, nn.Linear, nn.Dropout, nn.Linear]


def test_audionet_architecture():
    m = build_model("audionet", 10)
    convs = [l for l in m.features if isinstance(l, nn.Conv1d)]
    pools = [l for l in m.features if isinstance(l, nn.MaxPool1d)]
    assert [c.out_channels for c in convs] == [100, 64, 128, 128, 128, 128]
    assert all(c.kernel_size == (3,) and c.padding == (1,) and c.stride == (1,) for c in convs)
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] + [(2, 2)] * 5
    dense = [l for l in m.classifier if isinstance(l, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(15872, 1024), (1024, 512), (512, 10)]
    assert all(d.p == 0.5 for d in m.classifier if isinstance(d, nn.Dropout))


def test_alexnet_architecture():
    m = build_model("alexnet", 2)
    convs = [l for l in m.features if isinstance(l, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0], c.groups) for c in convs] == [
        (96, 11, 4, 0, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1), (384, 3, 1, 1, 2), (256, 3, 1, 1, 2)]
    dense = [l for l in m.classifier if isinstance(l, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(9216, 1024), (1024, 1024), (1024, 2)]
    assert sum(isinstance(l, nn.ReLU) for l in m.classifier) == 2
    assert not any("LocalResponseNorm" in type(l).__name__ for l in m.modules())


def test_lite_is_smaller_and_same_pattern():
    for big, lite in [("audionet", "audionet-lite"), ("alexnet", "alexnet-lite")]:
        b, l = build_model(big), build_model(lite)
        assert n_parameters(l) < n_parameters(b) / 8
        assert [type(x) for x in flat_sequential(b)] == [type(x) for x in flat_sequential(l)]
        assert b.input_shape == l.input_shape


def test_seed_reproducible_and_global_state_untouched():
    torch.manual_seed(123); before = torch.rand(3)
    torch.manual_seed(123)
    a = build_model("alexnet-lite", 10, seed=5)
    after = torch.rand(3)
    assert torch.equal(before, after)  # a seeded build does not consume the global generator
    b = build_model("alexnet-lite", 10, seed=5)
    c = build_model("alexnet-lite", 10, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


@pytest.mark.parametrize("name,bad", [("audionet-lite", (2, 8000)), ("audionet-lite", (2, 1, 4000)),
                                      ("alexnet-lite", (2, 1, 128, 227)), ("alexnet-lite", (2, 227, 227))])
def test_wrong_input_shape_is_a_clear_error(name, bad):
    with pytest.raises(ValueError, match="expected input of shape"):
        build_model(name)(torch.randn(*bad))


def test_constructor_validation():
    with pytest.raises(ValueError, match="channels"):
        AudioNet(10, channels=(8, 8))
    with pytest.raises(ValueError, match="even"):
        AlexNet(10, channels=(3, 8, 8, 8, 8))


def test_time_training_step_smoke():
    assert time_training_step(build_model("audionet-lite", 2), batch_size=4, steps=1) > 0


def test_paper_models_forward_backward():
    for name in ["audionet", "alexnet"]:
        m = build_model(name, 10)
        out = m(torch.randn(2, *m.input_shape))
        out.sum().backward()
        assert out.shape == (2, 10)
        assert all(torch.isfinite(p.grad).all() for p in m.parameters())
