"""Meta-training: the only code that changes a network's weights. The learner says what a meta-step descends.

Dimension letters: B users (tasks) per meta-batch.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .config import Config
from .features import EncodedFeatures, select_rows
from .learners import Learner
from .model import ColdStartNet
from .objectives import Negatives, Objective, shared_negatives
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


def training_step(net: ColdStartNet, learner: Learner, objective: Objective, batch: TaskBatch,
                  user_feats: EncodedFeatures, negatives: Negatives, optimizer: torch.optim.Optimizer) -> float:
    """One meta-step: the learner's outer loss over the meta-batch, backward, an optimizer step; the mean loss."""
    loss = learner.outer_loss(net, objective, batch, user_feats, negatives).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@dataclass
class TrainingSummary:
    """What a fit did: recorded in model.json and shown by `coldstart info`."""

    learner: str
    epochs: int
    tasks: int
    seconds: float
    tasks_per_s: float
    train_users: int
    epoch_query_loss: list[float]
    valid_users: int = 0
    best_epoch: int | None = None  # with validation users: the epoch kept (0 = the starting point)
    valid_query_loss: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Validation:
    """Fixed tasks of held-out users, scored after every epoch; remembers the best weights seen."""

    def __init__(self, net: ColdStartNet, learner: Learner, objective: Objective, user_log: UserLog,
                 user_feats: EncodedFeatures, users: np.ndarray, rng: np.random.Generator, device: torch.device):
        self.net, self.learner, self.objective, config = net, learner, objective, learner.config
        self.negatives = shared_negatives(net.item_bias.shape[0], config.n_negatives, rng).to(device)
        self.chunks = []
        for chunk in np.array_split(users, -(-len(users) // config.eval_batch_size)):
            batch = _sample(user_log, chunk, rng, config).to(device)
            self.chunks.append((batch, select_rows(user_feats, batch.users)))
        self.losses: list[float] = []
        self.best_epoch, self.best_loss, self.best_state = 0, np.inf, None

    def loss(self) -> float:
        """Mean query loss of the held-out users after adaptation as at recommend time."""
        total = sum(self.learner.query_loss(self.net, self.objective, batch, feats, self.negatives,
                                            training=False).sum().item() for batch, feats in self.chunks)
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


def _sample(user_log: UserLog, users: np.ndarray, rng: np.random.Generator, config: Config) -> TaskBatch:
    return sample_tasks(user_log, users, rng, config.support_min, config.support_max, config.query_size,
                        in_time=config.task_split == "time")


def meta_train(net: ColdStartNet, learner: Learner, objective: Objective, user_log: UserLog,
               user_feats: EncodedFeatures, rng: np.random.Generator, device: torch.device,
               on_step: Callable[[StepReport], None] | None = None,
               valid_users: np.ndarray | None = None) -> TrainingSummary:
    """Meta-train `net` in place (the only function that mutates it) with `learner` on `objective`.

    With `valid_users` (user indices), those users are left out of training; the weights kept are those of the
    epoch (0 = the starting point) with the lowest query loss on their fixed tasks."""
    config = learner.config
    users = np.flatnonzero(user_log.lengths() >= 2)
    valid_users = np.intersect1d(users, valid_users) if valid_users is not None else np.empty(0, np.int64)
    users = np.setdiff1d(users, valid_users)
    if len(users) == 0:
        raise ValueError("no user has 2 or more interactions: nothing to meta-train on")
    optimizer = torch.optim.Adam(net.parameters(), lr=config.meta_lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(users) // config.meta_batch_size)
    valid = None
    if len(valid_users):
        valid = Validation(net, learner, objective, user_log, user_feats, valid_users,
                           np.random.default_rng(rng.integers(2**63)), device)
        valid.update(0)
    start, n_tasks, losses = time.perf_counter(), 0, []
    net.train()
    for epoch in range(config.epochs):
        epoch_losses = []
        for step, chunk in enumerate(np.array_split(rng.permutation(users), steps_per_epoch)):
            batch = _sample(user_log, chunk, rng, config).to(device)
            blank = torch.as_tensor(rng.random(len(chunk)) < USER_FEATURE_DROPOUT, device=device)
            negatives = shared_negatives(net.item_bias.shape[0], config.n_negatives, rng).to(device)
            epoch_losses.append(training_step(net, learner, objective, batch, select_rows(user_feats, batch.users,
                                                                                           blank), negatives, optimizer))
            n_tasks += len(chunk)
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
    summary = TrainingSummary(learner.name, config.epochs, n_tasks, round(seconds, 2), round(n_tasks / seconds, 1),
                              int(len(users)), [round(v, 5) for v in losses])
    if valid is not None:
        valid.restore_best()
        summary.valid_users, summary.best_epoch = int(len(valid_users)), valid.best_epoch
        summary.valid_query_loss = [round(v, 5) if np.isfinite(v) else None for v in valid.losses]
    return summary
