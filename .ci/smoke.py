"""Smoke test of an installed ufm: every command of `ufm --help` at a tiny size, run from outside the source tree.

    python smoke.py            # with the environment's python; run from a folder that is not the checkout

Checks that `ufm` is imported from this environment (not from a checkout on sys.path), that every command the
installed app registers has an entry here (a new command without one fails), and that each entry exits 0.
Self-contained: it imports nothing from the checkout (the tiny IDX data set is written here).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np


def write_idx(root: Path, k: int = 3, per_class: int = 8, size: int = 8) -> None:
    """Fashion-MNIST-format IDX files (the real format): k classes of noise, each with its own bright band."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        labels = np.repeat(np.arange(k), per_class)
        images = rng.integers(0, 60, (len(labels), size, size))
        for i, c in enumerate(labels):
            images[i, 2 * c: 2 * c + 3] += 150
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, len(images), size, size) + images.astype(np.uint8).tobytes())
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels))
                                                            + labels.astype(np.uint8).tobytes())


def commands(t: Path) -> dict[str, list[list[str]]]:
    """Tiny invocations per command, in an order where later ones read earlier run folders."""
    tiny_sim = ["--k", "3", "--n-major", "4", "--d", "4", "--batch-size", "4", "--epochs", "5"]
    tiny_train = ["--dataset", "idx", "--data-root", str(t / "idx"), "--profile", "step", "--ratio", "2",
                  "--n-major", "8", "--test-per-class", "8", "--width", "4", "--embed-dim", "8", "--batch-size", "8",
                  "--epochs", "1", "--eval-every", "1", "--device", "cpu"]
    return {
        "simulate": [["simulate", *tiny_sim, "--ratio", "2", "--n-w", "0", "--n-w", "10", "--out", str(t / "sim")]],
        "sweep": [["sweep", *tiny_sim, "--grid", "ratio=1,2", "--n-w", "10", "--out", str(t / "sweep")]],
        "gather": [["gather", str(t / "sweep")]],
        "solve": [["solve", "--counts", "4,4,2", "--tau", "0.5", "--n-w", "5", "--out", str(t / "solve")]],
        "solve-sweep": [["solve-sweep", "--k", "3", "--n-major", "4", "--batching", "full", "--grid", "ratio=1,2",
                         "--out", str(t / "solve-sweep")]],
        "agree": [["agree", "--k", "3", "--n-major", "4", "--ratio", "2", "--tau", "0.5"]],
        "verify-prop1": [["verify-prop1", "--epochs", "5", "--out", str(t / "prop1")]],
        "figures": [["figures", "--list"], ["figures", "--quick", "--name", "ufm-fig1-heatmaps", "--out",
                                            str(t / "figs")]],
        "train": [["train", *tiny_train, "--n-w", "10", "--out", str(t / "train")]],
        "deep-figures": [["deep-figures", str(t / "train"), "--out", str(t / "deep-figs")]],
        "check": [["check", "--k", "3", "--n", "6", "--d", "4", "--n-w", "5"]],
        "copies": [["copies", "--counts", "6,6,2", "--tau", "0.5"]],
        "design-prototypes": [["design-prototypes", "--counts", "4,4,2,2", "--tau", "0.5", "--max-evals", "3"]],
        "collapse-map": [["collapse-map", "--profile", "step", "--ratio", "2", "--k", "3", "--n-major", "4",
                          "--tau", "0.5", "--n-w", "0", "--out", str(t / "collapse")]],
        "study": [["study", "--setting", "fashion-mnist", "--data-root", str(t / "idx"), "--seeds", "1", "--arms",
                   "none,etf,minority-g1", "--summaries", str(t / "study-rec"), "--out", str(t / "study"),
                   *[x for kv in ("epochs=1", "n_major=8", "ratio=2", "test_per_class=8", "batch_size=8", "width=4",
                                  "embed_dim=8", "eval_every=1", "device=cpu") for x in ("--set", kv)]]],
        "study-report": [["study-report", "--summaries", str(t / "study-rec"), "--out", str(t / "study-report")]],
        "map": [["map", "--k", "3", "--n-major", "4", "--tau", "0.5", "--ratio", "1", "--ratio", "2", "--n-w", "0",
                 "--n-w", "10", "--out", str(t / "map")]],
    }


def main() -> int:
    import ufm
    import typer.main
    from ufm.cli.main import app

    prefix = Path(sys.prefix).resolve()
    where = Path(ufm.__file__).resolve()
    if prefix not in where.parents or Path(sysconfig.get_paths()["purelib"]).resolve() not in where.parents:
        print(f"FAIL: ufm imported from {where}, not from this environment's site-packages under {prefix}")
        return 1
    print(f"ufm {ufm.__version__} from {where}")
    exe = Path(sys.executable).parent / "ufm"
    registered = sorted(typer.main.get_command(app).commands)
    failed = []
    with tempfile.TemporaryDirectory(prefix="ufm-smoke-") as tmp:
        t = Path(tmp)
        write_idx(t / "idx")
        table = commands(t)
        missing = sorted(set(registered) - set(table))
        if missing:
            print(f"FAIL: no smoke entry for {', '.join(missing)}: add one to .ci/smoke.py")
            return 1
        stale = sorted(set(table) - set(registered))
        if stale:
            print(f"FAIL: smoke entries for commands ufm no longer has: {', '.join(stale)}")
            return 1
        for name, invocations in table.items():
            for argv in invocations:
                start = time.monotonic()
                out = subprocess.run([str(exe), *argv], cwd=t, capture_output=True, text=True, timeout=600)
                status = "ok" if out.returncode == 0 else f"FAIL (exit {out.returncode})"
                print(f"{status:>16}  {time.monotonic() - start:5.1f} s  ufm {' '.join(argv)}")
                if out.returncode != 0:
                    failed.append(name)
                    print((out.stdout + out.stderr)[-3000:])
    print(f"smoke: {len(registered)} commands, {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
