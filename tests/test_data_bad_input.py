"""Bad input to the data module: every case gets a clear error naming the file (or a documented,
tested handling), never a traceback from deep inside numpy, torch or soundfile."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_xai_kit.core import DataError
from audio_xai_kit.data import (ClipInfo, Corpus, folds, load_wave, load_waves, preprocess, read_audiomnist,
                                read_fsdd, split, write_wav16)


def make_layout(root: Path, speakers=("01", "02", "03"), digits=(0, 1), takes=(0,), women=("02",), sr=8000, n=2000):
    "A small valid AudioMNIST-layout corpus."
    root.mkdir(parents=True, exist_ok=True)
    for s in speakers:
        (root / s).mkdir(exist_ok=True)
        for d in digits:
            for t in takes:
                write_wav16(root / s / f"{d}_{s}_{t}.wav", 0.3 * np.sin(np.arange(n) / (3 + d)), sr)
    meta = {s: {"accent": "x", "age": "30", "gender": "female" if s in women else "male"} for s in speakers}
    (root / "audioMNIST_meta.txt").write_text(json.dumps(meta))
    return root


# ------------------------------------------------------------------------------------- folders

def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_audiomnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_fsdd(tmp_path / "nowhere")


def test_root_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        read_audiomnist(tmp_path / "f")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.wav files under .*empty"):
        read_audiomnist(tmp_path / "empty")
    with pytest.raises(DataError, match=r"no \.wav files in .*empty"):
        read_fsdd(tmp_path / "empty")


def test_name_outside_layout_is_skipped_with_warning(tmp_path):
    root = make_layout(tmp_path / "c")
    write_wav16(root / "01" / "seven.wav", np.zeros(100), 8000)          # not {digit}_{NN}_{take}.wav
    write_wav16(root / "01" / "3_02_0.wav", np.zeros(100), 8000)         # speaker 02 in folder 01
    (root / "01" / "notes.txt").write_text("ignored silently: not a .wav")
    with pytest.warns(UserWarning) as rec:
        c = read_audiomnist(root)
    msgs = " ".join(str(w.message) for w in rec)
    assert "seven.wav" in msgs and "3_02_0.wav" in msgs and "skipped" in msgs and "notes.txt" not in msgs
    assert len(c) == 6
    with pytest.raises(DataError, match=r"3_02_0\.wav: speaker 02 must be in folder"):
        read_audiomnist(root, strict=True)
    (root / "01" / "3_02_0.wav").unlink()
    with pytest.raises(DataError, match=r"seven\.wav' is not an AudioMNIST file name"):
        read_audiomnist(root, strict=True)


def test_fsdd_name_outside_layout(tmp_path):
    root = tmp_path / "f"; root.mkdir()
    write_wav16(root / "3_theo_1.wav", np.zeros(100), 8000)
    write_wav16(root / "theo-3.wav", np.zeros(100), 8000)
    with pytest.warns(UserWarning, match="theo-3.wav"):
        c = read_fsdd(root)
    assert [(x.digit, x.speaker, x.take) for x in c.clips] == [(3, "theo", 1)]
    with pytest.raises(DataError, match="theo-3.wav"):
        read_fsdd(root, strict=True)


def test_only_stray_files(tmp_path):
    root = tmp_path / "c"; (root / "01").mkdir(parents=True)
    write_wav16(root / "01" / "x.wav", np.zeros(10), 8000)
    (root / "audioMNIST_meta.txt").write_text("{}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no clip under"):
            read_audiomnist(root)


# ------------------------------------------------------------------------------------- metadata

def test_meta_missing(tmp_path):
    root = make_layout(tmp_path / "c")
    (root / "audioMNIST_meta.txt").unlink()
    with pytest.raises(FileNotFoundError, match="audioMNIST_meta.txt is missing"):
        read_audiomnist(root)


def test_meta_not_json(tmp_path):
    root = make_layout(tmp_path / "c")
    (root / "audioMNIST_meta.txt").write_text("{'01': not json")
    with pytest.raises(DataError, match=r"audioMNIST_meta.txt is not valid JSON"):
        read_audiomnist(root)


def test_meta_wrong_shape(tmp_path):
    root = make_layout(tmp_path / "c")
    (root / "audioMNIST_meta.txt").write_text("[1, 2, 3]")
    with pytest.raises(DataError, match="expected a JSON object"):
        read_audiomnist(root)


def test_meta_lacks_speaker(tmp_path):
    root = make_layout(tmp_path / "c")
    meta = json.loads((root / "audioMNIST_meta.txt").read_text()); del meta["03"]
    (root / "audioMNIST_meta.txt").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"no entry for speaker '03'"):
        read_audiomnist(root)


def test_meta_bad_gender(tmp_path):
    root = make_layout(tmp_path / "c")
    meta = json.loads((root / "audioMNIST_meta.txt").read_text()); meta["01"]["gender"] = "robot"
    (root / "audioMNIST_meta.txt").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"speaker '01'.*'robot' is neither"):
        read_audiomnist(root)


def test_meta_gender_capitalised_and_age_int(tmp_path):
    root = make_layout(tmp_path / "c")
    meta = json.loads((root / "audioMNIST_meta.txt").read_text())
    meta["02"]["gender"] = "Female"; meta["01"]["age"] = 30                 # as in the real file: int and str ages
    (root / "audioMNIST_meta.txt").write_text(json.dumps(meta))
    assert read_audiomnist(root).labels("sex").tolist() == [0, 0, 1, 1, 0, 0]


# ------------------------------------------------------------------------------------- audio files

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.wav"):
        load_wave(tmp_path / "gone.wav")


def test_file_vanished_after_reading_corpus(tmp_path):
    root = make_layout(tmp_path / "c")
    c = read_audiomnist(root)
    c.clips[0].path.unlink()
    with pytest.raises(FileNotFoundError, match="0_01_0.wav"):
        load_waves(c, cache=False)


def test_non_audio_file(tmp_path):
    p = tmp_path / "0_01_0.wav"; p.write_text("this is not audio at all")
    with pytest.raises(DataError, match=r"cannot read audio file .*0_01_0.wav"):
        load_wave(p)


def test_non_audio_file_inside_corpus(tmp_path):
    root = make_layout(tmp_path / "c")
    (root / "02" / "1_02_0.wav").write_bytes(b"\x00\x01garbage" * 50)
    c = read_audiomnist(root)
    with pytest.raises(DataError, match="1_02_0.wav"):
        load_waves(c, cache=False)


def test_truncated_inside_samples(tmp_path):
    p = tmp_path / "t.wav"; write_wav16(p, np.ones(4000) * 0.1, 8000)
    p.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"t.wav is truncated: its header promises 8000 bytes of samples but the file holds 2956"):
        load_wave(p)


def test_truncated_inside_header(tmp_path):
    p = tmp_path / "h.wav"; write_wav16(p, np.ones(4000) * 0.1, 8000)
    p.write_bytes(p.read_bytes()[:20])
    with pytest.raises(DataError, match=r"cannot read audio file .*h.wav"):
        load_wave(p)


def test_zero_length_audio(tmp_path):
    p = tmp_path / "z.wav"; write_wav16(p, np.zeros(0), 8000)
    with pytest.raises(DataError, match=r"z.wav holds no samples"):
        load_wave(p)


def test_stereo_is_mixed_down(tmp_path):
    p = tmp_path / "s.wav"
    left, right = np.full(800, 0.5, np.float32), np.full(800, -0.25, np.float32)
    sf.write(p, np.stack([left, right], 1), 8000, subtype="FLOAT")
    x = load_wave(p)
    assert x.shape == (800,) and x.dtype == np.float32
    np.testing.assert_allclose(x, 0.125)


def test_other_sample_rates_are_resampled(tmp_path):
    for sr in (48000, 22050, 16000, 11025):
        t = np.arange(sr // 2) / sr
        p = tmp_path / f"r{sr}.wav"; sf.write(p, 0.5 * np.sin(2 * np.pi * 440 * t), sr, subtype="FLOAT")
        x = load_wave(p)
        assert x.dtype == np.float32 and abs(len(x) - 4000) <= 1
        spec = np.abs(np.fft.rfft(x[500:3500]))
        peak_hz = np.argmax(spec) * 8000 / 3000
        assert abs(peak_hz - 440) < 5, (sr, peak_hz)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_samples(tmp_path, bad):
    p = tmp_path / "n.wav"
    x = np.zeros(100, np.float32); x[37] = bad
    sf.write(p, x, 8000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"n.wav holds 1 NaN or infinite samples \(first at sample 37\)"):
        load_wave(p)


def test_clip_longer_than_one_second(tmp_path):
    root = make_layout(tmp_path / "c", n=2000)
    x = np.zeros(14000); x[10000:11000] = 0.5                 # 1.75 s, the word late
    write_wav16(root / "01" / "0_01_0.wav", x, 8000)
    c = read_audiomnist(root)
    # documented handling: crop keeps the loudest second ...
    w, _ = load_waves(c, cache=False)
    assert w.shape == (6, 1, 8000)
    assert np.isclose(float((w[0, 0] > 0.25).sum()), 1000)   # the whole word survived the crop
    # ... or, on request, an error naming the file
    with pytest.raises(DataError, match=r"0_01_0.wav is 14000 samples long, longer than 8000"):
        load_waves(c, on_long="error", cache=False)


def test_preprocess_bad_arguments():
    with pytest.raises(ValueError, match="on_long='trim'"):
        preprocess(np.zeros(10), on_long="trim")
    with pytest.raises(ValueError, match="expected 1-D samples"):
        preprocess(np.zeros((2, 10)))


# ------------------------------------------------------------------------------------- tasks and folds

def test_sex_task_on_fsdd_is_refused(tmp_path):
    root = tmp_path / "f"; root.mkdir()
    for s in ("a", "b", "c"):
        write_wav16(root / f"1_{s}_0.wav", np.zeros(10), 8000)
    c = read_fsdd(root)
    for f in (lambda: c.labels("sex"), lambda: folds(c, "sex", 0), lambda: load_waves(c, "sex")):
        with pytest.raises(ValueError, match="FSDD publishes no sex labels"):
            f()
    assert folds(c, "digit", 0) == {"train": ["a"], "val": ["b"], "test": ["c"]}


def test_too_few_speakers_for_folds():
    c = Corpus("two", Path("."), [ClipInfo(Path("a.wav"), 0, "a", 0, 0), ClipInfo(Path("b.wav"), 0, "b", 0, 1)])
    with pytest.raises(DataError, match="has 2 speakers: speaker-independent folds need at least 3"):
        split(c, "digit", 0)
    with pytest.raises(DataError, match="has 1 women and 1 men"):
        split(c, "sex", 0)


def test_bad_fold_and_task(tmp_path):
    c = read_audiomnist(make_layout(tmp_path / "c"))
    with pytest.raises(ValueError, match=r"fold=3: expected an integer 0..2"):
        folds(c, "digit", 3)
    with pytest.raises(ValueError, match="unknown task 'age'"):
        folds(c, "age", 0)
    with pytest.raises(ValueError, match="unknown task 'age'"):
        load_waves(c, "age")
