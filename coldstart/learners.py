"""Learners: how a user's model is adapted from its support set, and how the shared initialisation learns from that.

Dimension letters: B users of a meta-batch.

A learner has two halves, used by training (`train.py`) and by every prediction (`recommender.py`) alike:
    adapt       support set -> per-user parameters (the inner loop; pure, never mutates the net)
    outer_loss  a scalar whose gradient is the learner's meta-update of the net (the outer loop)

Each learner is a small class registered in LEARNERS under its name (`coldstart fit --learner NAME`, recorded in
model.json). A learner that needs parameters of its own (step sizes, an encoder) adds them to the net in `attach`,
so that they are trained, saved and loaded with it. Adding a learner touches this file and a test, nothing else.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .adapt import LossFn, adapt, adapt_detached
from .config import Config
from .features import EncodedFeatures
from .model import ColdStartNet, Params
from .objectives import Negatives, Objective
from .tasks import ItemSet, TaskBatch
from .teacher import Teacher, batch_distillation


class Learner:
    """MAML (second order): SGD steps on the support loss, differentiated through by the query loss."""

    name = "maml"
    first_order = False

    def __init__(self, config: Config, teacher: Teacher | None = None):
        self.config = config
        self.teacher = teacher  # distilled into the outer loss (config.teacher_weight); None: no teacher term

    def attach(self, net: ColdStartNet) -> None:
        """Add the learner's own parameters to `net` (none here)."""

    def start(self, net: ColdStartNet, user_feats: EncodedFeatures, item_vecs: torch.Tensor,
              support: ItemSet) -> Params:
        """Each user's starting point of the inner loop."""
        return net.user_params(user_feats, item_vecs, support)

    def inner_lr(self, net: ColdStartNet) -> float | dict[str, torch.Tensor]:
        return self.config.step_size()

    def support_loss(self, net: ColdStartNet, objective: Objective, proj: torch.Tensor, support: ItemSet,
                     negatives: Negatives, start: Params) -> LossFn:
        """The function of the per-user parameters that the inner loop descends."""
        seen = support.seen()  # a user's own support items are never its negatives; its query is not looked at
        return lambda p: objective.support_loss(net, p, proj, support, negatives, seen)

    def adapt(self, net: ColdStartNet, objective: Objective, proj: torch.Tensor, support: ItemSet,
              negatives: Negatives, start: Params, training: bool) -> Params:
        """`config.inner_steps` steps from `start`; detached (a value, no graph) unless `training`."""
        loss = self.support_loss(net, objective, proj, support, negatives, start)
        steps, lr, names = self.config.inner_steps, self.inner_lr(net), net.local_names()
        if not training:
            return adapt_detached(start, names, loss, steps, lr)
        return adapt(start, names, loss, steps, lr, first_order=self.first_order)

    def adapted(self, net: ColdStartNet, objective: Objective, batch: TaskBatch, user_feats: EncodedFeatures,
                negatives: Negatives, training: bool) -> tuple[Params, torch.Tensor]:
        """Each task's parameters after adaptation on its support, and the catalogue's (I, H) projection."""
        item_vecs = net.item_vectors()  # (I, Di)
        proj = net.item_projection(item_vecs)  # (I, H)
        start = self.start(net, user_feats, item_vecs, batch.support)
        return self.adapt(net, objective, proj, batch.support, negatives, start, training), proj

    def query_loss(self, net: ColdStartNet, objective: Objective, batch: TaskBatch, user_feats: EncodedFeatures,
                   negatives: Negatives, training: bool) -> torch.Tensor:
        """(B,) each task's query loss after adaptation on its support (differentiable through it if `training`)."""
        params, proj = self.adapted(net, objective, batch, user_feats, negatives, training)
        return self._query_loss(net, objective, params, proj, batch, negatives)

    @staticmethod
    def _query_loss(net: ColdStartNet, objective: Objective, params: Params, proj: torch.Tensor, batch: TaskBatch,
                    negatives: Negatives) -> torch.Tensor:
        seen = torch.cat([batch.support.seen(), batch.query.seen()], dim=1)  # (B, S + Q)
        return objective.query_loss(net, params, proj, batch.query, negatives, seen)

    def outer_loss(self, net: ColdStartNet, objective: Objective, batch: TaskBatch, user_feats: EncodedFeatures,
                   negatives: Negatives) -> torch.Tensor:
        """(B,) per task, a loss whose gradient is the learner's meta-update: here the query loss after adaptation,
        plus teacher_weight times the teacher's distillation term when the learner has a teacher."""
        if self.teacher is None:
            return self.query_loss(net, objective, batch, user_feats, negatives, training=True)
        params, proj = self.adapted(net, objective, batch, user_feats, negatives, training=True)
        taught = batch_distillation(self.teacher, net, params, proj, batch, negatives, self.config.teacher_temperature)
        return self._query_loss(net, objective, params, proj, batch, negatives) + self.config.teacher_weight * taught


class FOMAML(Learner):
    """First-order MAML: the inner gradients are constants in the meta-gradient (no second derivatives)."""

    name = "fomaml"
    first_order = True


class MetaSGD(Learner):
    """Meta-SGD: one meta-learned step size per adapted tensor (in log space, starting at inner_lr)."""

    name = "metasgd"

    def attach(self, net: ColdStartNet) -> None:
        log_lr = math.log(self.config.step_size())
        net.inner_log_lr = nn.ParameterDict({n: nn.Parameter(torch.tensor(log_lr)) for n in net.local_names()})

    def inner_lr(self, net: ColdStartNet) -> dict[str, torch.Tensor]:
        return {name: log_lr.exp() for name, log_lr in net.inner_log_lr.items()}


class Proximal(Learner):
    """MAML with a proximal inner objective: support loss + proximal_l2 / 2 * ||phi - theta||^2 per user (the
    meta-transfer regulariser of iMAML, here unrolled and differentiated through), so adaptation stays near the
    initialisation however many steps it takes."""

    name = "proximal"

    def support_loss(self, net: ColdStartNet, objective: Objective, proj: torch.Tensor, support: ItemSet,
                     negatives: Negatives, start: Params) -> LossFn:
        base = super().support_loss(net, objective, proj, support, negatives, start)
        names, l2 = net.local_names(), self.config.proximal_l2

        def loss(p: Params) -> torch.Tensor:
            distance = sum(_per_user_sum((p[n] - start[n]).pow(2)) for n in names)  # (B,)
            return base(p) + 0.5 * l2 * distance
        return loss


class Reptile(Learner):
    """Reptile: the adapted tensors' initialisation moves toward each user's adapted values, (theta - phi) /
    (inner_lr * steps) averaged over the meta-batch, with no query gradient through the steps. The inner loop runs
    on the task's support and query together. The shared embeddings, which are not adapted per user, learn from
    the same task loss at the adapted point (first order)."""

    name = "reptile"
    first_order = True

    def outer_loss(self, net: ColdStartNet, objective: Objective, batch: TaskBatch, user_feats: EncodedFeatures,
                   negatives: Negatives) -> torch.Tensor:
        item_vecs = net.item_vectors()  # (I, Di)
        proj = net.item_projection(item_vecs)  # (I, H)
        task = _union(batch.support, batch.query)
        start = self.start(net, user_feats, item_vecs, batch.support)
        adapted = self.adapt(net, objective, proj, task, negatives, start, training=True)
        names = net.local_names()
        steps = max(self.config.inner_steps, 1) * self.config.step_size()
        pull = sum(_per_user_sum(start[n] * (start[n] - adapted[n]).detach()) for n in names) / steps  # (B,)
        fixed = {k: (v.detach() if k in names else v) for k, v in adapted.items()}
        return pull + objective.support_loss(net, fixed, proj, task, negatives, task.seen())


class Encoder(Learner):
    """Model-based: a permutation-invariant encoder of the support set (DeepSets over [item vector, centred
    rating]) gives each user's vector in one forward pass, replacing the fixed mean pooling (the learner /
    meta-learner pair of the model-based family, TaNP/CNP-like). `inner_steps` gradient steps follow it (MAML's);
    with inner_steps = 0 it is purely amortised, as a neural process is. Needs pool_support."""

    name = "encoder"

    def attach(self, net: ColdStartNet) -> None:
        d, width = net.item_dim, 2 * net.item_dim
        net.set_encoder = nn.ModuleDict({"phi": nn.Sequential(nn.Linear(d + 1, width), nn.ReLU(),
                                                              nn.Linear(width, width)),
                                         "rho": nn.Sequential(nn.ReLU(), nn.Linear(width, width))})

    def start(self, net: ColdStartNet, user_feats: EncodedFeatures, item_vecs: torch.Tensor,
              support: ItemSet) -> Params:
        params = net.user_params(user_feats, item_vecs, support)
        if not net.config.pool_support:
            return params
        mask = support.mask.float().unsqueeze(-1)  # (B, S, 1)
        centred = ((support.ratings - net.rating_center) / net.rating_spread).unsqueeze(-1)  # (B, S, 1)
        pairs = torch.cat([item_vecs[support.items], centred], dim=-1)  # (B, S, Di + 1)
        pooled = (net.set_encoder["phi"](pairs) * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, 2 Di)
        encoded = net.set_encoder["rho"](pooled)  # (B, 2 Di)
        features = params["user"][:, : params["user"].shape[1] - encoded.shape[1]]  # (B, Du_f)
        return {**params, "user": torch.cat([features, encoded], dim=1)}


def _per_user_sum(x: torch.Tensor) -> torch.Tensor:
    """(B,) the sum of each user's slice of `x` (B, ...)."""
    return x.reshape(x.shape[0], -1).sum(1)


def _union(a: ItemSet, b: ItemSet) -> ItemSet:
    """Each user's slots of `a` then `b` (padded slots stay masked)."""
    return ItemSet(torch.cat([a.items, b.items], 1), torch.cat([a.ratings, b.ratings], 1),
                   torch.cat([a.mask, b.mask], 1))


LEARNERS: dict[str, type[Learner]] = {cls.name: cls for cls in (Learner, FOMAML, MetaSGD, Proximal, Reptile, Encoder)}


def make_learner(config: Config, teacher: Teacher | None = None) -> Learner:
    """The learner `config.learner` names (distilling `teacher` in training, when given)."""
    return LEARNERS[config.learner](config, teacher)
