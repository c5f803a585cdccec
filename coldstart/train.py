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
from .distributed import Shard, current_shard, sum_gradients, sum_scalar
from .features import EncodedFeatures, select_rows
from .learners import Learner
from .model import ColdStartNet
from .objectives import Negatives, Objective, shared_negatives
from .tasks import TaskBatch, UserLog, sample_tasks
from .errors import TrainingDiverged

log = logging.getLogger(__name__)

USER_FEATURE_DROPOUT = 0.1  # share of training tasks shown without user features, as ad-hoc new users are
MIN_USERS = 2  # training users (with 2 or more interactions) meta-training needs


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
                  user_feats: EncodedFeatures, negatives: Negatives, optimizer: torch.optim.Optimizer,
                  shard: Shard | None = None, total: int | None = None) -> float:
    """One meta-step: the learner's outer loss averaged over the meta-batch, backward, an optimizer step; the loss.

    With a `shard`, `batch` is this process's share of a meta-batch of `total` tasks: the share's loss sum is
    divided by `total` and the gradients are summed over the processes before the step."""
    if shard is None:
        loss = learner.outer_loss(net, objective, batch, user_feats, negatives).mean()
    elif len(batch):
        loss = learner.outer_loss(net, objective, batch, user_feats, negatives).sum() / total
    else:  # fewer tasks than processes: this one contributes zero gradients
        loss = torch.zeros((), device=negatives.items.device)
    optimizer.zero_grad(set_to_none=True)
    if loss.requires_grad:
        loss.backward()
    if shard is not None:
        sum_gradients(net.parameters())
        loss = sum_scalar(loss)
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


@dataclass
class Snapshot:
    """The training loop between two epochs: all a resumed fit needs to go on as if it had never stopped."""

    epoch: int  # epochs done
    n_tasks: int
    seconds: float
    losses: list[float]
    rng: dict  # the numpy Generator's bit_generator.state
    net: dict[str, torch.Tensor]
    optimizer: dict  # torch.optim.Adam.state_dict()
    valid_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None


def meta_train(net: ColdStartNet, learner: Learner, objective: Objective, user_log: UserLog,
               user_feats: EncodedFeatures, rng: np.random.Generator, device: torch.device,
               on_step: Callable[[StepReport], None] | None = None,
               valid_users: np.ndarray | None = None, on_epoch: Callable[[Snapshot], None] | None = None,
               resume: Snapshot | None = None) -> TrainingSummary:
    """Meta-train `net` in place (the only function that mutates it) with `learner` on `objective`.

    With `valid_users` (user indices), those users are left out of training; the weights kept are those of the
    epoch (0 = the starting point) with the lowest query loss on their fixed tasks. `on_epoch` gets a Snapshot
    after every epoch (checkpoints); `resume` continues from one, as the same call that made it would have.
    A loss that is not finite stops training: the network gets back the weights of the last full epoch (or the
    best on validation) and TrainingDiverged is raised."""
    config = learner.config
    users = np.flatnonzero(user_log.lengths() >= 2)
    valid_users = np.intersect1d(users, valid_users) if valid_users is not None else np.empty(0, np.int64)
    users = np.setdiff1d(users, valid_users)
    if len(users) < MIN_USERS:
        raise ValueError(f"meta-training needs at least {MIN_USERS} users with 2 or more interactions"
                         + (" besides the validation users" if len(valid_users) else "") + f"; found {len(users)}")
    optimizer = torch.optim.Adam(net.parameters(), lr=config.meta_lr, weight_decay=config.weight_decay)
    shard = current_shard()
    steps_per_epoch = -(-len(users) // config.meta_batch_size)
    valid = None
    if len(valid_users):
        valid = Validation(net, learner, objective, user_log, user_feats, valid_users,
                           np.random.default_rng(rng.integers(2**63)), device)
        if resume is None:
            valid.update(0)
    done = _restore(resume, net, optimizer, rng, valid) if resume is not None else Snapshot(
        0, 0, 0.0, [], {}, {}, {})
    start, n_tasks, losses = time.perf_counter() - done.seconds, done.n_tasks, list(done.losses)
    good = {k: v.detach().clone() for k, v in net.state_dict().items()}  # the last full epoch's weights
    diverged = None
    net.train()
    for epoch in range(done.epoch, config.epochs):
        epoch_losses = []
        for step, chunk in enumerate(np.array_split(rng.permutation(users), steps_per_epoch)):
            batch = _sample(user_log, chunk, rng, config)  # every process draws the whole meta-batch
            blank = torch.as_tensor(rng.random(len(chunk)) < USER_FEATURE_DROPOUT)
            negatives = shared_negatives(net.item_bias.shape[0], config.n_negatives, rng).to(device)
            if shard is not None:  # and adapts its share of it
                rows = torch.as_tensor(shard.rows(len(chunk)))
                batch, blank = batch.rows(rows), blank[rows]
            batch, blank = batch.to(device), blank.to(device)
            epoch_losses.append(training_step(net, learner, objective, batch, select_rows(user_feats, batch.users,
                                                                                           blank), negatives,
                                              optimizer, shard, len(chunk)))
            n_tasks += len(chunk)
            if not np.isfinite(epoch_losses[-1]):
                diverged = (f"the training loss became {epoch_losses[-1]} at epoch {epoch + 1}, step {step + 1}; "
                            f"kept the weights of epoch {epoch} (try a smaller meta_lr or inner_lr)")
                break
            if on_step is not None:
                on_step(StepReport(epoch, config.epochs, step, steps_per_epoch, epoch_losses[-1],
                                   n_tasks / (time.perf_counter() - start)))
        if diverged:
            net.load_state_dict(good)
            break
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d/%d query loss %.4f", epoch + 1, config.epochs, losses[-1])
        if valid is not None:
            valid.update(epoch + 1)
            log.info("epoch %d/%d validation query loss %.4f", epoch + 1, config.epochs, valid.losses[-1])
        good = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if on_epoch is not None:
            on_epoch(Snapshot(epoch + 1, n_tasks, time.perf_counter() - start, list(losses),
                              rng.bit_generator.state, good, optimizer.state_dict(),
                              *((list(valid.losses), valid.best_epoch, valid.best_state) if valid else ())))
    net.eval()
    seconds = time.perf_counter() - start
    summary = TrainingSummary(learner.name, config.epochs, n_tasks, round(seconds, 2), round(n_tasks / seconds, 1),
                              int(len(users)), [round(v, 5) for v in losses])
    if valid is not None:
        valid.restore_best()
        summary.valid_users, summary.best_epoch = int(len(valid_users)), valid.best_epoch
        summary.valid_query_loss = [round(v, 5) if np.isfinite(v) else None for v in valid.losses]
    if diverged:
        raise TrainingDiverged(diverged, summary)
    return summary


def _restore(snap: Snapshot, net: ColdStartNet, optimizer: torch.optim.Optimizer, rng: np.random.Generator,
             valid: Validation | None) -> Snapshot:
    """Put a Snapshot's weights, optimizer state, random state and validation record back in place."""
    net.load_state_dict(snap.net)
    optimizer.load_state_dict(snap.optimizer)
    rng.bit_generator.state = snap.rng
    if valid is not None:
        valid.losses = list(snap.valid_losses)
        valid.best_epoch = snap.best_epoch
        valid.best_loss = valid.losses[snap.best_epoch] if valid.losses else np.inf
        valid.best_state = snap.best_state
    return snap
