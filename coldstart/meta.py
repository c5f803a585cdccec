"""The outer loop: meta-training of the shared initialisation from the query losses of adapted users.

Dimension letters: B users (tasks) per meta-batch, S support slots, Q query slots, M shared negatives.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .adapt import adapt, objective_loss
from .config import Config
from .features import EncodedFeatures, select_rows
from .model import ColdStartNet
from .tasks import TaskBatch, UserLog, sample_tasks

log = logging.getLogger(__name__)

USER_FEATURE_DROPOUT = 0.1  # share of training tasks shown without user features, as ad-hoc new users are


@dataclass
class StepReport:
    """What a progress display needs after each meta-step."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    loss: float
    tasks_per_s: float


def sample_negatives(n_items: int, n_negatives: int, rng: np.random.Generator) -> torch.Tensor:
    """(M,) distinct item indices drawn uniformly; the whole catalogue when n_negatives >= n_items."""
    if n_negatives >= n_items:
        return torch.arange(n_items)
    return torch.as_tensor(np.sort(rng.choice(n_items, n_negatives, replace=False)))


def own_items(batch: TaskBatch) -> torch.Tensor:
    """(B, S + Q) each user's support and query items, -1 in padded slots (never a negative)."""
    return torch.cat([batch.support_items.masked_fill(~batch.support_mask, -1),
                      batch.query_items.masked_fill(~batch.query_mask, -1)], dim=1)


def query_targets(batch: TaskBatch, config: Config) -> torch.Tensor:
    """(B, Q) the query slots the query loss asks for: with "implicit" and positive_rating, the items a user will
    like (rating >= positive_rating); otherwise every query slot."""
    if config.objective == "implicit" and config.positive_rating is not None:
        return batch.query_mask & (batch.query_ratings >= config.positive_rating)
    return batch.query_mask


def task_losses(net: ColdStartNet, batch: TaskBatch, user_feats: EncodedFeatures, negatives: torch.Tensor,
                config: Config, steps: int | None = None, first_order: bool | None = None) -> torch.Tensor:
    """(B,) query losses after adapting each user on its support set; differentiable w.r.t. the net."""
    steps = config.inner_steps if steps is None else steps
    first_order = config.first_order if first_order is None else first_order
    item_vecs = net.item_vectors()  # (I, Di)
    start = net.user_params(user_feats, item_vecs, batch.support_items, batch.support_ratings, batch.support_mask)
    exclude = own_items(batch)  # (B, S + Q)
    support_loss = objective_loss(net, config, item_vecs, batch.support_items, batch.support_ratings,
                                  batch.support_mask, negatives, exclude, config.inner_reduction)
    params = adapt(start, net.local_names(), support_loss, steps, net.inner_lr(), first_order)
    query_loss = objective_loss(net, config, item_vecs, batch.query_items, batch.query_ratings,
                                query_targets(batch, config), negatives, exclude)
    return query_loss(params)


class Validation:
    """Fixed tasks of held-out users, scored after every epoch; remembers the best weights seen."""

    def __init__(self, net: ColdStartNet, user_log: UserLog, user_feats: EncodedFeatures, users: np.ndarray,
                 config: Config, rng: np.random.Generator, device: torch.device):
        self.net, self.config = net, config
        n_items = net.item_bias.shape[0]
        self.negatives = sample_negatives(n_items, config.n_negatives, rng).to(device)
        self.chunks = []
        for chunk in np.array_split(users, -(-len(users) // config.eval_batch_size)):
            batch = sample_tasks(user_log, chunk, rng, config.support_min, config.support_max, config.query_size,
                                 in_time=config.task_split == "time").to(device)
            self.chunks.append((batch, select_rows(user_feats, batch.users)))
        self.losses: list[float] = []
        self.best_epoch, self.best_loss, self.best_state = 0, np.inf, None

    def loss(self) -> float:
        """Mean query loss of the held-out users after adaptation (first-order inner steps; the graph is dropped
        as soon as each chunk's loss is read)."""
        total = sum(task_losses(self.net, batch, feats, self.negatives, self.config, first_order=True).sum().item()
                    for batch, feats in self.chunks)
        return total / sum(len(batch) for batch, _ in self.chunks)

    def update(self, epoch: int) -> None:
        """Score the net after `epoch` epochs; keep a copy of its weights when they are the best so far (a loss
        that is not finite never is)."""
        self.losses.append(self.loss())
        if self.losses[-1] < self.best_loss:
            self.best_epoch, self.best_loss = epoch, self.losses[-1]
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def restore_best(self) -> None:
        """Load the best weights seen (the last ones stay when no loss was finite)."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)


def meta_train(net: ColdStartNet, user_log: UserLog, user_feats: EncodedFeatures, config: Config,
               rng: np.random.Generator, device: torch.device,
               on_step: Callable[[StepReport], None] | None = None,
               valid_users: np.ndarray | None = None) -> dict:
    """Meta-train `net` in place (the only function that mutates it); returns a training summary.

    With `valid_users` (user indices), those users are left out of training; the weights kept are those of the
    epoch (0 = the starting point) with the lowest query loss on their fixed tasks."""
    users = np.flatnonzero(user_log.lengths() >= 2)
    valid_users = np.intersect1d(users, valid_users) if valid_users is not None else np.empty(0, np.int64)
    users = np.setdiff1d(users, valid_users)
    if len(users) == 0:
        raise ValueError("no user has 2 or more interactions: nothing to meta-train on")
    n_items = net.item_bias.shape[0]
    liked = config.objective == "implicit" and config.positive_rating is not None
    if liked and not (user_log.ratings >= config.positive_rating).any():
        log.info("no rating reaches positive_rating %g: every interaction counts as a positive",
                 config.positive_rating)
        config = config.replace(positive_rating=None)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.meta_lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(users) // config.meta_batch_size)
    start, n_tasks, losses = time.perf_counter(), 0, []
    valid = None
    if len(valid_users):
        valid = Validation(net, user_log, user_feats, valid_users, config,
                           np.random.default_rng(rng.integers(2**63)), device)
        valid.update(0)
    net.train()
    for epoch in range(config.epochs):
        epoch_losses = []
        for step, chunk in enumerate(np.array_split(rng.permutation(users), steps_per_epoch)):
            batch = sample_tasks(user_log, chunk, rng, config.support_min, config.support_max,
                                 config.query_size, in_time=config.task_split == "time").to(device)
            blank = torch.as_tensor(rng.random(len(chunk)) < USER_FEATURE_DROPOUT, device=device)
            feats = select_rows(user_feats, batch.users, blank)
            negatives = sample_negatives(n_items, config.n_negatives, rng).to(device)
            loss = task_losses(net, batch, feats, negatives, config).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n_tasks += len(chunk)
            epoch_losses.append(loss.item())
            if on_step is not None:
                on_step(StepReport(epoch, config.epochs, step, steps_per_epoch, epoch_losses[-1],
                                   n_tasks / (time.perf_counter() - start)))
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d/%d query loss %.4f", epoch + 1, config.epochs, losses[-1])
        if valid is not None:
            valid.update(epoch + 1)
            log.info("epoch %d/%d validation query loss %.4f", epoch + 1, config.epochs, valid.losses[-1])
    net.eval()
    seconds = time.perf_counter() - start
    summary = {"epochs": config.epochs, "tasks": n_tasks, "seconds": round(seconds, 2),
               "tasks_per_s": round(n_tasks / seconds, 1), "train_users": int(len(users)),
               "epoch_query_loss": [round(v, 5) for v in losses]}
    if valid is not None:
        valid.restore_best()
        summary.update(valid_users=int(len(valid_users)), best_epoch=valid.best_epoch,
                       valid_query_loss=[round(v, 5) if np.isfinite(v) else None for v in valid.losses])
    return summary
