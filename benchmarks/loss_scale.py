"""Gradient norm at initialization under the trainer's two loss reductions (`--reduction mean` and `2B`).

One batch of 128 images (two identical views) of the `cpu-fig1` preset's data and network, SCL with n_w = 0
and n_w = 100 ETF prototypes: with `2B` the k n_w prototype anchors add terms that the batch size does not
divide away, so the n_w = 100 run starts with a much larger gradient; `mean` divides by the anchors.

    python benchmarks/loss_scale.py [--data-root /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from ufm.deep.evaluate import Normalizer
from ufm.deep.model import ResNet18
from ufm.deep.train import _loss_fn, _prepare_data, preset
from ufm.geometry import make_gram, prototypes_from_gram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST IDX folder (default: the preset's)")
    args = parser.parse_args()
    print("| run | reduction | loss | gradient norm |\n|---|---|---:|---:|")
    for name in ("scl-nw0", "scl-nw100"):
        for reduction in ("mean", "2B"):
            cfg = replace(preset("cpu-fig1")[name], reduction=reduction, **({"data_root": args.data_root}
                                                                              if args.data_root else {}))
            train, _, counts, _ = _prepare_data(cfg)
            k = len(train.classes)
            w = prototypes_from_gram(make_gram(cfg.geometry, k, counts, cfg.gamma), cfg.embed_dim, seed=0,
                                     dtype=torch.float32)
            torch.manual_seed(cfg.seed)
            model = ResNet18(cfg.width, cfg.head, cfg.embed_dim, train.images.shape[1])
            normalize = Normalizer((127.5,), (127.5,), train.images.shape[1], torch.device("cpu"))
            index = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(0))[:128]
            z = torch.nn.functional.normalize(model(normalize(train.images[index.repeat(2)])), dim=-1)
            loss = _loss_fn(cfg, w, k)(z, train.labels[index].repeat(2))
            loss.backward()
            norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
            print(f"| {name} | {reduction} | {loss.item():.3f} | {norm.item():.2f} |")


if __name__ == "__main__":
    main()
