"""LRP speed on AudioNet (the paper's waveform model) at its true input size, CPU.

Times, in one run with interleaved repetitions (medians): a plain input gradient, the kit's
epsilon rule on every layer, the kit's default preset composite, and captum's epsilon-LRP.
Prints the ratios to the gradient. No timed asserts.

    python bench/lrp_speed.py [--batch 16] [--reps 7] [--model audionet]
"""
import argparse, statistics, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

from audio_xai_kit import lrp
from audio_xai_kit.models import build_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--model", default="audionet")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    model = build_model(a.model, 10).eval()
    for p in model.parameters(): p.requires_grad_(False)   # as at explanation time: gradients w.r.t. the input only
    x = torch.randn(a.batch, 1, 8000, generator=torch.Generator().manual_seed(0))
    target = torch.arange(a.batch) % 10

    def gradient():
        xg = x.clone().requires_grad_(True)
        out = model(xg)
        g, = torch.autograd.grad(out.gather(1, target[:, None]).sum(), xg)
        return g

    def kit_epsilon(): return lrp.attribute(model, x, target, composite="epsilon")[0]
    def kit_preset(): return lrp.attribute(model, x, target, composite=lrp.DEFAULT_COMPOSITE)[0]
    def captum_epsilon(): return lrp.captum_lrp(model, x, target, epsilon=1e-6)

    fns = {"gradient": gradient, "kit-epsilon": kit_epsilon, "kit-preset": kit_preset, "captum-epsilon": captum_epsilon}
    times = {k: [] for k in fns}
    for f in fns.values(): f()          # warm-up
    for _ in range(a.reps):             # interleaved repetitions
        for k, f in fns.items():
            t0 = time.perf_counter(); f(); times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{a.model}, batch {a.batch} x (1, 8000), CPU, {torch.get_num_threads()} threads, {a.reps} interleaved reps, "
          f"preset {lrp.DEFAULT_COMPOSITE}")
    for k, v in med.items(): print(f"  {k:16s} median {1000 * v:8.1f} ms  (min {1000 * min(times[k]):.1f})")
    for k in ("kit-epsilon", "kit-preset", "captum-epsilon"):
        print(f"{k}/gradient = {med[k] / med['gradient']:.2f}")


if __name__ == "__main__":
    main()
