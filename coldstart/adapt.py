"""The inner loop: per-user losses and a few SGD steps on the support set, batched over users.

Dimension letters: B users, S support (or query) slots, M shared negative items, Di item-vector width.

`adapt` is a pure function of a parameter dict whose tensors carry a leading user dimension B. Each user's loss
depends only on that user's slice, so one `autograd.grad` of the summed losses yields every user's own gradient.
With `create_graph=True` the steps stay differentiable (second-order MAML); with `first_order=True` the gradients
are constants (FOMAML). The model itself is never mutated, copied or re-loaded.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .config import Config
from .model import ColdStartNet, Params

LossFn = Callable[[Params], torch.Tensor]  # params -> (B,) per-user losses


def masked_mean(values: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """(B,) mean (or sum) of `values` (B, S) over the True slots of `mask`; 0 for users with none."""
    mask = mask.float()
    total = (values * mask).sum(1)
    return total if reduction == "sum" else total / mask.sum(1).clamp(min=1.0)


def rating_loss(net: ColdStartNet, params: Params, item_vecs: torch.Tensor, items: torch.Tensor,
                ratings: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """(B,) mean (or summed) squared error of the predicted ratings of `items` (B, S)."""
    pred = net.scores(params, item_vecs, items)  # (B, S)
    return masked_mean((pred - ratings) ** 2, mask, reduction)


def softmax_loss(net: ColdStartNet, params: Params, item_vecs: torch.Tensor, items: torch.Tensor,
                 mask: torch.Tensor, negatives: torch.Tensor, exclude: torch.Tensor,
                 reduction: str = "mean") -> torch.Tensor:
    """(B,) sampled-softmax loss: each positive item (B, S) against the shared negatives (M,).

    Negatives that are among the user's own items `exclude` (B, E) are masked out.
    """
    pos = net.scores(params, item_vecs, items)  # (B, S)
    neg = net.scores(params, item_vecs, negatives)  # (B, M): one gather shared by all users
    own = (exclude.unsqueeze(-1) == negatives.view(1, 1, -1)).any(1)  # (B, M)
    neg = neg.masked_fill(own, float("-inf"))
    logits = torch.cat([pos.unsqueeze(-1), neg.unsqueeze(1).expand(-1, pos.shape[1], -1)], dim=2)  # (B, S, 1+M)
    return masked_mean(torch.logsumexp(logits, dim=2) - pos, mask, reduction)


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


def objective_loss(net: ColdStartNet, config: Config, item_vecs: torch.Tensor, items: torch.Tensor,
                   ratings: torch.Tensor, mask: torch.Tensor, negatives: torch.Tensor,
                   exclude: torch.Tensor, reduction: str = "mean") -> LossFn:
    """The per-user loss of `config.objective` on the item sets `items` (B, S), as a function of the parameters.

    `reduction` "sum" (config.inner_reduction, for support sets) makes an inner step grow with the support size."""
    if config.objective == "rating":
        return lambda p: rating_loss(net, p, item_vecs, items, ratings, mask, reduction)
    return lambda p: softmax_loss(net, p, item_vecs, items, mask, negatives, exclude, reduction)
