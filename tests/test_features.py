"""Tests for audio_xai_kit.features: scipy agreement, round trips (synthetic and real speech),
masks, batching, silence, gradients, configs and bad input."""
import json

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch
from hypothesis import given, settings, strategies as st

from audio_xai_kit.features import (Representation, Spectrogram, Waveform, band_energy,
                                    db_to_magnitude, get_representation)

N = 8000


def _noise(b=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    env = torch.linspace(0, 1, N, dtype=dtype) ** 2
    return torch.randn(b, 1, N, generator=g, dtype=dtype) * env * torch.logspace(-3, 0, b, dtype=dtype).view(b, 1, 1)


def _speech(fsdd_dev, n=None):
    files = sorted(fsdd_dev.glob("*.wav"))
    assert files, f"no wavs in {fsdd_dev}"
    files = files if n is None else files[:: max(1, len(files) // n)][:n]
    waves = []
    for f in files:
        a, sr = sf.read(f, dtype="float32")
        assert sr == 8000
        w = np.zeros(N, np.float32)
        a = a[:N]
        start = (N - len(a)) // 2
        w[start:start + len(a)] = a
        waves.append(w)
    return torch.from_numpy(np.stack(waves))[:, None]


# ---------------------------------------------------------------- scipy agreement
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_magnitude_matches_scipy_stft(dtype, tol):
    sp = Spectrogram()
    w = _noise(dtype=dtype)
    f, t, Z = scipy.signal.stft(w[:, 0].double().numpy(), 8000, nperseg=455, noverlap=420, window="hann")
    ref = np.abs(Z[:, 0:227, 2:-1])
    ours = sp.magnitude_of(w)[:, 0].double().numpy()
    for i in range(len(ref)):   # tolerance relative to each clip's largest magnitude
        assert np.abs(ours[i] - ref[i]).max() <= tol * ref[i].max()
    np.testing.assert_allclose(sp.freqs().numpy(), f[:227], rtol=0, atol=1e-9)
    np.testing.assert_allclose(sp.times().numpy(), t[2:-1], rtol=0, atol=1e-12)


def test_db_matches_paper_pipeline():
    librosa = pytest.importorskip("librosa")
    sp = Spectrogram()
    w = _noise(b=2)
    x, _ = sp.encode(w)
    _, _, Z = scipy.signal.stft(w[:, 0].numpy(), 8000, nperseg=455, noverlap=420, window="hann")
    for i in range(2):
        want = librosa.amplitude_to_db(np.abs(Z[i, 0:227, 2:-1]), ref=np.max, amin=1e-10, top_db=80.0)
        np.testing.assert_allclose(x[i, 0].numpy(), want, atol=1e-9)
    assert x.amax(dim=(-2, -1)).eq(0).all() and x.min() >= -80


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("rep", [Spectrogram(), Waveform()], ids=["spectrogram", "waveform"])
def test_round_trip_synthetic(rep, dtype, tol):
    w = _noise(dtype=dtype)
    x, ctx = rep.encode(w)
    back = rep.decode(x, ctx)
    assert back.shape == w.shape and back.dtype == dtype
    err = (back - w).abs().amax(dim=(1, 2)) / w.abs().amax(dim=(1, 2))
    assert (err < tol).all(), err


@pytest.mark.parametrize("rep", [Spectrogram(), Waveform()], ids=["spectrogram", "waveform"])
def test_round_trip_real_speech(fsdd_dev, rep):
    w = _speech(fsdd_dev, n=40)
    x, ctx = rep.encode(w)
    err32 = ((rep.decode(x, ctx) - w).abs().amax(dim=(1, 2)) / w.abs().amax(dim=(1, 2))).max().item()
    w64 = w.double()
    x64, c64 = rep.encode(w64)
    err64 = ((rep.decode(x64, c64) - w64).abs().amax(dim=(1, 2)) / w64.abs().amax(dim=(1, 2))).max().item()
    assert err32 < 1e-5 and err64 < 1e-12, (err32, err64)


@settings(max_examples=25, deadline=None)
@given(gain=st.floats(1e-4, 10.0), start=st.integers(0, N - 64), length=st.integers(16, N),
       seed=st.integers(0, 2**16))
def test_round_trip_property(gain, start, length, seed):
    "Any clip (loud, quiet, short burst anywhere) comes back; x stays in [-top_db, 0]."
    sp = Spectrogram()
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(1, 1, N, dtype=torch.float64)
    end = min(N, start + length)
    w[0, 0, start:end] = gain * torch.randn(end - start, generator=g, dtype=torch.float64)
    x, ctx = sp.encode(w)
    assert torch.isfinite(x).all() and x.max() == 0 and x.min() >= -80
    assert (sp.decode(x, ctx) - w).abs().max() <= 1e-12 * w.abs().max()


# ---------------------------------------------------------------- masks and modified x
def test_masked_high_frequencies_are_gone():
    sp = Spectrogram()
    w = _noise(b=2, seed=3)
    x, ctx = sp.encode(w)
    low = (sp.freqs() < 1000).to(x).view(1, 1, -1, 1)
    kept = sp.decode(x, ctx, mask=low)
    high = band_energy(kept, 1100, 4000) / band_energy(w, 1100, 4000)
    lowband = band_energy(kept, 0, 900) / band_energy(w, 0, 900)
    assert (high < 1e-3).all(), high
    assert (lowband > 0.9).all(), lowband
    # the same mask applied through decode_magnitude gives the same wave
    again = sp.decode_magnitude(sp.magnitude(x, ctx) * low, ctx, fill="zeros")
    torch.testing.assert_close(kept, again)


def test_mask_that_keeps_nothing_is_silence_and_ones_change_nothing():
    sp = Spectrogram()
    w = _noise(b=2)
    x, ctx = sp.encode(w)
    assert sp.decode(x, ctx, mask=torch.zeros_like(x)).abs().max() < 1e-12
    torch.testing.assert_close(sp.decode(x, ctx, mask=torch.ones_like(x), fill="original"), w)
    # with fill="original" a zero mask leaves only the cropped-out bin/frames: not silent
    assert sp.decode(x, ctx, mask=torch.zeros_like(x), fill="original").abs().max() > 0


def test_db_edits_follow_the_inverse_db_map():
    "Adding 20 dB to every bin above the floor multiplies those magnitudes by 10."
    sp = Spectrogram()
    w = _noise(b=1)
    x, ctx = sp.encode(w)
    above = x > -80
    m2 = sp.magnitude(x + 20 * above, ctx)
    m = sp.magnitude_of(w)
    torch.testing.assert_close(m2[above], 10 * m[above])
    torch.testing.assert_close(db_to_magnitude(torch.tensor(-20.0), torch.tensor(2.0)), torch.tensor(0.2))
    # x -> -inf silences every bin
    assert sp.magnitude(torch.full_like(x, -float("inf")), ctx).max() == 0


def test_waveform_decode_of_modified_x_is_linear():
    rep = Waveform()
    w = _noise(b=2)
    x, ctx = rep.encode(w)
    torch.testing.assert_close(rep.decode(2 * x, ctx), 2 * w)
    torch.testing.assert_close(rep.decode(torch.zeros_like(x), ctx), torch.zeros_like(w))


# ---------------------------------------------------------------- batching, silence, dtype, device
@pytest.mark.parametrize("rep", [Spectrogram(), Waveform()], ids=["spectrogram", "waveform"])
def test_batched_equals_per_clip(rep):
    w = _noise(b=4)
    x, ctx = rep.encode(w)
    for i in range(4):
        xi, ci = rep.encode(w[i:i + 1])
        torch.testing.assert_close(xi, x[i:i + 1])
        torch.testing.assert_close(rep.decode(xi, ci), rep.decode(x, ctx)[i:i + 1])


@pytest.mark.parametrize("rep", [Spectrogram(), Waveform()], ids=["spectrogram", "waveform"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_silence_gives_no_nan(rep, dtype):
    w = torch.zeros(2, 1, N, dtype=dtype)
    w[1, 0, 4000] = 1e-3   # a single tiny click
    x, ctx = rep.encode(w)
    assert torch.isfinite(x).all()
    back = rep.decode(x, ctx)
    assert torch.isfinite(back).all()
    assert back[0].abs().max() == 0
    # gradients through silence are finite too
    wg = w.clone().requires_grad_()
    rep.encode(wg)[0].sum().backward()
    assert torch.isfinite(wg.grad).all()


def test_waveform_scale_is_95th_percentile_of_abs():
    rep = Waveform()
    w = _noise(b=3, dtype=torch.float32)
    want = np.percentile(np.abs(w.numpy()), 95, axis=-1, keepdims=True)
    np.testing.assert_allclose(rep.encode(w)[1]["scale"].numpy(), want, rtol=1e-5)
    signed = Waveform(absolute=False).encode(w)[1]["scale"].numpy()
    np.testing.assert_allclose(signed, np.percentile(w.numpy(), 95, axis=-1, keepdims=True), rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("rep", [Spectrogram(), Waveform()], ids=["spectrogram", "waveform"])
def test_cuda_matches_cpu(rep):
    w = _noise(b=2, dtype=torch.float32)
    x, ctx = rep.encode(w.cuda())
    assert x.device.type == "cuda"
    torch.testing.assert_close(x.cpu(), rep.encode(w)[0], atol=1e-3, rtol=1e-4)
    assert (rep.decode(x, ctx).cpu() - w).abs().max() < 1e-5


# ---------------------------------------------------------------- gradients
def test_gradcheck_tiny_spectrogram():
    tiny = Spectrogram(n_fft=16, hop_length=4, size=8, n_samples=64, frame_offset=2, top_db=300)
    w = torch.randn(1, 1, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: tiny.encode(w)[0], (w,))
    _, ctx = tiny.encode(w.detach())
    x = tiny.encode(w.detach())[0].requires_grad_()
    assert torch.autograd.gradcheck(lambda x: tiny.decode(x, ctx), (x,))
    mag = tiny.magnitude(x.detach(), ctx).requires_grad_()
    assert torch.autograd.gradcheck(lambda m: tiny.decode_magnitude(m, ctx, fill="zeros"), (mag,))


def test_gradcheck_waveform_and_full_size_directional():
    w = torch.randn(2, 1, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: Waveform(n_samples=64).encode(w)[0], (w,))
    # full size: one random directional derivative, autograd vs central differences (float64).
    # (gradcheck's fast_mode falls back to the full 8000-column Jacobian on failure: far too slow here.)
    sp = Spectrogram()
    g = torch.Generator().manual_seed(2)
    wf = torch.randn(1, 1, N, generator=g, dtype=torch.float64) * torch.linspace(0.1, 1, N, dtype=torch.float64)
    v, u = torch.randn(wf.shape, generator=g, dtype=torch.float64), torch.randn(1, 1, 227, 227, generator=g, dtype=torch.float64)
    wg = wf.clone().requires_grad_()
    (sp.encode(wg)[0] * u).sum().backward()
    analytic = (wg.grad * v).sum().item()
    h = 1e-6
    numeric = ((sp.encode(wf + h * v)[0] - sp.encode(wf - h * v)[0]) * u).sum().item() / (2 * h)
    assert abs(analytic - numeric) <= 1e-5 * abs(numeric), (analytic, numeric)
    # and through decode: x -> wave
    x, ctx = sp.encode(wf)
    vx = torch.randn(x.shape, generator=g, dtype=torch.float64) * (x > -80)
    uw = torch.randn(wf.shape, generator=g, dtype=torch.float64)
    xg = x.clone().requires_grad_()
    (sp.decode(xg, ctx) * uw).sum().backward()
    analytic = (xg.grad * vx).sum().item()
    numeric = ((sp.decode(x + h * vx, ctx) - sp.decode(x - h * vx, ctx)) * uw).sum().item() / (2 * h)
    assert abs(analytic - numeric) <= 1e-5 * abs(numeric), (analytic, numeric)


def test_gradient_is_not_zero_through_decode():
    "A loss on the decoded wave reaches x (audible-heatmap and adversarial code rely on it)."
    sp = Spectrogram()
    w = _noise(b=1, dtype=torch.float32)
    x, ctx = sp.encode(w)
    x = x.clone().requires_grad_()
    sp.decode(x, ctx).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ---------------------------------------------------------------- configs and bad input
@pytest.mark.parametrize("rep", [Waveform(), Waveform(percentile=90, absolute=False), Spectrogram(), Spectrogram(top_db=60)])
def test_config_round_trip(rep):
    cfg = json.loads(json.dumps(rep.config()))
    again = get_representation(cfg)
    assert again == rep and type(again) is type(rep) and again.config() == rep.config()
    assert get_representation(rep) is rep
    assert isinstance(again, Representation)


def test_get_representation_by_name():
    assert get_representation("waveform").input_shape == (1, 8000)
    assert get_representation("spectrogram").input_shape == (1, 227, 227)


@pytest.mark.parametrize("bad,msg", [("mfcc", "expected one of"), ({"n_fft": 455}, "expected one of"),
                                     ({"name": "spectrogram", "nfft": 1}, "unknown keys"), (3, "expected a name")])
def test_get_representation_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        get_representation(bad)


@pytest.mark.parametrize("rep", [Spectrogram(), Waveform()], ids=["spectrogram", "waveform"])
@pytest.mark.parametrize("bad", [torch.zeros(8000), torch.zeros(2, 8000), torch.zeros(2, 1, 4000),
                                 torch.zeros(2, 2, 8000), torch.zeros(2, 1, 8000, dtype=torch.int16), np.zeros((1, 1, 8000))])
def test_bad_waves_are_clear_errors(rep, bad):
    with pytest.raises(ValueError, match="expected a"):
        rep.encode(bad)


def test_decode_checks_x_and_ctx():
    sp = Spectrogram()
    x, ctx = sp.encode(_noise(b=2))
    with pytest.raises(ValueError, match=r"\(B, 1, 227, 227\)"):
        sp.decode(x[..., :100], ctx)
    with pytest.raises(ValueError, match="batch"):
        sp.decode(x[:1], ctx)
    with pytest.raises(ValueError, match="ctx must be"):
        sp.decode(x, {"scale": 1})
    with pytest.raises(ValueError, match="fill"):
        sp.decode(x, ctx, fill="noise")
    wv = Waveform()
    xw, cw = wv.encode(_noise(b=2))
    with pytest.raises(ValueError, match="batch"):
        wv.decode(xw, {"scale": cw["scale"][:1]})


@pytest.mark.parametrize("kwargs,msg", [(dict(size=229), "freq_offset"), (dict(frame_offset=3), "frame_offset"),
                                        (dict(top_db=0), "top_db"), (dict(hop_length=0), "hop_length")])
def test_spectrogram_settings_validated(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Spectrogram(**kwargs)


def test_waveform_settings_validated():
    with pytest.raises(ValueError, match="percentile"):
        Waveform(percentile=0)


def test_waveform_handles_a_whole_corpus_at_once():
    "torch.quantile refuses more than 16M elements; a corpus of 2,100 clips (16.8M samples) must still work."
    w = torch.randn(2100, 1, N)
    x, ctx = Waveform().encode(w)
    assert x.shape == w.shape and torch.isfinite(x).all()
    np.testing.assert_allclose(ctx["scale"][:3].numpy(), np.percentile(w[:3].abs().numpy(), 95, axis=-1, keepdims=True), rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(p=st.floats(0.5, 100.0), n=st.integers(1, 300), seed=st.integers(0, 2**16))
def test_waveform_percentile_matches_numpy(p, n, seed):
    w = torch.randn(2, 1, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    scale = Waveform(percentile=p, n_samples=n, min_scale=0).scale(w)
    np.testing.assert_allclose(scale.numpy(), np.percentile(np.abs(w.numpy()), p, axis=-1, keepdims=True), rtol=1e-12)
