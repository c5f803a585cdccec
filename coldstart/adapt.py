"""The inner loop: a few SGD steps on each user's support loss, batched over users.

Dimension letters: B users.

`adapt` is a pure function of a parameter dict whose tensors carry a leading user dimension B. Each user's loss
depends only on that user's slice, so one `autograd.grad` of the summed losses yields every user's own gradient.
With `create_graph=True` the steps stay differentiable (second-order MAML); with `first_order=True` the gradients
are constants (FOMAML). The model itself is never mutated, copied or re-loaded.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .model import Params

LossFn = Callable[[Params], torch.Tensor]  # params -> (B,) per-user losses


def adapt(params: Params, names: list[str], loss_fn: LossFn, steps: int, lr: float | dict[str, torch.Tensor],
          first_order: bool = False) -> Params:
    """`steps` SGD steps of the parameters `names` on `loss_fn`; returns a new dict (the input is untouched).

    Args:
        params: per-user parameters, each with leading dimension B.
        names: the keys of `params` to adapt; the others pass through unchanged.
        loss_fn: maps a parameter dict to the (B,) per-user support losses.
        steps: number of SGD steps (0 returns `params` itself).
        lr: the inner learning rate, or one (learnable) scalar per name in `names`.
        first_order: drop the second-order terms (gradients are not differentiated through).
    """
    for _ in range(steps):
        local = [params[n] for n in names]
        grads = torch.autograd.grad(loss_fn(params).sum(), local, create_graph=not first_order)
        rates = lr if isinstance(lr, dict) else dict.fromkeys(names, lr)
        params = {**params, **{n: p - rates[n] * g for n, p, g in zip(names, local, grads)}}
    return params


def adapt_detached(params: Params, names: list[str], loss_fn: LossFn, steps: int,
                   lr: float | dict[str, torch.Tensor]) -> Params:
    """Adaptation at prediction time: no graph is kept, results are detached (the model's weights stay fixed)."""
    if isinstance(lr, dict):
        lr = {n: v.detach() for n, v in lr.items()}
    with torch.enable_grad():
        start = {k: v.detach().requires_grad_(k in names) for k, v in params.items()}
        adapted = adapt(start, names, loss_fn, steps, lr, first_order=True)
    return {k: v.detach() for k, v in adapted.items()}
