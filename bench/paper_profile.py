"""The `paper` profile at small scale: the AudioMNIST paper's full networks and training recipes
on the embedded synthetic corpus, on a GPU when there is one (CPU otherwise, slowly).

    python bench/paper_profile.py                      # full paper recipes (AudioNet 50k, AlexNet 10k iterations)
    python bench/paper_profile.py --steps 500          # a short check of the same code path
    python bench/paper_profile.py --folds 0 1 --tasks digit sex

Prints parameter counts, training throughput (forward + backward + step, batch 100) and, per
model, task and fold, the test accuracy on held-out synthetic speakers and the training time.
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch

from audio_xai_kit import data, training
from audio_xai_kit.core import get_device
from audio_xai_kit.models import MODELS, build_model, n_parameters, time_training_step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="iterations per run (default: the paper recipe's)")
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--tasks", nargs="+", default=["digit", "sex"])
    ap.add_argument("--models", nargs="+", default=["audionet", "alexnet"])
    ap.add_argument("--root", default=None, help="folder of the synthetic corpus (default: a temporary one)")
    a = ap.parse_args()

    dev = get_device()
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU"
    print(f"device: {dev} ({name}), torch {torch.__version__}")
    print("\nmodel          parameters   train samples/s (batch 100)")
    for m in MODELS:
        net = build_model(m, 10)
        sps = time_training_step(net, batch_size=100, steps=10 if dev.type == "cuda" else 1, warmup=2, device=dev)
        print(f"{m:14s} {n_parameters(net):>10,d}   {sps:10.0f}")

    root = Path(a.root) if a.root else Path(tempfile.mkdtemp()) / "synth-digits"
    t0 = time.perf_counter()
    corpus = data.make_synth_corpus(root, verbose=False)
    print(f"\nsynthetic corpus: {len(corpus)} clips, {len(corpus.speakers)} speakers ({time.perf_counter() - t0:.1f} s)")

    print("\nmodel     task   fold  steps   test accuracy   seconds")
    for m in a.models:
        for task in a.tasks:
            for f in a.folds:
                kw = {} if a.steps is None else dict(max_steps=a.steps)
                t = training.fit(m, task, corpus, fold=f, profile="paper", show_progress=False, **kw)
                acc = t.config["metrics"]["test"]["accuracy"]
                print(f"{m:9s} {task:6s} {f:4d}  {t.config['steps']:6d}   {acc:12.1%}   {t.config['train_seconds']:7.1f}")


if __name__ == "__main__":
    main()
