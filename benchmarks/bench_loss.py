"""Cost of the exact SCL-with-prototypes loss against the number of prototype copies n_w.

Measures forward + backward of ``ufm.scl_loss`` (copies as multiplicities) at several n_w, side by
side with the usual implementation that materializes the copies (``ufm.reference.concatenated_scl_loss``),
in one run on one machine.  Prints a Markdown table; the README quotes it.

    python benchmarks/bench_loss.py                 # n = 256, k = 10, d = 128, float32, CPU
    python benchmarks/bench_loss.py --device cuda   # same on a GPU
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from ufm import threads
from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.losses import scl_loss
from ufm.reference import concatenated_scl_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_call(fn, h: torch.Tensor, repeats: int, min_seconds: float = 0.5) -> float:
    """Median wall time (s) of loss + backward over ``repeats`` calls after a warm-up; at least min_seconds total."""
    x = h.clone().requires_grad_()
    fn(x).backward()  # warm-up
    _sync(h.device)
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        x.grad = None
        start = time.perf_counter()
        fn(x).backward()
        _sync(h.device)
        times.append(time.perf_counter() - start)
        if len(times) >= 10 * repeats:
            break
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: chosen for the size, ufm.threads)")
    parser.add_argument("--naive-max-nw", type=int, default=1000, help="skip the materialized loss above this n_w")
    args = parser.parse_args()

    if args.threads < 0:
        parser.error(f"--threads must be >= 0 (0: chosen for the size), got {args.threads}")
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    choice = threads.choose(args.threads, busy=threads.busy_elsewhere(), work=threads.loss_work(args.n, args.k, args.d))
    threads.apply(choice.threads)
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, args.k, (args.n,), generator=gen).to(device)
    h = F.normalize(torch.randn(args.n, args.d, generator=gen, dtype=dtype), dim=-1).to(device)
    w = prototypes_from_gram(etf_gram(args.k), args.d, seed=0, dtype=dtype, device=device)

    print(f"# scl_loss forward+backward, n={args.n}, k={args.k}, d={args.d}, tau={args.tau}, {args.dtype}")
    print(f"# device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or platform.machine()}),"
          f" torch {torch.__version__}, threads {torch.get_num_threads()} ({choice.source})")
    # all ufm timings first, then the materialized ones (whose GB-sized buffers disturb what follows)
    base = time_call(lambda x: scl_loss(x, y, tau=args.tau), h, args.repeats)
    n_ws = (1, 10, 100, 1000, 10000)
    ours = {n_w: time_call(lambda x: scl_loss(x, y, w, n_w, args.tau), h, args.repeats) for n_w in n_ws}
    naive = {
        n_w: time_call(lambda x: concatenated_scl_loss(x, y, w, n_w, args.tau), h, max(3, args.repeats // 5))
        for n_w in (100, 1000)
        if n_w <= args.naive_max_nw
    }
    print("\n| n_w | ufm (ms) | ufm / ufm at n_w=0 (no prototypes) | materialized (ms) | materialized / ufm |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| 0 | {base * 1e3:.2f} | 1.00 | | |")
    for n_w in n_ws:
        row = f"| {n_w} | {ours[n_w] * 1e3:.2f} | {ours[n_w] / base:.2f} |"
        row += f" {naive[n_w] * 1e3:.1f} | {naive[n_w] / ours[n_w]:.0f}x |" if n_w in naive else " | |"
        print(row)


if __name__ == "__main__":
    main()
