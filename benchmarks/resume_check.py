"""A training run killed after a checkpoint and resumed in a new process ends with the same weights as an
uninterrupted one (the paper-fig1 SCL n_w = 100 run, a few epochs, synthetic CIFAR-format data).

Three processes: the uninterrupted run; a run that dies abruptly (``os._exit``) right after its checkpoint
at ``--kill-after``; its resumption.  On CUDA, deterministic algorithms are switched on (cuBLAS workspace
config, no cuDNN autotuning) so that bitwise equality is a fair test; the maximum weight difference is
reported either way.

    python benchmarks/resume_check.py --device cuda --epochs 3
    python benchmarks/resume_check.py --device cpu --epochs 2 --kill-after 1 --n-major 20 --width 4   # dry run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402


def child(args: argparse.Namespace) -> None:
    from ufm.deep.train import preset, resumed_config, train

    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    cfg = preset("paper-fig1", {"data_root": args.data, "n_major": args.n_major, "width": args.width,
                                "epochs": args.epochs, "device": args.device, "eval_every": args.epochs,
                                "checkpoint_every": 1})["scl-nw100"]
    if args.role == "straight":
        train(cfg, args.folder)
    elif args.role == "killed":
        train(cfg, args.folder, stop_after=args.kill_after)
        os._exit(0)  # no clean-up: as if the process were killed right after the checkpoint
    else:
        train(resumed_config(cfg, {}), args.folder, resume=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--kill-after", type=int, default=2)
    parser.add_argument("--n-major", type=int, default=5000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return child(args)
    from ufm.deep.synthetic import write_synthetic_cifar10
    from ufm.deep.train import load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic_cifar10(Path(tmp) / "data", args.n_major, 100)
        common = [sys.executable, __file__, "--device", args.device, "--epochs", str(args.epochs), "--kill-after",
                  str(args.kill_after), "--n-major", str(args.n_major), "--width", str(args.width), "--data", str(data)]
        for role, folder in (("straight", "a"), ("killed", "b"), ("resumed", "b")):
            subprocess.run([*common, "--role", role, "--folder", str(Path(tmp) / folder)], check=True)
        a, b = (load_checkpoint(Path(tmp) / f / "checkpoint.pt") for f in ("a", "b"))
    diffs = {k: float((a["model"][k].double() - b["model"][k].double()).abs().max()) for k in a["model"]
             if a["model"][k].is_floating_point()}
    result = {"device": args.device, "epochs": [a["epoch"], b["epoch"]], "killed_after": args.kill_after,
              "bitwise_equal": all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]),
              "max_weight_difference": max(diffs.values())}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if not result["bitwise_equal"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
