"""The Learner base class: second-order MAML, which every other learner of this package changes in one place.

Dimension letters: B users of a meta-batch.

A learner has two halves, used by training (`train.py`) and by every prediction (`recommender.py`) alike:
    adapt       support set -> per-user parameters (the inner loop; pure, never mutates the net)
    outer_loss  a scalar whose gradient is the learner's meta-update of the net (the outer loop)

A learner owns its options (`Options`, a frozen dataclass filled from `Config.learner_options`) and their checks.
A learner that needs parameters of its own (step sizes, an encoder) adds them to the net in `attach` and
initialises them in `reset`, so that they are trained, saved and loaded with it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..adapt import LossFn, adapt, adapt_detached
from ..config import Config
from ..errors import ConfigError
from ..features import EncodedFeatures
from ..model import ColdStartNet, Params
from ..objectives import Negatives, Objective
from ..tasks import ItemSet, TaskBatch
from ..teacher import Teacher, batch_distillation


@dataclass(frozen=True)
class NoOptions:
    """A learner without options of its own."""


class Learner:
    """MAML (second order): SGD steps on the support loss, differentiated through by the query loss."""

    name: ClassVar[str] = "maml"
    first_order: ClassVar[bool] = False
    has_query_loss: ClassVar[bool] = True  # its outer loss is a query loss a teacher can be distilled into
    Options: ClassVar[type] = NoOptions  # its own options (`Config.learner_options`), with their defaults
    search_space: ClassVar[dict[str, tuple[float, float]]] = {}  # option -> (low, high) for `coldstart tune`
    #                                                               (drawn on a log scale)

    def __init__(self, config: Config, teacher: Teacher | None = None):
        self.config = config
        self.options = self.options_of(config)
        self.teacher = teacher  # distilled into the outer loss (config.teacher_weight); None: no teacher term

    # --- options and checks ----------------------------------------------------------------------------------
    @classmethod
    def options_of(cls, config: Config) -> Any:
        """`config.learner_options` as this learner's Options (defaults filled in); unknown keys are errors."""
        known = [f.name for f in dataclasses.fields(cls.Options)]
        unknown = sorted(set(config.learner_options) - set(known))
        if unknown:
            raise ConfigError(f"config field 'learner_options': learner {cls.name!r} has no option "
                              f"{', '.join(map(repr, unknown))}; expected some of: {', '.join(known) or 'none'}")
        options = cls.Options(**config.learner_options)
        cls.check(config, options)
        return options

    @classmethod
    def check(cls, config: Config, options: Any) -> None:
        """Raise ConfigError when `config` does not suit this learner (nothing to check here)."""

    # --- the learner's own parameters ------------------------------------------------------------------------
    def attach(self, net: ColdStartNet) -> None:
        """Add the learner's own parameters to `net` (none here)."""

    def reset(self, net: ColdStartNet, generator: torch.Generator) -> None:
        """Initialise the parameters `attach` added (after the net's own: one seeded stream)."""

    # --- the inner loop ----------------------------------------------------------------------------------------
    def start(self, net: ColdStartNet, user_feats: EncodedFeatures, item_vecs: torch.Tensor,
              support: ItemSet, times: torch.Tensor | None = None) -> Params:
        """Each user's starting point of the inner loop; `times` (B,) when each support ended (None: now)."""
        return net.user_params(user_feats, item_vecs, support, times)

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
        scale = start.get("step")  # (B,) the gate's step size of each user, with priors
        if not training:
            return adapt_detached(start, names, loss, steps, lr, scale)
        return adapt(start, names, loss, steps, lr, first_order=self.first_order, scale=scale)

    def adapted(self, net: ColdStartNet, objective: Objective, batch: TaskBatch, user_feats: EncodedFeatures,
                negatives: Negatives, training: bool) -> tuple[Params, torch.Tensor]:
        """Each task's parameters after adaptation on its support, and the catalogue's (I, H) projection."""
        item_vecs = net.item_vectors()  # (I, Di)
        proj = net.item_projection(item_vecs)  # (I, H)
        start = self.start(net, user_feats, item_vecs, batch.support, batch.support_end)
        return self.adapt(net, objective, proj, batch.support, negatives, start, training), proj

    # --- the outer loop ----------------------------------------------------------------------------------------
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


def per_user_sum(x: torch.Tensor) -> torch.Tensor:
    """(B,) the sum of each user's slice of `x` (B, ...)."""
    return x.reshape(x.shape[0], -1).sum(1)


def kaiming_uniform_(p: torch.Tensor, generator: torch.Generator) -> None:
    """Fill a (out, in) weight with U(-b, b), b = sqrt(6 / in), from `generator`."""
    bound = (6.0 / p.shape[1]) ** 0.5
    with torch.no_grad():
        p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
