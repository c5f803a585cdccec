"""MAML with a proximal inner objective (the meta-transfer regulariser of iMAML, unrolled)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..model import ColdStartNet, Params
from ..adapt import LossFn
from ..objectives import Negatives, Objective
from ..tasks import ItemSet
from .base import Learner, per_user_sum


@dataclass(frozen=True)
class ProximalOptions:
    l2: float = 1.0  # weight of ||phi - theta||^2 / 2 in the inner objective

    def __post_init__(self) -> None:
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not self.l2 >= 0:
            raise ConfigError(f"config field 'learner_options.l2': expected a number >= 0 with learner "
                              f"'proximal', found {self.l2!r}")


class Proximal(Learner):
    """Support loss + l2 / 2 * ||phi - theta||^2 per user, differentiated through, so adaptation stays near the
    initialisation however many steps it takes."""

    name = "proximal"
    Options = ProximalOptions
    search_space = {"l2": (0.1, 10.0)}

    def support_loss(self, net: ColdStartNet, objective: Objective, proj: torch.Tensor, support: ItemSet,
                     negatives: Negatives, start: Params) -> LossFn:
        base = super().support_loss(net, objective, proj, support, negatives, start)
        names, l2 = net.local_names(), self.options.l2

        def loss(p: Params) -> torch.Tensor:
            distance = sum(per_user_sum((p[n] - start[n]).pow(2)) for n in names)  # (B,)
            return base(p) + 0.5 * l2 * distance
        return loss
