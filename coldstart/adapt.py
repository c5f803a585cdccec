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
          first_order: bool = False, scale: torch.Tensor | None = None) -> Params:
    """`steps` SGD steps of the parameters `names` on `loss_fn`; returns a new dict (the input is untouched).

    Args:
        params: per-user parameters, each with leading dimension B.
        names: the keys of `params` to adapt; the others pass through unchanged.
        loss_fn: maps a parameter dict to the (B,) per-user support losses.
        steps: number of SGD steps (0 returns `params` itself).
        lr: the inner learning rate, or one (learnable) scalar per name in `names`.
        first_order: drop the second-order terms (gradients are not differentiated through).
        scale: (B,) each user's multiplier of the step size (None: 1).
    """
    for _ in range(steps):
        local = [params[n] for n in names]
        grads = torch.autograd.grad(loss_fn(params).sum(), local, create_graph=not first_order)
        rates = lr if isinstance(lr, dict) else dict.fromkeys(names, lr)
        params = {**params, **{n: p - _per_user(rates[n], scale, g) * g for n, p, g in zip(names, local, grads)}}
    return params


def _per_user(rate: float | torch.Tensor, scale: torch.Tensor | None, grad: torch.Tensor) -> float | torch.Tensor:
    """The step size of `grad` (B, ...): `rate`, times each user's `scale` (B,) broadcast over its slice."""
    return rate if scale is None else rate * scale.view(-1, *([1] * (grad.dim() - 1)))


def adapt_detached(params: Params, names: list[str], loss_fn: LossFn, steps: int,
                   lr: float | dict[str, torch.Tensor], scale: torch.Tensor | None = None) -> Params:
    """Adaptation at prediction time: no graph is kept, results are detached (the model's weights stay fixed)."""
    if isinstance(lr, dict):
        lr = {n: v.detach() for n, v in lr.items()}
    scale = None if scale is None else scale.detach()
    with torch.enable_grad():
        start = {k: v.detach().requires_grad_(k in names) for k, v in params.items()}
        adapted = adapt(start, names, loss_fn, steps, lr, first_order=True, scale=scale)
    return {k: v.detach() for k, v in adapted.items()}
