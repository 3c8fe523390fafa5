"""Training throughput: the kit's trainer (`training.train`) against a plain hand-written PyTorch loop.

Both train the same model (same initial weights) on the same waves with the same recipe (AdamW,
one-cycle schedule, gradient clipping, representation encoding); runs are interleaved and repeated
so that load from other processes hits both alike. Ends with `kit/plain throughput = R`
(samples per second, ratio of totals over all repeats; above 1 means the kit is faster).

    python bench/train_speed.py                      # audionet-lite, 30 steps x 3 repeats
    python bench/train_speed.py --model alexnet-lite --steps 20 --repeats 5
"""
import argparse, os, time

os.environ.setdefault("AUDIO_XAI_KIT_PROGRESS", "0")
import torch
from torch import nn

from audio_xai_kit.core import get_device
from audio_xai_kit.features import get_representation
from audio_xai_kit.models import model_representation
from audio_xai_kit.training import train, make_recipe, make_model


def plain_loop(model, rep, waves, labels, steps, recipe, seed, device):
    "The textbook loop: shuffle, encode each batch, forward, backward, clip, step, schedule."
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    waves, labels = waves.to(device), labels.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=max(steps, 2), pct_start=0.25)
    n, bs, step = len(labels), recipe.batch_size, 0
    while step < steps:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - bs + 1, bs):
            idx = perm[i:i + bs].to(device)
            x = rep.encode(waves[idx])[0]
            loss = nn.functional.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            opt.step(); sched.step()
            step += 1
            if step == steps: break
    return step * bs


def load_data(kind, n, task, seed):
    if kind == "synth":
        from audio_xai_kit import data
        corpus = data.default_corpus()
        waves, labels = data.load_waves(data.split(corpus, task, 0)["train"], task, seed=seed)
        return waves[:n], labels[:n]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8000, generator=g) * 0.1, torch.randint(0, 10, (n,), generator=g)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="audionet-lite")
    ap.add_argument("--task", default="digit")
    ap.add_argument("--steps", type=int, default=30, help="training iterations per timed run")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved kit/plain pairs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n", type=int, default=None, help="training clips (default: steps x batch size, one epoch, so that the "
                    "kit's encode-once cache and the plain loop's per-batch encoding encode the same number of clips)")
    ap.add_argument("--epochs", type=int, default=1, help="with --n unset: use steps x batch / epochs clips, so each is seen this often")
    ap.add_argument("--compare-cache", action="store_true", help="also time the kit with cache=False (encoding every batch)")
    ap.add_argument("--data", choices=["synth", "random"], default="synth", help="the synthetic corpus's fold-0 train clips, or random waves")
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)

    device = get_device(args.device)
    waves, labels = load_data(args.data, args.n or max(args.batch_size, args.steps * args.batch_size // args.epochs), args.task, 0)
    rep = get_representation(model_representation(args.model))
    # the modern recipe's loop; its one-off extras (LSUV initialisation, a dropout override) and its
    # augmentation (random time shifts) are switched off so that both sides do exactly the same work per step
    recipe = make_recipe("modern", args.model, batch_size=args.batch_size, max_steps=args.steps, init=None,
                         dropout=None, shift_samples=0)
    n_classes = int(labels.max()) + 1 if args.task == "sex" else 10
    print(f"{args.model} on {rep.name}, {len(labels)} clips ({args.data}), batch {args.batch_size}, "
          f"{args.steps} steps x {args.repeats} repeats, device {device}, torch threads {torch.get_num_threads()}")

    def run_kit(cache="auto"):
        m = make_model(args.model, n_classes, seed=0)
        t0 = time.perf_counter()
        out = train(m, rep, (waves, labels), None, recipe, seed=0, device=device, cache=cache, show_progress=False)
        if device.type == "cuda": torch.cuda.synchronize()
        return out["steps"] * args.batch_size, time.perf_counter() - t0

    def run_plain():
        m = make_model(args.model, n_classes, seed=0)
        t0 = time.perf_counter()
        k = plain_loop(m, rep, waves, labels, args.steps, recipe, 0, device)
        if device.type == "cuda": torch.cuda.synchronize()
        return k, time.perf_counter() - t0

    run_kit(); run_plain()   # warm-up (allocator, oneDNN kernels), not timed
    tot = {"kit": [0, 0.0], "plain": [0, 0.0], "kit-nocache": [0, 0.0]}
    for r in range(args.repeats):
        order = [("kit", run_kit), ("plain", run_plain)]
        if args.compare_cache: order.append(("kit-nocache", lambda: run_kit(cache=False)))
        if r % 2: order.reverse()
        for name, fn in order:
            k, s = fn()
            tot[name][0] += k; tot[name][1] += s
            print(f"  repeat {r + 1} {name:11s}: {k / s:8.1f} samples/s ({s:.2f} s)")
    kit, plain = (tot[k][0] / tot[k][1] for k in ("kit", "plain"))
    print(f"kit: {kit:.1f} samples/s, plain: {plain:.1f} samples/s")
    if args.compare_cache:
        nc = tot["kit-nocache"][0] / tot["kit-nocache"][1]
        print(f"kit (encode once)/kit (encode every batch) throughput = {kit / nc:.3f} "
              f"({len(labels)} clips, each seen {args.steps * args.batch_size / len(labels):.1f} times)")
    print(f"kit/plain throughput = {kit / plain:.3f}")


if __name__ == "__main__":
    main()
