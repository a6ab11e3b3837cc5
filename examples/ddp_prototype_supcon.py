"""Prototype SupCon in your own DDP loop: PrototypeSupConLoss(gather=True) gives every rank the loss of the global
batch, and DDP's averaged gradients equal the single-process gradient on that batch (exact in float64).

    torchrun --nproc_per_node 2 examples/ddp_prototype_supcon.py      # gloo on the CPU
    python examples/ddp_prototype_supcon.py                           # one process: the plain loss

Rank 0 also computes the single-process gradient of the global batch and prints the largest difference.
"""

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F

import ufm
from ufm.nn import PrototypeSupConLoss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=12, help="global batch size (split unequally over ranks)")
    args = parser.parse_args()
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.manual_seed(0)  # the same data and initial weights on every rank
    images = torch.randn(args.batch, 2, 32, dtype=torch.float64)     # two augmented views of each sample
    labels = torch.arange(args.batch) % 4
    W = ufm.prototypes_from_gram(ufm.etf_gram(4).double(), d=8)        # the target geometry G_* = W W^T
    encoder = torch.nn.Linear(32, 8).double()
    reference = torch.nn.Linear(32, 8).double()
    reference.load_state_dict(encoder.state_dict())
    model = torch.nn.parallel.DistributedDataParallel(encoder) if distributed else encoder
    criterion = PrototypeSupConLoss(W, n_w=10, temperature=0.1, gather=True)

    sizes = [args.batch // world + (r < args.batch % world) for r in range(world)]  # this rank's slice of the batch
    start = sum(sizes[:rank])
    mine = slice(start, start + sizes[rank])
    features = F.normalize(model(images[mine]), dim=-1)              # [b_r, 2, d]
    loss = criterion(features, labels[mine])
    loss.backward()                                                  # DDP averages the gradients over ranks
    if rank == 0:
        single = PrototypeSupConLoss(W, n_w=10, temperature=0.1)(F.normalize(reference(images), dim=-1), labels)
        single.backward()
        diff = max((a.grad - b.grad).abs().max().item() for a, b in zip(encoder.parameters(), reference.parameters()))
        print(f"{world} rank(s): loss {loss.item():.10f} (one process: {single.item():.10f}); "
              f"max |DDP grad - single-process grad| = {diff:.1e}")
    if distributed:
        dist.barrier()  # every rank leaves together (rank 0 did the reference work above)
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
