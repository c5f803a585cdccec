"""A model-based learner: a set encoder of the support gives each user's vector (TaNP/CNP-like)."""
from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..features import EncodedFeatures
from ..model import ColdStartNet, Params
from ..tasks import ItemSet
from .base import Learner, kaiming_uniform_


class Encoder(Learner):
    """Model-based: a permutation-invariant encoder of the support set (DeepSets over [item vector, centred
    rating]) gives each user's vector in one forward pass, replacing the fixed mean pooling (the learner /
    meta-learner pair of the model-based family, TaNP/CNP-like). `inner_steps` gradient steps follow it (MAML's);
    with inner_steps = 0 it is purely amortised, as a neural process is. Needs pool_support."""

    name = "encoder"

    @classmethod
    def check(cls, config: Config, options: object) -> None:
        if not config.pool_support:
            raise ConfigError("config field 'pool_support': expected true with learner 'encoder' (it encodes the "
                              "support set in place of the pooling), found false")

    def attach(self, net: ColdStartNet) -> None:
        d, width = net.item_dim, 2 * net.item_dim
        net.set_encoder = nn.ModuleDict({"phi": nn.Sequential(nn.Linear(d + 1, width), nn.ReLU(),
                                                              nn.Linear(width, width)),
                                         "rho": nn.Sequential(nn.ReLU(), nn.Linear(width, width))})

    def reset(self, net: ColdStartNet, generator: torch.Generator) -> None:
        for name, p in net.set_encoder.named_parameters():
            if name.endswith(".weight"):
                kaiming_uniform_(p, generator)
            else:
                with torch.no_grad():
                    p.zero_()

    def start(self, net: ColdStartNet, user_feats: EncodedFeatures, item_vecs: torch.Tensor,
              support: ItemSet, times: torch.Tensor | None = None) -> Params:
        params = net.user_params(user_feats, item_vecs, support, times)
        mask = support.mask.float().unsqueeze(-1)  # (B, S, 1)
        centred = ((support.ratings - net.rating_center) / net.rating_spread).unsqueeze(-1)  # (B, S, 1)
        pairs = torch.cat([item_vecs[support.items], centred], dim=-1)  # (B, S, Di + 1)
        pooled = (net.set_encoder["phi"](pairs) * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, 2 Di)
        encoded = net.set_encoder["rho"](pooled)  # (B, 2 Di)
        features = params["user"][:, : params["user"].shape[1] - encoded.shape[1]]  # (B, Du_f)
        return {**params, "user": torch.cat([features, encoded], dim=1)}
