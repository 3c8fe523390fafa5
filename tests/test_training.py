"""Training: recipes, determinism, checkpoints (round trip and mismatches), `pretrained` caching and
concurrency, metrics, cross-validation and tables, bad input. A tiny private synthetic corpus keeps it fast."""
import json, os, threading, time
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_xai_kit import data
from audio_xai_kit import training as T
from audio_xai_kit.core import DataError, Profile
from audio_xai_kit.features import Spectrogram, Waveform
from audio_xai_kit.models import build_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    "6 synthetic speakers x 10 digits x 2 takes, in a private data root (module-wide)."
    root = tmp_path_factory.mktemp("axk-data")
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIO_XAI_KIT_DATA", str(root))
    corpus = data.make_synth_corpus(root / "synth-digits", n_speakers=6, n_takes=2, verbose=False)
    yield corpus
    mp.undo()


# the quick profile, one epoch: `pretrained` and `train_all` train fast on the tiny corpus
TINY = Profile("tiny", "synth", "audionet-lite", "alexnet-lite", "modern", 1)


@pytest.fixture
def quick_fit(monkeypatch):
    "Count the calls `pretrained` makes to `fit`."
    calls, real = [], T.fit
    def fit(*a, **k):
        calls.append((a, k)); return real(*a, **k)
    monkeypatch.setattr(T, "fit", fit)
    return calls


def _weights(model): return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_recipes():
    r = T.make_recipe("paper", "audionet")
    assert (r.optimizer, r.lr, r.momentum, r.batch_size, r.step_size, r.max_steps) == ("sgd", 1e-4, 0.9, 100, 50_000, 50_000)
    r = T.make_recipe("paper", "alexnet-lite")
    assert (r.lr, r.step_size, r.max_steps, r.grad_clip) == (1e-3, 2_500, 10_000, 5.0)
    assert T.make_recipe("modern", "alexnet").optimizer == "adamw"
    with pytest.raises(ValueError, match="unknown recipe"): T.make_recipe("adam", "audionet")
    with pytest.raises(ValueError, match="epochs"): T.make_recipe("modern", "audionet", epochs=3)


@pytest.mark.parametrize("model_name", ["audionet-lite", "alexnet-lite"])
def test_fit_is_deterministic_on_cpu(tiny, model_name):
    kw = dict(corpus=tiny, max_steps=3, batch_size=16, device="cpu", show_progress=False)
    a, b = T.fit(model_name, "digit", **kw), T.fit(model_name, "digit", **kw)
    assert _same(_weights(a.model), _weights(b.model))
    assert a.history == [dict(h, seconds=a.history[i]["seconds"]) for i, h in enumerate(b.history)]
    assert a.config["metrics"]["test"]["accuracy"] == b.config["metrics"]["test"]["accuracy"]
    c = T.fit(model_name, "digit", seed=1, **kw)
    assert not _same(_weights(a.model), _weights(c.model))


def test_cache_and_no_cache_agree(tiny):
    kw = dict(corpus=tiny, max_steps=3, batch_size=16, device="cpu", show_progress=False, shift_samples=0)
    a, b = T.fit("audionet-lite", "sex", cache=True, **kw), T.fit("audionet-lite", "sex", cache=False, **kw)
    for k, v in _weights(a.model).items(): torch.testing.assert_close(v, _weights(b.model)[k])


def test_cache_refuses_to_drop_augmentation(tiny):
    "Encoding once cannot apply random time shifts: asking for both is an error, not a silent loss of augmentation."
    with pytest.raises(ValueError, match="shift"):
        T.fit("audionet-lite", "sex", corpus=tiny, max_steps=1, cache=True, shift_samples=400, show_progress=False)


def test_fit_config_and_split(tiny):
    t = T.fit("audionet-lite", "sex", tiny, fold=1, max_steps=2, batch_size=8, show_progress=False)
    sp = t.config["speakers"]
    assert set(sp["train"]).isdisjoint(sp["test"]) and set(sp["val"]).isdisjoint(sp["test"])
    assert sp == data.folds(tiny, "sex", 1)
    assert t.classes == ["male", "female"] and t.config["fold"] == 1 and t.config["recipe"]["max_steps"] == 2
    json.dumps(t.config)   # JSON-able
    assert 0 <= t.config["metrics"]["test"]["accuracy"] <= 1


def test_bad_input(tiny):
    with pytest.raises(ValueError, match="task"): T.fit("audionet-lite", "colour", tiny)
    with pytest.raises(ValueError, match="fold"): T.fit("audionet-lite", "digit", tiny, fold=99)
    with pytest.raises(ValueError, match="unknown model"): T.fit("resnet", "digit", tiny)
    with pytest.raises(ValueError, match="empty"):
        T.train(build_model("audionet-lite"), Waveform(), (torch.zeros(0, 1, 8000), torch.zeros(0, dtype=torch.long)))
    fsdd_like = data.Corpus("x", tiny.root, [data.ClipInfo(c.path, c.digit, c.speaker, c.take, None) for c in tiny.clips])
    with pytest.raises(ValueError, match="sex"): T.fit("audionet-lite", "sex", fsdd_like)


def test_checkpoint_round_trip(tiny, tmp_path):
    t = T.fit("alexnet-lite", "digit", tiny, max_steps=2, batch_size=8, show_progress=False)
    p = T.save_checkpoint(tmp_path / "ck" / "a.pt", t)
    assert p.is_file() and p.with_suffix(".json").is_file()
    assert json.loads(p.with_suffix(".json").read_text())["model"] == "alexnet-lite"
    assert not [f for f in p.parent.iterdir() if f.name.endswith(".tmp")]
    u = T.load_checkpoint(p, expect={"model": "alexnet-lite", "task": "digit"})
    assert u.config == t.config and u.representation == t.representation
    w = data.load_waves(tiny.subset(tiny.speakers[:1]), "digit")[0][:5]
    torch.testing.assert_close(u.predict_proba(w), t.predict_proba(w))
    m = T.evaluate(u, t.split)
    assert m.accuracy == t.config["metrics"]["test"]["accuracy"]


def test_checkpoint_mismatches_name_both_sides(tiny, tmp_path):
    t = T.fit("audionet-lite", "digit", tiny, max_steps=1, batch_size=8, show_progress=False)
    p = T.save_checkpoint(tmp_path / "a.pt", t)
    with pytest.raises(ValueError, match=r"task='digit'.*task='sex'"): T.load_checkpoint(p, expect={"task": "sex"})
    with pytest.raises(ValueError, match=r"audionet-lite.*alexnet-lite"): T.load_checkpoint(p, model=build_model("alexnet-lite"))
    with pytest.raises(ValueError, match=r"checkpoint \(.*\), model \("):   # same name, 2 classes: shapes named
        T.load_checkpoint(p, model=build_model("audionet-lite", 2))
    with pytest.raises(ValueError, match=r"waveform.*spectrogram"): T.load_checkpoint(p, representation=Spectrogram())
    with pytest.raises(ValueError, match=r"percentile': 95.0.*percentile': 90.0"): T.load_checkpoint(p, representation=Waveform(90))
    T.load_checkpoint(p, model=build_model("audionet-lite", 10), representation=Waveform())   # the right ones load
    with pytest.raises(FileNotFoundError, match="no checkpoint"): T.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pt"): T.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not an audio-xai-kit checkpoint"): T.load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": T.CHECKPOINT_FORMAT, "config": "{}", "obj": threading.Lock}, tmp_path / "pickle.pt")
    with pytest.raises(DataError, match="pickle.pt"): T.load_checkpoint(tmp_path / "pickle.pt")   # weights_only refuses


def test_pretrained_caches(tiny, quick_fit):
    a = T.pretrained("audionet-lite", "digit", tiny, profile=TINY, show_progress=False)
    assert len(quick_fit) == 1 and not a.from_cache
    b = T.pretrained("audionet-lite", "digit", tiny, profile=TINY, show_progress=False)
    assert b.from_cache and len(quick_fit) == 1
    assert _same(_weights(a.model), _weights(b.model)) and b.split is not None
    path, _ = T.checkpoint_path("audionet-lite", "digit", tiny, profile=TINY)
    assert path.is_file() and path.parent == Path(os.environ["AUDIO_XAI_KIT_DATA"]) / "checkpoints"
    T.pretrained("audionet-lite", "digit", tiny, fold=1, profile=TINY, show_progress=False)   # another fold: another checkpoint
    assert len(quick_fit) == 2
    path.write_bytes(b"garbage")                                               # a broken checkpoint is replaced
    with pytest.warns(UserWarning, match="ignoring checkpoint"):
        c = T.pretrained("audionet-lite", "digit", tiny, profile=TINY, show_progress=False)
    assert len(quick_fit) == 3 and not c.from_cache and T.load_checkpoint(path).config["model"] == "audionet-lite"


def test_pretrained_concurrent_trains_once(tiny, monkeypatch):
    calls, real = [], T.fit
    def slow_fit(*a, **k):
        calls.append(1); time.sleep(1.0)
        return real(*a, **k)
    monkeypatch.setattr(T, "fit", slow_fit)
    out, errs = [None, None], []
    def go(i):
        try: out[i] = T.pretrained("alexnet-lite", "sex", tiny, seed=7, profile=TINY, show_progress=False)
        except Exception as e: errs.append(e)
    th = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for x in th: x.start()
    for x in th: x.join()
    assert not errs, errs
    assert len(calls) == 1 and sorted(o.from_cache for o in out) == [False, True]
    assert _same(_weights(out[0].model), _weights(out[1].model))


def test_evaluate_metrics_and_worst(tiny):
    t = T.fit("audionet-lite", "digit", tiny, max_steps=2, batch_size=8, show_progress=False)
    m = T.evaluate(t, n_worst=7)
    assert m.n == len(t.split["test"]) and m.confusion.sum() == m.n and m.confusion.shape == (10, 10)
    assert np.isclose(m.accuracy, np.trace(m.confusion) / m.n)
    assert list(m.per_class) == [str(d) for d in range(10)]
    p = [w["p_true"] for w in m.worst]
    assert len(p) == 7 and p == sorted(p) and p[0] == m.probs[np.arange(m.n), m.labels].min()
    assert all(isinstance(w["clip"], data.ClipInfo) and w["clip"].speaker in t.config["speakers"]["test"] for w in m.worst)
    assert all(str(w["clip"].digit) == w["true"] for w in m.worst)
    fig = T.confusion_figure(m)
    assert np.array(fig.data[0].z).sum() == m.n
    assert T.evaluate(t, t.split, part="val").n == len(t.split["val"])
    with pytest.raises(ValueError, match="part"): T.evaluate(t, t.split, part="dev")


def test_cross_validate_and_tables(tiny, quick_fit):
    r = T.cross_validate("audionet-lite", "sex", tiny, folds=[0, 1], max_steps=2, batch_size=8, show_progress=False)
    assert r["folds"] == [0, 1] and len(r["accuracies"]) == 2
    assert np.isclose(r["mean"], np.mean(r["accuracies"])) and np.isclose(r["std"], np.std(r["accuracies"], ddof=1))
    rows = T.train_all(TINY, tiny, show_progress=False)
    assert [(x["model"], x["task"]) for x in rows] == [("audionet-lite", "digit"), ("alexnet-lite", "digit"),
                                                       ("audionet-lite", "sex"), ("alexnet-lite", "sex")]
    table = T.results_table(rows + [r])
    assert table.count("\n") == 6 and "alexnet-lite" in table and "±" in table
    rows2 = T.train_all(TINY, tiny, show_progress=False)     # all cached now
    assert all(x["cached"] == [True] for x in rows2) and "cached" in T.results_table(rows2)


def test_holdout_split(tiny):
    s = T.holdout_split(tiny, [tiny.speakers[0]], val_fraction=0.5)
    assert s["test"].speakers == [tiny.speakers[0]]
    assert set(s["train"].speakers) == set(s["val"].speakers) == set(tiny.speakers[1:])
    assert len(s["train"]) == len(s["val"]) and len(s["train"]) + len(s["val"]) + len(s["test"]) == len(tiny)
    with pytest.raises(ValueError, match="not in corpus"): T.holdout_split(tiny, ["zz"])
