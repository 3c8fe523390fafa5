"""Readers, folds, synthetic corpus, preprocessing and the cache of the data module."""
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audio_xai_kit.data as data
from audio_xai_kit.core import DataError
from audio_xai_kit.data import (AUDIOMNIST_SPEAKERS, PAPER_DIGIT_GROUPS, PAPER_SEX_GROUPS, ClipDataset, ClipInfo,
                                Corpus, corpus_summary, default_corpus, folds, load_waves, make_synth_corpus,
                                n_folds, parse_audiomnist_name, parse_fsdd_name, preprocess, read_audiomnist,
                                read_fsdd, split, write_wav16)

WOMEN = {f"{i:02d}" for i in (12, 26, 28, 36, 43, 47, 52, 56, 57, 58, 59, 60)}


def stub_audiomnist(speakers=AUDIOMNIST_SPEAKERS, synthetic=False) -> Corpus:
    "Labels of an AudioMNIST-like corpus, no audio (enough for folds)."
    clips = [ClipInfo(Path(f"{s}/{d}_{s}_0.wav"), d, s, 0, int(s in WOMEN)) for s in speakers for d in range(2)]
    meta = {s: {"gender": "female" if s in WOMEN else "male", **({"synthetic": True} if synthetic else {})} for s in speakers}
    return Corpus("stub", Path("."), clips, meta)


# ------------------------------------------------------------------------------------- FSDD

def test_fsdd_dev(fsdd_dev):
    c = read_fsdd(fsdd_dev)
    assert len(c) == 1000 and c.speakers == ["jackson", "theo"]
    for clip in c.clips:                                   # labels agree with the file names
        d, s, t = clip.path.stem.split("_")
        assert (clip.digit, clip.speaker, clip.take, clip.sex) == (int(d), s, int(t), None)
    assert Counter(c.labels("digit").tolist()) == {d: 100 for d in range(10)}
    assert Counter(x.speaker for x in c.clips) == {"jackson": 500, "theo": 500}
    assert sorted({x.take for x in c.clips}) == list(range(50))
    with pytest.raises(ValueError, match="sex"):
        c.labels("sex")


def test_fsdd_dev_loads(fsdd_dev, data_home):
    c = read_fsdd(fsdd_dev).subset(["theo"])
    c.clips = c.clips[:40]
    x, y = load_waves(c, "digit")
    assert x.shape == (40, 1, 8000) and y.tolist() == [x_.digit for x_ in c.clips]
    assert torch.isfinite(x).all() and x.abs().max() > 0.01


# ------------------------------------------------------------------------------------- folds

@pytest.mark.parametrize("fold", range(5))
def test_paper_digit_folds(fold):
    c = stub_audiomnist()
    order = list(PAPER_DIGIT_GROUPS)                         # A B C D E
    g = lambda i: PAPER_DIGIT_GROUPS[order[(fold + i) % 5]]
    f = folds(c, "digit", fold)
    assert f["train"] == sorted(g(0) + g(1) + g(2)) and f["val"] == g(3) and f["test"] == g(4)
    assert len(f["train"]) == 36 and len(f["val"]) == 12 == len(f["test"])


def test_paper_digit_fold_examples():
    c = stub_audiomnist()
    f1 = folds(c, "digit", 1)
    assert f1["val"] == PAPER_DIGIT_GROUPS["E"] and f1["test"] == PAPER_DIGIT_GROUPS["A"]
    assert "01" in f1["test"] and "02" in f1["train"]


@pytest.mark.parametrize("fold", range(4))
def test_paper_sex_folds(fold):
    c = stub_audiomnist()
    groups = [w + m for w, m in PAPER_SEX_GROUPS.values()]
    f = folds(c, "sex", fold)
    assert f["train"] == sorted(groups[fold] + groups[(fold + 1) % 4])
    assert f["val"] == sorted(groups[(fold + 2) % 4]) and f["test"] == sorted(groups[(fold + 3) % 4])
    for part in f.values():                                   # balanced by sex in every part
        assert sum(s in WOMEN for s in part) * 2 == len(part)
    sp = split(c, "sex", fold)
    assert sorted(set(sp["test"].labels("sex"))) == [0, 1]


def test_paper_sex_fold0_literal():
    f = folds(stub_audiomnist(), "sex", 0)
    assert f["test"] == ["07", "23", "38", "58", "59", "60"]
    assert f["val"] == ["28", "41", "43", "48", "52", "53"]


def test_synthetic_60_speakers_do_not_use_paper_folds():
    c = stub_audiomnist(synthetic=True)
    assert c.synthetic
    assert folds(c, "digit", 0)["test"] != PAPER_DIGIT_GROUPS["E"]


@pytest.mark.parametrize("n", [3, 4, 7, 20, 59])
def test_computed_folds_partition_speakers(n):
    c = stub_audiomnist(AUDIOMNIST_SPEAKERS[:n])
    k = n_folds(c, "digit")
    assert k == min(5, n)
    tests = []
    for fold in range(k):
        f = folds(c, "digit", fold)
        parts = [set(v) for v in f.values()]
        assert set.union(*parts) == set(c.speakers) and sum(map(len, parts)) == n      # disjoint, complete
        assert f == folds(c, "digit", fold)                                            # deterministic
        tests += f["test"]
    assert sorted(tests) == c.speakers                         # each speaker tested exactly once


def test_computed_sex_folds_are_balanced():
    speakers = sorted(WOMEN)[:5] + [f"{i:02d}" for i in range(1, 12)]          # 5 women, 11 men
    c = stub_audiomnist(speakers)
    assert n_folds(c, "sex") == 4
    used = set()
    for fold in range(4):
        f = folds(c, "sex", fold)
        for part in f.values():
            assert sum(s in WOMEN for s in part) * 2 == len(part), (fold, f)
        used |= set(f["train"] + f["val"] + f["test"])
    assert len(used) == 10                                     # 5 women + the first 5 men


# ------------------------------------------------------------------------------------- synthetic corpus

def test_synth_deterministic_and_fast(tmp_path, capsys):
    t = time.perf_counter()
    a = make_synth_corpus(tmp_path / "a", seed=3)
    dt = time.perf_counter() - t
    b = make_synth_corpus(tmp_path / "b", seed=3, verbose=False)
    print(f"default-size synthetic corpus (20 x 10 x 10) generated and read in {dt:.1f} s")
    assert len(a) == 2000 and len(a.speakers) == 20
    assert [x.path.read_bytes() for x in a.clips] == [x.path.read_bytes() for x in b.clips]   # same wave bytes
    assert (tmp_path / "a" / "audioMNIST_meta.txt").read_bytes() == (tmp_path / "b" / "audioMNIST_meta.txt").read_bytes()
    c = make_synth_corpus(tmp_path / "c", n_speakers=2, n_takes=2, seed=4, verbose=False)
    assert c.clips[0].path.read_bytes() != a.clips[0].path.read_bytes()


def test_synth_meta_and_balance(tmp_path):
    c = make_synth_corpus(tmp_path / "s", n_speakers=8, n_takes=3, verbose=False)
    assert len(c) == 8 * 10 * 3 and c.synthetic and c.name == "synthetic:s"
    meta = json.loads((tmp_path / "s" / "audioMNIST_meta.txt").read_text())
    for s, m in meta.items():
        assert m["synthetic"] is True and "+" in m["voice"]
        assert {"accent", "age", "gender", "native speaker", "origin", "recordingdate", "recordingroom"} <= set(m)
    assert Counter(m["gender"] for m in meta.values()) == {"male": 4, "female": 4}
    assert len({m["voice"] for m in meta.values()}) == 8
    women_pitch = [m["pitch"] for m in meta.values() if m["gender"] == "female"]
    men_pitch = [m["pitch"] for m in meta.values() if m["gender"] == "male"]
    assert min(women_pitch) > max(men_pitch)
    assert Counter(c.labels("digit").tolist()) == {d: 24 for d in range(10)}


def test_synth_sexes_differ_in_pitch(tmp_path):
    "The fundamental frequency separates the synthetic sexes (what a sex classifier can rely on)."
    import librosa
    c = make_synth_corpus(tmp_path / "s", n_speakers=6, n_takes=2, verbose=False)
    f0 = {}
    for clip in c.clips[::4]:
        w = data.load_wave(clip.path, 16000)
        f = librosa.yin(w, fmin=50, fmax=500, sr=16000, frame_length=1024)
        rms = librosa.feature.rms(y=w, frame_length=1024, hop_length=256)[0][: len(f)]
        f0.setdefault(clip.sex, []).extend(f[rms > 0.3 * rms.max()])
    assert np.median(f0[0]) < 130 < 170 < np.median(f0[1])


def test_synth_reuse_and_overwrite(tmp_path):
    root = tmp_path / "s"
    make_synth_corpus(root, n_speakers=2, n_takes=1, verbose=False)
    first = (root / "01" / "0_01_0.wav").stat().st_mtime_ns
    make_synth_corpus(root, n_speakers=2, n_takes=1, verbose=False)            # same settings: just read
    assert (root / "01" / "0_01_0.wav").stat().st_mtime_ns == first
    with pytest.raises(DataError, match="already holds a synthetic corpus made with"):
        make_synth_corpus(root, n_speakers=4, n_takes=1, verbose=False)
    c = make_synth_corpus(root, n_speakers=4, n_takes=1, overwrite=True, verbose=False)
    assert len(c.speakers) == 4 and not any(p.name.startswith(".s.") for p in tmp_path.iterdir())


def test_synth_never_overwrites_user_data(tmp_path):
    root = tmp_path / "mine"; root.mkdir(); (root / "thesis.txt").write_text("precious")
    with pytest.raises(DataError, match="already holds other data"):
        make_synth_corpus(root, n_speakers=2, n_takes=1, verbose=False)
    assert (root / "thesis.txt").read_text() == "precious"


def test_synth_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_speakers=61"):
        make_synth_corpus(tmp_path / "x", n_speakers=61)
    with pytest.raises(ValueError, match="n_takes=0"):
        make_synth_corpus(tmp_path / "x", n_takes=0)


def test_default_corpus_under_data_root(data_home):
    c = default_corpus()
    assert c.root == data_home / "synth-digits" and len(c) == 2000
    assert default_corpus().clips == c.clips
    sp = split(c, "sex", 0)
    assert all(sorted(set(v.labels("sex"))) == [0, 1] for v in sp.values())
    assert not (set(sp["train"].speakers) & set(sp["test"].speakers))


# ------------------------------------------------------------------------------------- preprocessing and cache

def test_preprocess_offsets_are_uniformish():
    w = np.ones(4000, np.float32)
    offs = [int(np.argmax(preprocess(w, seed=s) > 0)) for s in range(200)]
    assert min(offs) >= 0 and max(offs) <= 4000 and len(set(offs)) > 150


def test_preprocess_crop_keeps_loudest_second():
    x = np.full(20000, 0.01, np.float32); x[15000:15500] = 1.0
    out = preprocess(x, on_long="crop")
    assert out.shape == (8000,) and (out == 1.0).sum() == 500


def test_load_waves_cache(tmp_path, data_home, monkeypatch):
    c = make_synth_corpus(tmp_path / "s", n_speakers=4, n_takes=2, verbose=False)
    x1, y1 = load_waves(c, "sex")
    assert x1.shape == (80, 1, 8000) and x1.dtype == torch.float32 and y1.dtype == torch.int64
    files = sorted((data_home / "cache").glob("waves-*.npy"))
    assert len(files) == 4                                               # one per speaker
    calls = []
    real = data.load_wave
    monkeypatch.setattr(data, "load_wave", lambda *a, **k: calls.append(a) or real(*a, **k))
    x2, y2 = load_waves(c, "sex")
    assert calls == [] and torch.equal(x1, x2) and torch.equal(y1, y2)   # nothing decoded the second time
    # a changed file changes the key of its speaker only
    p = c.clips[0].path; write_wav16(p, np.zeros(3000), 22050)
    c = read_audiomnist(tmp_path / "s")
    x3, _ = load_waves(c, "sex")
    assert len(calls) == 20 and x3[0].abs().max() == 0 and torch.equal(x3[20:], x1[20:])
    # another seed moves the clips
    x4, _ = load_waves(c, "sex", seed=1)
    assert not torch.equal(x4, x3)


def test_split_shares_positions(tmp_path, data_home):
    c = make_synth_corpus(tmp_path / "s", n_speakers=6, n_takes=1, verbose=False)
    x, _ = load_waves(c, "digit")
    sp = split(c, "digit", 2)
    xt, yt = load_waves(sp["test"], "digit")
    idx = [c.clips.index(cl) for cl in sp["test"].clips]
    assert torch.equal(xt, x[idx]) and yt.tolist() == [cl.digit for cl in sp["test"].clips]


def test_clip_dataset_with_dataloader(tmp_path, data_home):
    c = make_synth_corpus(tmp_path / "s", n_speakers=2, n_takes=2, verbose=False)
    ds = ClipDataset(c, "digit")
    assert len(ds) == 40 and ds.waves.shape == (40, 1, 8000) and ds.classes[3] == "3"
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)))
    assert xb.shape == (16, 1, 8000) and yb.tolist() == ds.labels[:16].tolist()


def test_corpus_summary(tmp_path):
    c = make_synth_corpus(tmp_path / "s", n_speakers=4, n_takes=2, verbose=False)
    s = corpus_summary(c)
    assert "80 clips, 4 speakers, synthetic" in s
    assert "clips per speaker: 20 each" in s and "0: 8, 1: 8" in s
    assert "female: 40, male: 40 (speakers: female: 2, male: 2)" in s
    assert re.search(r"duration \(s\): min 0\.\d+, median", s) and "22050" in s


def test_corpus_summary_fsdd(fsdd_dev):
    s = corpus_summary(read_fsdd(fsdd_dev))
    assert "1000 clips, 2 speakers, recorded" in s and "unknown: 1000" in s and "clips longer than 1 s" in s


# ------------------------------------------------------------------------------------- property tests

names_am = st.tuples(st.integers(0, 9), st.sampled_from(AUDIOMNIST_SPEAKERS), st.integers(0, 49))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=st.dictionaries(st.sampled_from(AUDIOMNIST_SPEAKERS),
                              st.tuples(st.booleans(), st.sets(st.tuples(st.integers(0, 9), st.integers(0, 49)), min_size=1, max_size=4)),
                              min_size=1, max_size=4))
def test_random_audiomnist_layouts_read_back(layout):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        expect = []
        for spk, (female, items) in layout.items():
            (root / spk).mkdir()
            for digit, take in items:
                write_wav16(root / spk / f"{digit}_{spk}_{take}.wav", np.zeros(10), 8000)
                expect.append((spk, digit, take, int(female)))
        meta = {s: {"gender": "female" if f else "male"} for s, (f, _) in layout.items()}
        (root / "audioMNIST_meta.txt").write_text(json.dumps(meta))
        c = read_audiomnist(root)
        assert sorted((x.speaker, x.digit, x.take, x.sex) for x in c.clips) == sorted(expect)
        assert c.speakers == sorted(layout)
        assert c.labels("sex").tolist() == [x.sex for x in c.clips]


@settings(max_examples=25, deadline=None)
@given(items=st.sets(st.tuples(st.integers(0, 9), st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), st.integers(0, 200)),
                     min_size=1, max_size=12))
def test_random_fsdd_layouts_read_back(items):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for digit, spk, take in items:
            write_wav16(root / f"{digit}_{spk}_{take}.wav", np.zeros(10), 8000)
        c = read_fsdd(root)
        assert sorted((x.digit, x.speaker, x.take) for x in c.clips) == sorted(items)
        assert all(x.sex is None for x in c.clips)


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(max_size=20),
                      st.from_regex(r"[0-9]{1,2}_[0-9]{1,3}_[0-9]{1,3}\.(wav|WAV|mp3)", fullmatch=True),
                      names_am.map(lambda t: f"{t[0]}_{t[1]}_{t[2]}.wav")))
def test_random_names_parse_or_raise_dataerror(name):
    m = re.fullmatch(r"([0-9])_([0-9]{2})_(0|[1-9][0-9]?)\.wav", name)
    valid = bool(m) and 1 <= int(m[2]) <= 60 and int(m[3]) <= 49
    try:
        got = parse_audiomnist_name(name)
    except DataError as e:
        assert not valid, (name, e)
        assert repr(name) in str(e)
    else:
        assert valid and got == (int(m[1]), m[2], int(m[3]))


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(st.text(max_size=20), st.from_regex(r"[0-9]{1,2}_[A-Za-z0-9-]{0,6}_[0-9]{1,3}\.wav", fullmatch=True)))
def test_random_fsdd_names_parse_or_raise_dataerror(name):
    m = re.fullmatch(r"([0-9])_([A-Za-z][A-Za-z0-9-]*)_([0-9]+)\.wav", name)
    try:
        got = parse_fsdd_name(name)
    except DataError:
        assert m is None
    else:
        assert m is not None and got == (int(m[1]), m[2], int(m[3]))
