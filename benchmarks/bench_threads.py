"""CPU threads: the default choice (:mod:`ufm.threads`) against one thread and all usable cores.

Three workloads, each on a quiet machine and beside one busy process (a Python busy loop this script starts and
stops):

- ``simulate``: the default ``ufm simulate`` problem (its simulation time, ``SimResult.elapsed_s``; ``--sim-epochs``
  of the default 4000 epochs, to keep it short);
- ``loss``: ``ufm.nn.PrototypeSupConLoss`` forward + backward on a batch of ``--batch`` embeddings (median time);
- ``epoch``: one training epoch of the cpu-fig1 recipe (narrow ResNet-18, SCL with 100 prototype copies), on
  Fashion-MNIST when ``--data-root`` holds it, else on synthetic CIFAR-format images (its first epoch, warm-up
  included, the same in every column).

The default is what :func:`ufm.threads.choose` picks for the workload's size with the load read just before
(``OMP_NUM_THREADS``, ``SLURM_CPUS_PER_TASK`` and ``UFM_THREADS`` are cleared for the run).  Prints a Markdown table
with the ratio default / best per row (docs/performance.md, section "Threads").

    python benchmarks/bench_threads.py                       # about 3-5 minutes on 2 cores
    python benchmarks/bench_threads.py --quick --json t.json # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ufm import threads

CONDITIONS = ("quiet", "beside one busy process")
WORKLOADS = ("simulate", "loss", "epoch")


def busy_process() -> subprocess.Popen:
    """A Python busy loop on one core (the caller stops it)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def time_simulate(epochs: int) -> tuple[Callable[[], float], float]:
    """(a timer of the default simulation's seconds, its work per step)."""
    from ufm.kinds.simulate import work
    from ufm.simulate import SimConfig, simulate

    cfg = SimConfig(epochs=epochs, device="cpu")
    return (lambda: simulate(cfg).elapsed_s), work(cfg)


def time_loss(batch: int, d: int = 128, k: int = 10, min_s: float = 1.0) -> tuple[Callable[[], float], float]:
    """(a timer of the loss's median forward + backward seconds, its work per step)."""
    from ufm.geometry import etf_gram, prototypes_from_gram
    from ufm.nn import PrototypeSupConLoss

    gen = torch.Generator().manual_seed(0)
    loss = PrototypeSupConLoss(prototypes_from_gram(etf_gram(k), d, seed=0), n_w=100.0, temperature=0.1)
    h = torch.nn.functional.normalize(torch.randn(batch, d, generator=gen), dim=-1)
    y = torch.randint(0, k, (batch,), generator=gen)

    def run() -> float:
        x = h.clone().requires_grad_()
        loss(x, y).backward()  # warm-up
        times: list[float] = []
        while sum(times) < min_s or len(times) < 5:
            x.grad = None
            start = time.perf_counter()
            loss(x, y).backward()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return run, threads.loss_work(batch, k, d)


def time_epoch(data_root: str | None, n_major: int, width: int, batch_size: int = 128
               ) -> tuple[Callable[[], float], None]:
    """(a timer of one training epoch's seconds, no size cap: training a network is a large problem)."""
    from ufm.deep.config import PRESETS, TrainConfig
    from ufm.deep.synthetic import write_synthetic_cifar10
    from ufm.deep.train import train
    from ufm.runio import read_jsonl

    recipe = {**PRESETS["cpu-fig1"]["scl-nw100"], "n_major": n_major, "width": width, "epochs": 1,
              "batch_size": batch_size,
              "eval_every": 10**6, "checkpoint_every": 10**6, "test_per_class": 0, "device": "cpu"}
    tmp = tempfile.mkdtemp(prefix="bench-threads-")
    if data_root is None or not Path(data_root).is_dir():
        write_synthetic_cifar10(tmp, n_major, 1)
        recipe.update(dataset="cifar10", data_root=tmp)
    else:
        recipe.update(data_root=data_root)
    counter = iter(range(10**6))

    def run() -> float:
        folder = Path(tmp) / f"run{next(counter)}"
        train(TrainConfig(**recipe), folder)
        return read_jsonl(folder / "metrics.jsonl")[-1]["seconds"]

    return run, None


def measure(run: Callable[[], float], n: int) -> float:
    threads.apply(n)
    return run()


def row(name: str, condition: str, run: Callable[[], float], work: float | None, cores: int) -> dict:
    """The default choice, 1 thread and all cores on one workload (a count measured once when two coincide)."""
    busy = threads.busy_elsewhere(samples=5)
    choice = threads.choose(environ={}, cores=cores, busy=busy, work=work)
    times: dict[int, float] = {}
    for n in dict.fromkeys([1, cores, choice.threads]):
        times[n] = measure(run, n)
    best = min(times[1], times[cores])
    return {"workload": name, "condition": condition, "busy_cores_seen": busy, "default_threads": choice.threads,
            "default_source": choice.source, "default_s": times[choice.threads], "one_thread_s": times[1],
            "all_cores_s": times[cores], "cores": cores, "default_over_best": times[choice.threads] / best}


def header(cores: int) -> str:
    return (f"| work | condition | default (threads, why) | default (s) | 1 thread (s) | {cores} threads (s) | "
            "default / best |\n|---|---|---|---:|---:|---:|---:|")


def line(r: dict) -> str:
    return (f"| {r['workload']} | {r['condition']} (busy cores seen: {r['busy_cores_seen']:g}) | "
            f"{r['default_threads']} ({r['default_source']}) | {r['default_s']:.4g} | {r['one_thread_s']:.4g} "
            f"| {r['all_cores_s']:.4g} | {r['default_over_best']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim-epochs", type=int, default=1000, help="epochs of the default simulation (of 4000)")
    parser.add_argument("--batch", type=int, default=256, help="loss batch size")
    parser.add_argument("--data-root", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST (IDX)")
    parser.add_argument("--n-major", type=int, default=200, help="training images per majority class")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 width")
    parser.add_argument("--only", action="append", choices=WORKLOADS, help="this workload only (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.sim_epochs, args.batch, args.n_major, args.width, args.data_root = 20, 32, 20, 2, None
    for var in (threads.ENV, "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        os.environ.pop(var, None)
    cores = threads.usable_cores()
    only = args.only or WORKLOADS
    workloads = {}
    if "simulate" in only:
        workloads["simulate (default problem, s of simulation)"] = time_simulate(args.sim_epochs)
    if "loss" in only:
        workloads[f"loss (PrototypeSupConLoss, batch {args.batch}, fwd+bwd median s)"] = time_loss(
            args.batch, min_s=0.05 if args.quick else 1.0)
    if "epoch" in only:
        workloads[f"epoch (cpu-fig1 recipe, width {args.width}, s)"] = time_epoch(
            args.data_root, args.n_major, args.width, 16 if args.quick else 128)
    print(f"# {platform.processor() or platform.machine()}, {cores} usable cores, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, 1-minute load average at the start: {os.getloadavg()[0]:.2f}")
    print(header(cores), flush=True)
    rows = []
    for condition in CONDITIONS:
        neighbour = busy_process() if condition != "quiet" else None
        try:
            if neighbour is not None:
                time.sleep(0.5)  # running before the load is read
            for name, (run, work) in workloads.items():
                rows.append(row(name, condition, run, work, cores))
                print(line(rows[-1]), flush=True)
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    print(f"# 1-minute load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
