"""widgets.py: the explorer's callbacks, driven as a mouse would (setting .value), without a browser."""
import datetime as dt
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_xai_kit import audible as A, data, models, widgets

_T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return data.make_synth_corpus(tmp_path_factory.mktemp("synth") / "synth", n_speakers=2, n_takes=2, verbose=False)


@pytest.fixture(scope="module", params=["audionet-lite", "alexnet-lite"])
def ex(request, corpus):
    return widgets.explore(models.build_model(request.param, 10, seed=0), corpus)


def _fig_data(ex):
    return [np.asarray(t.z if t.type == "heatmap" else t.y).copy() for t in ex.figure.data]


def _changed(a, b):
    return [not np.array_equal(x, y) for x, y in zip(a, b)]


def test_explorer_exposes_its_widgets(ex):
    for name in ("speaker", "digit", "take", "upload", "target", "method", "composite", "epsilon", "gamma",
                 "top_k", "mode", "smooth_ms", "audio_original", "audio_heatmap", "audio_complement", "figure", "widget"):
        assert hasattr(ex, name), name
    assert ex.audio_heatmap.value[:4] == b"RIFF" and ex.audio_original.value[:4] == b"RIFF"
    assert not ex.audio_heatmap.autoplay
    assert ex.figure.__class__.__name__ == "FigureWidget"
    assert "_repr_mimebundle_" in dir(ex)


def test_top_k_changes_audio_and_figure_without_recomputing_relevance(ex, monkeypatch):
    fig0, heat0, comp0, orig0 = _fig_data(ex), ex.audio_heatmap.value, ex.audio_complement.value, ex.audio_original.value
    figure_id = id(ex.figure)
    calls = []
    real = A.relevance
    monkeypatch.setattr(A, "relevance", lambda *a, **k: calls.append(1) or real(*a, **k))
    ex.top_k.value = 60 if ex.top_k.value != 60 else 10
    assert calls == [], "top-k must only re-mask a cached relevance"
    assert ex.audio_heatmap.value != heat0 and ex.audio_complement.value != comp0
    assert any(_changed(fig0, _fig_data(ex))), "the figure's data did not change"
    assert id(ex.figure) == figure_id, "the figure is updated in place, not re-created"
    # the same for the gate's other knobs
    heat1 = ex.audio_heatmap.value
    ex.mode.value = "weight"; assert ex.audio_heatmap.value != heat1
    heat2 = ex.audio_heatmap.value
    ex.smooth_ms.value = 12.0; assert ex.audio_heatmap.value != heat2
    assert calls == []


def test_class_and_method_recompute_and_cache(ex):
    values = [v for _, v in ex.method.options]
    assert values[0] == "lrp" and ex.method.value == "lrp"
    ex.method.value = "gradxinput"
    assert ex.epsilon.disabled and ex.gamma.disabled, "LRP's parameters do not apply to gradient x input"
    R0, heat0 = ex.R.clone(), ex.audio_heatmap.value
    other = (ex.explained_class + 1) % len(ex.classes)
    ex.target.value = other
    assert ex.explained_class == other and ex.timings_ms["cache_hit"] == 0.0
    assert not torch.equal(ex.R, R0) and ex.audio_heatmap.value != heat0
    ex.target.value = -1
    assert ex.timings_ms["cache_hit"] == 1.0 and torch.equal(ex.R, R0), "going back must hit the relevance cache"
    assert "explaining" in ex.status.value


def test_clip_choice_and_upload(ex, corpus):
    clip0 = ex.clip_key
    other = [t for t in ex.take.options if t != ex.take.value][0]
    ex.take.value = other
    assert ex.clip_key != clip0 and ex.source == "corpus"
    # upload a 16 kHz stereo WAV: it is mixed down, resampled to 8 kHz and explained
    t = np.arange(12000) / 16000
    w = (0.3 * np.sin(2 * np.pi * 300 * t) * (t < 0.5)).astype(np.float32)
    buf = io.BytesIO(); sf.write(buf, np.stack([w, w], 1), 16000, format="WAV")
    orig0 = ex.audio_original.value
    ex.upload.value = ({"name": "mine.wav", "type": "audio/wav", "size": len(buf.getvalue()),
                        "content": memoryview(buf.getvalue()), "last_modified": _T0},)
    assert ex.source == "upload" and ex.clip_key[0] == "upload" and ex.clip_key[1] == "mine.wav"
    assert ex.audio_original.value != orig0 and "mine.wav" in ex.status.value
    # a broken file is reported in the explorer, not raised into the kernel
    ex.upload.value = ({"name": "junk.wav", "type": "audio/wav", "size": 3, "content": memoryview(b"abc"), "last_modified": _T0},)
    assert "junk.wav" in ex.status.value and ex.clip_key[1] == "mine.wav"


def test_bad_arguments(corpus):
    with pytest.raises(ValueError, match="model_or_trained"): widgets.explore("not a model", corpus)
    with pytest.raises(ValueError, match="8000 samples"):
        widgets.explore(models.build_model("audionet-lite", 10), corpus).load_wave(np.zeros(100))
    with pytest.raises(ValueError, match="junk.wav"): widgets.wave_from_wav_bytes(b"nope", "junk.wav")
    m = models.build_model("audionet-lite", 10)
    with pytest.raises(ValueError, match="method='lrpx'"): widgets.explore(m, corpus, method="lrpx")
    with pytest.raises(ValueError, match="composite='nope'"): widgets.explore(m, corpus, composite="nope")
    with pytest.raises(ValueError, match="top_k_percent"): widgets.explore(m, corpus, top_k_percent=0)


def test_lrp_parameters_recompute(ex):
    ex.method.value = "lrp"
    assert not ex.epsilon.disabled
    R0, heat0 = ex.R.clone(), ex.audio_heatmap.value
    ex.epsilon.value = 1.0
    assert ex.timings_ms["cache_hit"] == 0.0 and not torch.equal(ex.R, R0) and ex.audio_heatmap.value != heat0
    ex.composite.value = "epsilon-plus"
    assert ex.timings_ms["cache_hit"] == 0.0
    ex.composite.value = ex.composite.options[0]; ex.epsilon.value = 1e-6
