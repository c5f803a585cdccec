"""Meta-training: the only code that changes a network's weights. The learner says what a meta-step descends.

Dimension letters: B users (tasks) per meta-batch.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .config import Config
from .distributed import Shard, current_shard, sum_gradients, sum_scalar
from .errors import TrainingDiverged
from .features import EncodedFeatures, select_rows
from .learners.base import Learner
from .model import ColdStartNet
from .objectives import Negatives, Objective, shared_negatives
from .tasks import TaskBatch, UserLog, sample_tasks

log = logging.getLogger(__name__)

MIN_USERS = 2  # training users (with 2 or more interactions) meta-training needs


@dataclass
class StepReport:
    """What a progress display needs after each meta-step."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    loss: float  # this meta-batch's
    epoch_loss: float  # the mean over the epoch's meta-batches so far (what to watch: one batch's loss jumps)
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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Snapshot:
    """The training loop between two epochs: all a resumed fit needs to go on as if it had never stopped."""

    epoch: int  # epochs done
    n_tasks: int
    seconds: float
    losses: list[float]  # each epoch's mean loss
    rng: dict  # the numpy Generator's bit_generator.state
    net: dict[str, torch.Tensor]
    optimizer: dict  # torch.optim.Adam.state_dict()


@dataclass
class Run:
    """What meta-training works with: the net and how it learns, the training users, and the random stream."""

    net: ColdStartNet
    learner: Learner
    objective: Objective
    user_log: UserLog
    user_feats: EncodedFeatures
    users: np.ndarray  # (U,) the training users' indices
    rng: np.random.Generator
    device: torch.device
    optimizer: torch.optim.Optimizer
    shard: Shard | None

    @property
    def config(self) -> Config:
        return self.learner.config


def meta_train(net: ColdStartNet, learner: Learner, objective: Objective, user_log: UserLog,
               user_feats: EncodedFeatures, rng: np.random.Generator, device: torch.device,
               on_step: Callable[[StepReport], None] | None = None,
               on_epoch: Callable[[Snapshot], None] | None = None, resume: Snapshot | None = None
               ) -> TrainingSummary:
    """Meta-train `net` in place (the only function that mutates it) with `learner` on `objective`.

    `on_step` gets a StepReport after every meta-step (progress); `on_epoch` a Snapshot after every epoch
    (checkpoints); `resume` continues from one, as the same call that made it would have. A loss that is not
    finite stops training: the network gets back the weights of the last full epoch and TrainingDiverged is
    raised."""
    run = setup(net, learner, objective, user_log, user_feats, rng, device)
    done = restore(run, resume) if resume is not None else Snapshot(0, 0, 0.0, [], {}, {}, {})
    start, n_tasks, losses = time.perf_counter() - done.seconds, done.n_tasks, list(done.losses)
    good = _weights(net)  # the last full epoch's weights
    net.train()
    for epoch in range(done.epoch, run.config.epochs):
        epoch_losses, n_tasks = run_epoch(run, epoch, n_tasks, start, on_step)
        if not np.isfinite(epoch_losses[-1]):
            net.load_state_dict(good)
            net.eval()
            raise TrainingDiverged(
                f"the training loss became {epoch_losses[-1]} at epoch {epoch + 1}, step {len(epoch_losses)}; "
                f"kept the weights of epoch {epoch} (try a smaller meta_lr or inner_lr)",
                summarise(run, n_tasks, time.perf_counter() - start, losses))
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d/%d query loss %.4f", epoch + 1, run.config.epochs, losses[-1])
        good = _weights(net)
        if on_epoch is not None:
            on_epoch(Snapshot(epoch + 1, n_tasks, time.perf_counter() - start, list(losses),
                              rng.bit_generator.state, good, run.optimizer.state_dict()))
    net.eval()
    return summarise(run, n_tasks, time.perf_counter() - start, losses)


def setup(net: ColdStartNet, learner: Learner, objective: Objective, user_log: UserLog,
          user_feats: EncodedFeatures, rng: np.random.Generator, device: torch.device) -> Run:
    """The training users (2 or more interactions), the optimizer and this process's shard."""
    config = learner.config
    users = np.flatnonzero(user_log.lengths() >= 2)
    if len(users) < MIN_USERS:
        raise ValueError(f"meta-training needs at least {MIN_USERS} users with 2 or more interactions; "
                         f"found {len(users)}")
    optimizer = torch.optim.Adam(net.parameters(), lr=config.meta_lr, weight_decay=config.weight_decay)
    return Run(net, learner, objective, user_log, user_feats, users, rng, device, optimizer, current_shard())


def run_epoch(run: Run, epoch: int, n_tasks: int, start: float,
              on_step: Callable[[StepReport], None] | None) -> tuple[list[float], int]:
    """One pass over the training users in meta-batches: (each step's loss, tasks done). Stops at the first loss
    that is not finite (the last in the list)."""
    config = run.config
    steps = -(-len(run.users) // config.meta_batch_size)
    losses: list[float] = []
    for step, chunk in enumerate(np.array_split(run.rng.permutation(run.users), steps)):
        losses.append(meta_step(run, chunk))
        n_tasks += len(chunk)
        if not np.isfinite(losses[-1]):
            break
        if on_step is not None:
            on_step(StepReport(epoch, config.epochs, step, steps, losses[-1], float(np.mean(losses)),
                               n_tasks / (time.perf_counter() - start)))
    return losses, n_tasks


def meta_step(run: Run, chunk: np.ndarray) -> float:
    """A meta-step on the users `chunk`: their tasks, some shown without user features, against shared negatives.
    Every process draws the whole meta-batch (one random stream) and adapts its share of it."""
    config = run.config
    batch = sample(run.user_log, chunk, run.rng, config)
    blank = torch.as_tensor(run.rng.random(len(chunk)) < config.user_feature_dropout)  # (B,)
    negatives = shared_negatives(run.net.item_bias.shape[0], config.n_negatives, run.rng).to(run.device)
    if run.shard is not None:
        rows = torch.as_tensor(run.shard.rows(len(chunk)))
        batch, blank = batch.rows(rows), blank[rows]
    batch, blank = batch.to(run.device), blank.to(run.device)
    feats = select_rows(run.user_feats, batch.users, blank)
    return training_step(run.net, run.learner, run.objective, batch, feats, negatives, run.optimizer, run.shard,
                         len(chunk))


def sample(user_log: UserLog, users: np.ndarray, rng: np.random.Generator, config: Config) -> TaskBatch:
    """Training tasks of `users`: each support is the user's first interactions in time, as a new user's are; with
    `time_aware`, each task reads the priors as of when its support ended (else at the end of the log)."""
    batch = sample_tasks(user_log, users, rng, config.support_min, config.support_max, config.query_size,
                         in_time=True)
    if not config.time_aware:
        batch.support_end = None
    return batch


def summarise(run: Run, n_tasks: int, seconds: float, losses: list[float]) -> TrainingSummary:
    return TrainingSummary(run.learner.name, run.config.epochs, n_tasks, round(seconds, 2),
                           round(n_tasks / max(seconds, 1e-9), 1), int(len(run.users)), [round(v, 5) for v in losses])


def restore(run: Run, snap: Snapshot) -> Snapshot:
    """Put a Snapshot's weights, optimizer state and random state back in place."""
    run.net.load_state_dict(snap.net)
    run.optimizer.load_state_dict(snap.optimizer)
    run.rng.bit_generator.state = snap.rng
    return snap


def _weights(net: ColdStartNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
