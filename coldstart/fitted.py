"""FittedState: everything `fit` learns, as one value that the recommender uses and `persist` saves and loads."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import Config
from .features import EncodedFeatures, FeatureEncoder
from .ids import IdMap
from .learners import Learner, make_learner
from .model import ColdStartNet
from .objectives import Objective
from .tasks import UserLog


@dataclass
class FittedState:
    """A fitted coldstart model.

    Attributes:
        config: the hyperparameters it was trained with.
        items, users: the catalogue and the training users (ids <-> indices).
        item_labels: a label per item (e.g. its title), or None.
        item_encoder, user_encoder: how side features are encoded.
        user_feats: the training users' encoded features.
        log: the training users' histories (what `recommend_known` adapts on).
        rating_stats: min, max, mean and std of the training ratings.
        objective: the loss the model was trained on (with its resolved positive_rating).
        net: the network, on its device.
        summary: what the fit did (a TrainingSummary's dict, plus data sizes).
    """

    config: Config
    items: IdMap
    users: IdMap
    item_labels: list[str] | None
    item_encoder: FeatureEncoder
    user_encoder: FeatureEncoder
    user_feats: EncodedFeatures
    log: UserLog
    rating_stats: dict
    objective: Objective
    net: ColdStartNet
    summary: dict = field(default_factory=dict)

    @property
    def learner(self) -> Learner:
        return make_learner(self.config)


def build_net(config: Config, n_items: int, item_encoder: FeatureEncoder, user_encoder: FeatureEncoder,
              item_feats: EncodedFeatures, rating_stats: dict) -> ColdStartNet:
    """The network of `config` (with its learner's own parameters), not yet initialised."""
    offset = rating_stats["mean"] if config.objective == "rating" else 0.0
    net = ColdStartNet(n_items, item_encoder, user_encoder, item_feats, config, global_mean=offset,
                       rating_center=rating_stats["mean"], rating_spread=rating_stats["std"])
    make_learner(config).attach(net)
    return net


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; `cuda` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device (use --device auto or cpu)")
    return torch.device(device)
