"""Speed of the training loop (ResNet-18 + SCL with prototypes): seconds per epoch, images per second,
FLOPs per epoch and the fraction of the device's measured matmul peak it reaches.

The paper's shape by default: ResNet-18 at width 64 (512-d features, 128-d linear head), batches of 128
images with two views each, a STEP R = 10 subset of CIFAR-10 (5 x 5000 + 5 x 500 = 27,500 images), SCL
with 100 copies of each ETF prototype.  The data are synthetic images in CIFAR's python format (speed does
not depend on the pixels); the loop timed is ``ufm.deep.train.train`` itself, one run of ``--epochs``
epochs, of which the last is reported (the first includes warm-up and compilation).  On CUDA the loop runs
in bf16 autocast with channels-last tensors; ``--compile`` adds torch.compile.

    python benchmarks/bench_train.py --n-major 40 --epochs 2              # CPU, CI-sized (a few steps)
    python benchmarks/bench_train.py --device cuda --compile              # one GPU, the paper's shape
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ufm.deep.model import ResNet18
from ufm.deep.synthetic import write_synthetic_cifar10
from ufm.deep.train import TrainConfig, train
from ufm.runio import read_jsonl


def step_flops(width: int, embed_dim: int, views: int) -> int:
    """FLOPs of one training step's forward + backward of the network on ``views`` 32 x 32 RGB images."""
    model = ResNet18(width, "linear", embed_dim, 3)
    x = torch.randn(views, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops()


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int) -> float:
    """Measured FLOP/s of a large square matmul on ``device`` (best of a few)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-major", type=int, default=5000, help="images per majority class (minority: / 10)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-w", type=float, default=100.0)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_cifar10(tmp, args.n_major, 10)
        cfg = TrainConfig(dataset="cifar10", data_root=tmp, n_major=args.n_major, width=args.width,
                          embed_dim=args.embed_dim, batch_size=args.batch_size, epochs=args.epochs, n_w=args.n_w,
                          eval_every=10**6, checkpoint_every=10**6, device=args.device, compile=args.compile)
        train(cfg, Path(tmp) / "run")
        history = read_jsonl(Path(tmp) / "run" / "metrics.jsonl")
    last = history[-1]
    images = round(last["images_per_s"] * last["seconds"])  # images per epoch (a count)
    flops = step_flops(args.width, args.embed_dim, 2) / 2 * 2 * images  # per view, two views per image
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = matmul_peak(device, dtype, 8192 if device.type == "cuda" else 2048)
    result = {
        "device": f"{device} ({name})", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "width": args.width, "batch_size": args.batch_size, "images_per_epoch": int(images),
        "compile": args.compile, "epochs_run": len(history),
        "seconds_per_epoch": last["seconds"], "images_per_s": last["images_per_s"],
        "first_epoch_seconds": history[0]["seconds"], "tflops_per_epoch": flops / 1e12,
        "achieved_tflops_per_s": flops / last["seconds"] / 1e12, "matmul_peak_tflops_per_s": peak / 1e12,
        "fraction_of_peak": flops / last["seconds"] / peak, "seconds_for_350_epochs": 350 * last["seconds"],
    }
    print(f"# training loop, ResNet-18 width {args.width}, batch {args.batch_size} x 2 views, n_w {args.n_w:g}; "
          f"{result['device']}, torch {torch.__version__}, {result['threads']} CPU threads")
    print("| images/epoch | s/epoch | images/s | TFLOP/epoch | TFLOP/s | matmul peak TFLOP/s "
          f"({'bf16' if device.type == 'cuda' else 'fp32'}) | % of peak | 350 epochs (min) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {int(images)} | {last['seconds']:.3g} | {last['images_per_s']:.0f} | {result['tflops_per_epoch']:.3g} | "
          f"{result['achieved_tflops_per_s']:.3g} | {result['matmul_peak_tflops_per_s']:.3g} | "
          f"{100 * result['fraction_of_peak']:.1f} | {350 * last['seconds'] / 60:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
