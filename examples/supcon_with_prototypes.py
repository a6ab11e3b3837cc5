"""Fixed prototypes dropped into a SupContrast-style two-view training loop.

    python examples/supcon_with_prototypes.py [--steps 200] [--n-w 50]

The only change to a SupCon script is the criterion: ``PrototypeSupConLoss(W, n_w=...)`` instead of ``SupConLoss``,
with ``W`` the k fixed prototypes (an ETF here).  A small MLP embeds two noisy views of imbalanced Gaussian data; at
the end the class-mean Gram G_M is compared with the prototypes' Gram G_*.
"""

import argparse

import torch
import torch.nn.functional as F

import ufm
from ufm.nn import PrototypeSupConLoss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n-w", type=float, default=50.0)
    args = parser.parse_args()
    torch.manual_seed(0)

    k, d_in, d = 4, 16, 8
    counts = ufm.step_counts(k=k, n=60, ratio=6)                       # STEP imbalance: 2 x 60, 2 x 10
    y = ufm.labels_from_counts(counts)
    centres = 3 * torch.randn(k, d_in)
    x = centres[y] + torch.randn(len(y), d_in)
    g_star = ufm.etf_gram(k)
    W = ufm.prototypes_from_gram(g_star, d).float()                    # [k, d], W W^T = G_*

    net = torch.nn.Sequential(torch.nn.Linear(d_in, 64), torch.nn.ReLU(), torch.nn.Linear(64, d))
    criterion = PrototypeSupConLoss(W, n_w=args.n_w, temperature=0.1)  # SupConLoss(temperature=0.1) + prototypes
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for step in range(args.steps):
        idx = torch.randperm(len(y))[:32]
        views = [x[idx] + 0.3 * torch.randn(len(idx), d_in) for _ in range(2)]   # two augmented views
        features = torch.stack([F.normalize(net(v), dim=-1) for v in views], 1)  # [bsz, n_views, d]
        loss = criterion(features, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")

    with torch.no_grad():
        h = F.normalize(net(x), dim=-1).double()
    g_m = ufm.mean_gram(h, y, k)
    print(f"distance of G_M to G_* {ufm.gram_distance(g_m, g_star):.4f} (n_w = {args.n_w:g})")


if __name__ == "__main__":
    main()
