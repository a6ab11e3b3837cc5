"""The unconstrained-features model in ten lines of the library: G_M without and with fixed ETF prototypes.

    python examples/ufm_in_ten_lines.py [--epochs 1500]
"""

import argparse

from ufm.simulate import SimConfig, simulate

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=1500)
epochs = parser.parse_args().epochs

config = SimConfig(k=6, n_major=20, ratio=5, d=8, n_w=(0.0, 100.0), tau=(0.5,), batching="full", epochs=epochs)
result = simulate(config)                     # both runs stacked in one tensor program
for run in result.summary()["runs"]:
    print(f"n_w = {run['n_w']:>5g}: distance of G_M to the ETF {run['distance']:.4f}, NC1 {run['nc1']:.1e}")
