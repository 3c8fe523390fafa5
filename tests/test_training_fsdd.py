"""Real speech: train on one FSDD speaker, test on the other (the development copy has jackson and theo).
Skips without /work/shared/data/fsdd-dev (fails instead when AXK_REQUIRE_SHARED=1). Prints the held-out accuracy."""
import pytest

from audio_xai_kit import data
from audio_xai_kit import training as T


@pytest.mark.parametrize("model_name", ["audionet-lite", "alexnet-lite"])
def test_fsdd_held_out_speaker(fsdd_dev, data_home, model_name, capsys):
    corpus = data.read_fsdd(fsdd_dev)
    assert set(corpus.speakers) >= {"jackson", "theo"}
    split = T.holdout_split(corpus, ["theo"])
    assert split["test"].speakers == ["theo"] and split["train"].speakers == ["jackson"]
    t = T.fit(model_name, "digit", corpus, split=split, show_progress=False)
    m = T.evaluate(t)
    with capsys.disabled():
        print(f"\nFSDD {model_name}: trained on jackson ({len(split['train'])} clips), tested on theo ({m.n} clips): "
              f"digit accuracy {m.accuracy:.1%} (val {t.config['metrics']['val']['accuracy']:.1%}, "
              f"{t.config['train_seconds']:.0f} s)")
    assert m.n == len(split["test"]) and m.accuracy == t.config["metrics"]["test"]["accuracy"]
    # chance is 10%; on 500 clips, 15% is about four standard deviations above it
    assert m.accuracy > 0.15, f"no better than chance (10%) on a held-out real speaker: {m.accuracy:.1%}"
