"""audible.py: gates, audible views, loudness, WAV export, the listening check; bad input."""
import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings, strategies as st

from audio_xai_kit import audible as A, features, models
from audio_xai_kit.core import N_SAMPLES, SR


def _speechlike(n=2, seed=0):
    "Bursts of noisy harmonics in silence, (n, 1, 8000): enough structure for the gates to matter."
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(N_SAMPLES) / SR
    out = torch.zeros(n, 1, N_SAMPLES)
    for i in range(n):
        f0 = 100 + 60 * torch.rand(1, generator=g)
        env = ((t > 0.2 + 0.1 * i) & (t < 0.6 + 0.1 * i)).float() * torch.hann_window(N_SAMPLES, periodic=False).roll(800 * i)
        out[i, 0] = 0.3 * env * (torch.sin(2 * np.pi * f0 * t) + 0.5 * torch.sin(4 * np.pi * f0 * t)
                                 + 0.05 * torch.randn(N_SAMPLES, generator=g))
    return out


@pytest.fixture(params=["waveform", "spectrogram"])
def setup(request):
    rep = features.get_representation(request.param)
    wave = _speechlike()
    x, ctx = rep.encode(wave)
    R = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    return rep, wave, x, ctx, R


@settings(max_examples=40, deadline=None)
@given(k=st.floats(0.5, 100), mode=st.sampled_from(["mask", "weight"]), smooth=st.integers(1, 40), seed=st.integers(0, 10**6))
def test_relevance_mask_properties(k, mode, smooth, seed):
    R = torch.randn(3, 1, 500, generator=torch.Generator().manual_seed(seed))
    m = A.relevance_mask(R, mode, top_k_percent=k, smooth=smooth)
    assert m.shape == R.shape and m.min() >= 0 and m.max() <= 1
    Rs = A.smooth_relevance(R, smooth)
    assert (m[Rs <= 0] == 0).all(), "only positive relevance is kept"
    kept = (m > 0).flatten(1).sum(1)
    assert (kept <= int(round(500 * k / 100)) + 0).all() or k >= 100   # ties aside, at most k % of the positions
    if mode == "weight": assert torch.allclose(m.flatten(1).amax(1)[kept > 0], torch.ones(int((kept > 0).sum())))


def test_views_add_up_and_loudness(setup):
    rep, wave, x, ctx, R = setup
    a = A.audible(rep, wave, x, ctx, R, top_k_percent=30, smooth_ms=5)
    for w in (a.original, a.heatmap, a.complement): assert w.shape == wave.shape
    np.testing.assert_allclose(A.dbfs(a.original).ravel(), -23.0, atol=1e-3)
    assert (A.dbfs(torch.cat([a.original, a.heatmap, a.complement]), "peak") <= -1.0 + 1e-4).all()
    err = (a.heatmap + a.complement - a.original).abs().max() / a.original.abs().max()
    # waveform: exact; spectrogram: the crop's edges (one frequency bin, the first and last frames) are not gated views
    assert err < (1e-5 if rep.name == "waveform" else 0.05), err
    assert 0.25 < a.kept_fraction.mean() <= 0.3 + 1e-4
    # the heatmap of a gate is quieter than the clip, the complement of an all-positive relevance is silence
    b = A.audible(rep, wave, x, ctx, torch.ones_like(R), target_dbfs=None)
    assert b.complement.abs().max() < 1e-4
    assert (b.heatmap - wave).abs().max() / wave.abs().max() < (1e-5 if rep.name == "waveform" else 0.05)


def test_relevance_on_silence_keeps_nothing(setup):
    rep, wave, x, ctx, R = setup
    a = A.audible(rep, wave, x, ctx, -R.abs(), target_dbfs=None)   # nothing positive
    assert a.mask.sum() == 0 and a.heatmap.abs().max() < 1e-4


def test_changing_top_k_changes_the_heatmap(setup):
    rep, wave, x, ctx, R = setup
    h10 = A.audible_heatmap(rep, wave, x, ctx, R, top_k_percent=10)
    h50 = A.audible_heatmap(rep, wave, x, ctx, R, top_k_percent=50)
    assert not torch.allclose(h10, h50)
    assert A.dbfs(h10).mean() < A.dbfs(h50).mean()   # keeping more sounds louder


def test_bad_input(setup):
    rep, wave, x, ctx, R = setup
    with pytest.raises(ValueError, match="relevance R has shape"): A.audible(rep, wave, x, ctx, R[..., :-1])
    with pytest.raises(ValueError, match="top_k_percent"): A.audible(rep, wave, x, ctx, R, top_k_percent=120)
    with pytest.raises(ValueError, match="mode="): A.audible(rep, wave, x, ctx, R, mode="relu")
    with pytest.raises(ValueError, match="kind="): A.loudness_gain(wave, kind="lufs")
    with pytest.raises(ValueError, match="expected a waveform batch"): A.gate_input(torch.zeros(8000), torch.zeros(8000))


def test_wav_files(tmp_path):
    w = _speechlike(1)[0]
    p = A.save_wav(tmp_path / "h.wav", w)
    back, sr = sf.read(p, dtype="float32")
    assert sr == SR and back.shape == (N_SAMPLES,) and np.abs(back - w.numpy()).max() < 1e-4
    with pytest.raises(FileExistsError, match="overwrite=True"): A.save_wav(p, w)
    A.save_wav(p, 0 * w, overwrite=True); assert np.abs(sf.read(p)[0]).max() == 0
    with pytest.raises(ValueError, match=r"\.wav"): A.save_wav(tmp_path / "h.mp3", w)
    with pytest.raises(ValueError, match="one clip"): A.wav_bytes(torch.zeros(2, 1, 8000))
    assert [f.name for f in tmp_path.iterdir()] == ["h.wav"], "no temporary files left behind"
    assert A.wav_bytes(w)[:4] == b"RIFF"


def test_players_keep_levels():
    w = 0.1 * _speechlike(1)[0]
    html = A.show(A.Audible(w, w / 2, w / 2, torch.ones(1), torch.ones(1))).data
    assert html.count("<audio") == 3 and "autoplay" not in html
    pl = A.player(w)
    assert not pl.autoplay
    with pytest.raises(ValueError): A.player(torch.zeros(3, 8000))


def test_relevance_gradient_x_input_matches_autograd():
    model = models.build_model("audionet-lite", 10, seed=0).eval()
    x = torch.randn(2, 1, 8000)
    R = A.relevance(model, x, torch.tensor([3, 5]), method="gradient_x_input")
    xx = x.clone().requires_grad_(True)
    model(xx)[:, [3, 5]].diagonal().sum().backward()
    torch.testing.assert_close(R, x * xx.grad)


class _HalfModel(torch.nn.Module):
    "Class 1 iff the first half of the clip is louder than a threshold: the model listens to the first half only."
    def forward(self, x):
        e = x[..., : x.shape[-1] // 2].pow(2).mean(-1).flatten(1).mean(1, keepdim=True)
        return torch.cat([torch.full_like(e, 0.1), e], 1)
    def parameters(self, recurse=True):
        yield torch.zeros(1)


def test_listening_check_separates_heatmap_from_complement():
    "A model that only listens to the first half: its heatmap keeps the decision, the complement loses it."
    rep = features.Waveform()
    waves = torch.randn(4, 1, 8000, generator=torch.Generator().manual_seed(0))
    r = A.listening_check(_HalfModel(), rep, waves, labels=torch.ones(4, dtype=torch.long), method="gradient_x_input")
    assert set(r) >= {"n", "accuracy", "heatmap_keeps", "complement_keeps", "shifted_keeps", "kept_fraction"}
    assert r["n"] == 4 and r["accuracy"] == 1.0
    assert r["heatmap_keeps"] == 1.0 and r["complement_keeps"] == 0.0, r
    with pytest.raises(ValueError, match="waves has shape"): A.listening_check(_HalfModel(), rep, waves[:, 0])
