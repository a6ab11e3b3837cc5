"""Speed of the UFM simulator's epoch: batched vs a per-batch loop, stacked vs sequential runs, roofline.

All numbers are measured side by side in one run, on one machine, for the gradient of one epoch's
batch-set loss (SCL with ETF prototypes, n_w = 100, tau = 0.1, float32): loss + backward, the work that
differs between the approaches (the optimizer step and retraction are the same O(N d) for both).

1. batched (``ufm.simulate.batchset_loss``: every batch of the epoch in one call) vs a Python loop
   over the same batches calling ``scl_loss`` per batch, at n = 16, 32, 128 (N = 5000, d = 64, k = 10);
2. 16 stacked runs (one call, leading dim 16) vs the same 16 runs one after another (N = 1024, n = 32):
   the epoch gradient alone, and whole ``simulate`` calls (batch draws, optimizer, retraction, metrics);
3. the batched epoch time against a roofline: the matmul FLOPs of the epoch at the matmul rate measured
   here on the same shapes, plus the exp count at the exp rate measured here;
4. a large full-batch point (``ufm simulate --k 10 --n-major 500 --ratio 100 --tau 1 --batching full
   --dtype float64``: N = 2525, two stacked runs): user, system and wall seconds of whole ``simulate``
   calls with the row-block loss (nothing N x N allocated per step) against the same calls forced onto
   the full-logits path, which allocates and frees several N x N temporaries per step (the C allocator
   maps and unmaps each one: kernel time).  Same results to rounding.

    python benchmarks/bench_ufm.py                  # CPU
    python benchmarks/bench_ufm.py --device cuda    # GPU
    python benchmarks/bench_ufm.py --only large-full --epochs 50
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F

from ufm.batching import Batches, epoch_batches
from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.imbalance import labels_from_counts, step_counts
from ufm.losses import scl_loss
from ufm.simulate import SimConfig, batchset_loss, build_problem, simulate

K, D, N_W, TAU = 10, 64, 100.0, 0.1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], None], device: torch.device, min_time: float = 1.0, min_reps: int = 3) -> float:
    """Median seconds per call after one warm-up call; repeats until min_time and min_reps are reached."""
    fn()
    sync(device)
    times: list[float] = []
    while len(times) < min_reps or sum(times) < min_time:
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_pair(
    a: Callable[[], None], b: Callable[[], None], device: torch.device, rounds: int = 3, min_time: float = 0.5
) -> tuple[float, float]:
    """Steady-state seconds per call of a and b: blocks of back-to-back calls (as in a training loop),
    alternating a-block, b-block over several rounds so that drifts in machine load hit both; the best
    block median of each."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(a, device, min_time))
        tb.append(timed(b, device, min_time))
    return min(ta), min(tb)


def setup(n_samples: int, runs: int, batch_size: int, device: torch.device, dtype: torch.dtype):
    per_class = n_samples // K
    labels = labels_from_counts(step_counts(K, per_class * 2 // 2, 1.0))  # balanced, N = K * per_class
    gens = [torch.Generator().manual_seed(s) for s in range(runs)]
    h = torch.stack([F.normalize(torch.randn(len(labels), D, generator=g), dim=-1) for g in gens])
    batch_sets = [epoch_batches(labels, batch_size, "shuffle", g, K) for g in gens]
    batches = Batches(torch.stack([b.index for b in batch_sets]), torch.stack([b.mask for b in batch_sets]))
    w = prototypes_from_gram(etf_gram(K), D, seed=0, dtype=dtype, device=device)
    h = h.to(device=device, dtype=dtype).requires_grad_()
    n_w = torch.full((runs,), N_W, dtype=dtype, device=device)
    tau = torch.full((runs,), TAU, dtype=dtype, device=device)
    return h, labels.to(device), batches.to(device), w, n_w, tau


def batched_epoch(h, labels, batches, w, n_w, tau) -> Callable[[], None]:
    def run() -> None:
        h.grad = None
        batchset_loss(h, labels, batches, w, n_w, tau).sum().backward()

    return run


def looped_epoch(h, labels, batches, w, n_w, tau) -> Callable[[], None]:
    """The usual training-loop shape: one scl_loss call and backward per batch, gradients accumulated."""
    rows = [
        (s, batches.index[s, b][batches.mask[s, b]])
        for s in range(batches.index.shape[0])
        for b in range(batches.index.shape[1])
    ]

    def run() -> None:
        h.grad = None
        for s, idx in rows:
            scl_loss(h[s, idx], labels[idx], w, N_W, TAU, validate=False).backward()

    return run


def roofline(batches: Batches, runs: int, device: torch.device, dtype: torch.dtype) -> tuple[float, float, float]:
    """(estimated seconds, matmul FLOP/s, exp/s) for one batched epoch's loss + backward.

    Matmul FLOPs per batch of R = n + k rows: the Gram z z^T, 2 R^2 d, and its backward ((g + g^T) z),
    2 R^2 d; everything else is O(R d) or O(R^2) elementwise.  Exps: R^2 per batch.
    """
    num = batches.index.shape[1] * runs
    r = batches.index.shape[2] + K
    flops = num * 4 * r * r * D
    exps = num * r * r
    a = torch.randn(num, r, D, device=device, dtype=dtype)
    mm = timed(lambda: torch.bmm(a, a.transpose(1, 2)), device, 0.5)
    e = torch.randn(num, r, r, device=device, dtype=dtype)
    ex = timed(lambda: torch.exp(e), device, 0.5)
    mm_rate = 2 * num * r * r * D / mm
    exp_rate = num * r * r / ex
    return flops / mm_rate + exps / exp_rate, mm_rate, exp_rate


def _cpu_times() -> tuple[float, float, float]:
    """(user, system, wall) seconds so far for this process (threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, time.perf_counter()


def large_full_batch(device: torch.device, epochs: int, rounds: int = 2) -> None:
    """Section 4: the large full-batch point, row blocks vs the full-logits path, alternated ``rounds`` times."""
    import numpy as np

    import ufm.losses

    cfg = SimConfig(k=10, n_major=500, ratio=100, tau=(1.0,), batching="full", dtype="float64", epochs=epochs,
                    log_every=epochs, device=str(device))
    real = ufm.losses.chunked
    paths = {  # forced either way (on CPU the default for this shape is row blocks; on CUDA, full logits)
        "row blocks": lambda stack, rows, itemsize, device: True,
        "full logits (N x N per step)": lambda stack, rows, itemsize, device: False,
    }
    times = {name: [] for name in paths}
    results = {}
    for _ in range(rounds):
        for name, rule in paths.items():
            ufm.losses.chunked = rule
            try:
                sync(device)
                before = _cpu_times()
                results[name] = simulate(cfg)
                sync(device)
                after = _cpu_times()
            finally:
                ufm.losses.chunked = real
            times[name].append(tuple(b - a for a, b in zip(before, after)))
    n = len(build_problem(cfg).labels)
    print(f"\n# large full-batch point: N = {n}, k = 10, {len(cfg.runs)} stacked runs, float64, {epochs} epochs "
          f"per call, best of {rounds} alternated calls (by wall time)")
    print("| path | user (s) | system (s) | wall (s) | system / user |")
    print("|---|---:|---:|---:|---:|")
    best = {name: min(t, key=lambda v: v[2]) for name, t in times.items()}
    for name, (user, system, wall) in best.items():
        print(f"| {name} | {user:.2f} | {system:.2f} | {wall:.2f} | {system / max(user, 1e-9):.2f} |")
    (a, b) = best.values()
    diff = np.abs(results["row blocks"].embeddings - results["full logits (N x N per step)"].embeddings).max()
    print(f"| full / row blocks | {b[0] / a[0]:.2f}x | {b[1] / max(a[1], 1e-9):.1f}x | {b[2] / a[2]:.2f}x | |")
    print(f"# largest difference between the final embeddings of the two paths: {diff:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--only", choices=["large-full"], help="run only this section")
    parser.add_argument("--epochs", type=int, default=50, help="epochs per call in the large full-batch section")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    if args.only == "large-full":
        print(f"# device: {device} ({name}), torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
        large_full_batch(device, args.epochs)
        return
    print(f"# UFM epoch gradient (loss + backward), SCL + ETF prototypes n_w={N_W:g}, tau={TAU}, {args.dtype}")
    print(f"# device: {device} ({name}), torch {torch.__version__}, CPU threads {torch.get_num_threads()}\n")

    print("| N | n | batches | batched (ms) | per-batch loop (ms) | loop / batched | roofline (ms) | batched at % of roofline |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (16, 32, 128):
        h, labels, batches, w, n_w, tau = setup(5000, 1, n, device, dtype)
        t_batched, t_loop = timed_pair(batched_epoch(h, labels, batches, w, n_w, tau),
                                       looped_epoch(h, labels, batches, w, n_w, tau), device)
        t_roof, mm_rate, exp_rate = roofline(batches, 1, device, dtype)
        print(f"| 5000 | {n} | {batches.index.shape[1]} | {t_batched * 1e3:.1f} | {t_loop * 1e3:.1f} | "
              f"{t_loop / t_batched:.1f}x | {t_roof * 1e3:.1f} | {100 * t_roof / t_batched:.0f}% |")
        if n == 128:
            rates = f"matmul {mm_rate / 1e9:.1f} GFLOP/s, exp {exp_rate / 1e9:.2f} G/s"

    runs = 16
    h, labels, batches, w, n_w, tau = setup(1024, runs, 32, device, dtype)
    stacked = batched_epoch(h, labels, batches, w, n_w, tau)
    singles = [
        batched_epoch(h[s : s + 1].detach().clone().requires_grad_(), labels,
                      Batches(batches.index[s : s + 1], batches.mask[s : s + 1]), w, n_w[:1], tau[:1])
        for s in range(runs)
    ]
    t_stacked, t_seq = timed_pair(stacked, lambda: [f() for f in singles], device)
    print("\n| runs | N | n | stacked (ms) | sequential (ms) | sequential / stacked |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {runs} | 1024 | 32 | {t_stacked * 1e3:.1f} | {t_seq * 1e3:.1f} | {t_seq / t_stacked:.1f}x |")
    cfg = SimConfig(k=K, profile="balanced", n_major=1024 // K, d=D, n_w=(N_W,), tau=(TAU,), batch_size=32,
                    epochs=50, log_every=50, device=str(device), dtype=args.dtype)
    stacked_cfg = replace(cfg, seeds=tuple(range(runs)))
    t_sim_stacked, t_sim_seq = timed_pair(lambda: simulate(stacked_cfg),
                                          lambda: [simulate(replace(cfg, seeds=(s,))) for s in range(runs)], device, 2, 0.0)
    print(f"| {runs} (whole `simulate`, 50 epochs) | {len(build_problem(cfg).labels)} | 32 | {t_sim_stacked * 1e3:.0f} | "
          f"{t_sim_seq * 1e3:.0f} | {t_sim_seq / t_sim_stacked:.1f}x |")
    print(f"\n# rates measured for the roofline at n = 128: {rates}")
    large_full_batch(device, args.epochs)


if __name__ == "__main__":
    main()
