"""Reptile (Nichol et al. 2018)."""
from __future__ import annotations

import torch

from ..features import EncodedFeatures
from ..model import ColdStartNet
from ..objectives import Negatives, Objective
from ..tasks import ItemSet, TaskBatch
from .base import Learner, per_user_sum


class Reptile(Learner):
    """Reptile: the adapted tensors' initialisation moves toward each user's adapted values, (theta - phi) /
    (inner_lr * steps) averaged over the meta-batch, with no query gradient through the steps. The inner loop runs
    on the task's support and query together. The shared embeddings, which are not adapted per user, learn from
    the same task loss at the adapted point (first order). It has no query loss, so no teacher is distilled."""

    name = "reptile"
    first_order = True
    has_query_loss = False

    def outer_loss(self, net: ColdStartNet, objective: Objective, batch: TaskBatch, user_feats: EncodedFeatures,
                   negatives: Negatives) -> torch.Tensor:
        item_vecs = net.item_vectors()  # (I, Di)
        proj = net.item_projection(item_vecs)  # (I, H)
        task = _union(batch.support, batch.query)
        start = self.start(net, user_feats, item_vecs, batch.support, batch.support_end)
        adapted = self.adapt(net, objective, proj, task, negatives, start, training=True)
        names = net.local_names()
        steps = max(self.config.inner_steps, 1) * self.config.step_size()
        pull = sum(per_user_sum(start[n] * (start[n] - adapted[n]).detach()) for n in names) / steps  # (B,)
        fixed = {k: (v.detach() if k in names else v) for k, v in adapted.items()}
        return pull + objective.support_loss(net, fixed, proj, task, negatives, task.seen())


def _union(a: ItemSet, b: ItemSet) -> ItemSet:
    """Each user's slots of `a` then `b` (padded slots stay masked)."""
    return ItemSet(torch.cat([a.items, b.items], 1), torch.cat([a.ratings, b.ratings], 1),
                   torch.cat([a.mask, b.mask], 1))
