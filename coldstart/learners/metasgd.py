"""Meta-SGD (Li et al. 2017): learned inner step sizes."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..model import ColdStartNet
from .base import Learner


class MetaSGD(Learner):
    """Meta-SGD: one meta-learned step size per adapted tensor (in log space, starting at inner_lr)."""

    name = "metasgd"

    @classmethod
    def check(cls, config: Config, options: object) -> None:
        if not config.step_size() > 0:
            raise ConfigError(f"config field 'inner_lr': expected a number > 0 with learner 'metasgd' (its step "
                              f"sizes are learned in log space), found {config.inner_lr!r}")

    def attach(self, net: ColdStartNet) -> None:
        log_lr = math.log(self.config.step_size())
        net.inner_log_lr = nn.ParameterDict({n: nn.Parameter(torch.tensor(log_lr)) for n in net.local_names()})

    def reset(self, net: ColdStartNet, generator: torch.Generator) -> None:
        with torch.no_grad():
            for p in net.inner_log_lr.values():
                p.fill_(math.log(self.config.step_size()))

    def inner_lr(self, net: ColdStartNet) -> dict[str, torch.Tensor]:
        return {name: log_lr.exp() for name, log_lr in net.inner_log_lr.items()}
