"""Multi-process meta-training (torch.distributed: gloo on CPU, NCCL on GPU).

Every process draws the same meta-batches (same seed, same random stream) and adapts its share of each batch's
users (rows rank, rank + N, ...); the gradients of the shares are summed over processes before every optimizer
step, each share's loss being divided by the whole batch's size. So N processes take exactly the steps one process
would, up to float summation order. The gradients are reduced by hand after `backward()`, not by wrapping the net in
DistributedDataParallel: DDP only reduces when its wrapper's `forward` runs, and the functional inner loop calls the
network's parts directly (see ../shared/ENGINES.md).

Launch with `torchrun --nproc_per_node=N -m coldstart fit ...` or `coldstart fit --nproc N`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's place among `size` training processes."""

    rank: int
    size: int

    def rows(self, n: int) -> np.ndarray:
        """(n / size,) the rows of an n-task meta-batch this process adapts."""
        return np.arange(self.rank, n, self.size)


def current_shard() -> Shard | None:
    """This process's Shard when a process group of 2 or more is running, else None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Shard(dist.get_rank(), dist.get_world_size())
    return None


def is_main_process() -> bool:
    """True unless this is a training process other than rank 0 (which alone writes files)."""
    shard = current_shard()
    return shard is None or shard.rank == 0


def init_from_env(device: str) -> Shard | None:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1), else do nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or not dist.is_available():
        return None
    if not dist.is_initialized():
        cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return current_shard()


def sum_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Sum every parameter's gradient over the processes (a missing gradient counts as zero on that process)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)


def sum_scalar(value: torch.Tensor) -> torch.Tensor:
    """A scalar summed over the processes."""
    value = value.detach().clone()
    dist.all_reduce(value)
    return value
