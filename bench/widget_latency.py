"""How long the explorer takes to react to a slider, in the kernel (no browser).

Builds `widgets.explore(...)` for each lite model, then drives its widgets exactly as a mouse would
(setting a slider's `.value` runs the same observer callbacks, synchronously) and times each change:
the gate sliders (top-k %, smoothing, mask/weight) that only re-mask a cached relevance, and the
explanation sliders (epsilon, gamma) that recompute it (first visit) or hit the cache (revisit).
Includes producing the WAV bytes of the three players, re-classifying heatmap and complement, and
serialising the figure update. Prints per-slider medians, the recompute/re-mask ratio, and ends with
`median slider latency ms = X` (median over every slider change of both models).

    python bench/widget_latency.py                  # trained weights via training.pretrained when available
    python bench/widget_latency.py --weights random # random weights: same compute, no training needed
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("AUDIO_XAI_KIT_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from audio_xai_kit import data, models, widgets


def _model(name: str, weights: str, task: str):
    if weights == "pretrained":
        from audio_xai_kit import training
        return training.pretrained(name, task)
    return models.build_model(name, 10 if task == "digit" else 2, seed=0)


def _time_set(w, value) -> float:
    t0 = time.perf_counter(); w.value = value
    return 1000 * (time.perf_counter() - t0)


def bench_model(name: str, weights: str, task: str, corpus) -> dict:
    t0 = time.perf_counter()
    ex = widgets.explore(_model(name, weights, task), corpus)
    build_s = time.perf_counter() - t0
    _time_set(ex.top_k, 30); _time_set(ex.top_k, 25)   # warm-up
    t = {}
    t["top-k"] = [_time_set(ex.top_k, v) for v in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 5, 15)]
    t["smooth ms"] = [_time_set(ex.smooth_ms, v) for v in (0.0, 2.0, 8.0, 15.0, 5.0)]
    t["gate mode"] = [_time_set(ex.mode, v) for v in ("weight", "mask", "weight", "mask")]
    lrp = ex.method.value == "lrp"
    eps_new = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    t["epsilon (new)"] = [_time_set(ex.epsilon, v) for v in eps_new]
    t["epsilon (cached)"] = [_time_set(ex.epsilon, v) for v in (0.1, 1.0, 0.03, 0.3)]
    t["gamma (new)"] = [_time_set(ex.gamma, v) for v in (0.05, 0.1, 0.5, 1.0)]
    t["clip (take)"] = [_time_set(ex.take, v) for v in list(ex.take.options)[1:4]]
    return dict(name=name, method=ex.method.value, composite=ex.composite.value, lrp=lrp, build_s=build_s, t=t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", choices=["auto", "pretrained", "random"], default="auto")
    p.add_argument("--task", choices=["digit", "sex"], default="digit")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    weights = a.weights
    if weights == "auto":
        try:
            from audio_xai_kit import training  # noqa: F401
            weights = "pretrained"
        except ImportError:
            weights = "random"
    corpus = data.default_corpus()
    print(f"widget latency: corpus {corpus.name} ({len(corpus)} clips), weights {weights}, task {a.task}, "
          f"torch {torch.__version__} on {torch.get_num_threads()} threads")
    sliders = []
    for name in ("audionet-lite", "alexnet-lite"):
        r = bench_model(name, weights, a.task, corpus)
        print(f"\n{name}: method {r['method']}" + (f", composite {r['composite']}" if r["lrp"] else "")
              + f"; explorer built in {r['build_s']:.2f} s")
        print(f"  {'change':18s} {'n':>3s} {'median ms':>10s} {'max ms':>8s}")
        for k, v in r["t"].items():
            print(f"  {k:18s} {len(v):3d} {statistics.median(v):10.1f} {max(v):8.1f}")
            if not k.startswith("clip"): sliders += v
        remask = statistics.median(r["t"]["top-k"])
        recompute = statistics.median(r["t"]["epsilon (new)"])
        cached = statistics.median(r["t"]["epsilon (cached)"])
        print(f"  ratio recompute / re-mask = {recompute / remask:.2f}; cached revisit / re-mask = {cached / remask:.2f}")
    print(f"\nslider changes measured: {len(sliders)}; share under 100 ms: {np.mean(np.array(sliders) < 100):.0%}")
    print(f"median slider latency ms = {statistics.median(sliders):.1f}")


if __name__ == "__main__":
    main()
