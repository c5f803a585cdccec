"""FittedState: everything `fit` learns, as one value that the recommender uses and `persist` saves and loads."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .config import Config
from .features import EncodedFeatures, FeatureEncoder
from .ids import IdMap
from .learners import Learner, make_learner
from .model import ColdStartNet
from .objectives import Objective, make_objective
from .tasks import UserLog
from .teacher import Teacher, fit_teacher, start_item_ids


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
        teacher: the teacher distilled in meta-training (config.teacher, teacher_weight > 0) while fitting; never
            saved, None in a loaded model.
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
    teacher: Teacher | None = None

    @property
    def learner(self) -> Learner:
        return make_learner(self.config, self.teacher)


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


def initial_state(config: Config, ratings: pd.DataFrame, items: pd.DataFrame | None,
                  users: pd.DataFrame | None) -> FittedState:
    """Everything `fit` learns before meta-training: vocabularies, encoders, the log, the initial network."""
    item_ids, user_ids = _catalogue(ratings["item_id"], items), IdMap.from_values(ratings["user_id"])
    item_encoder, user_encoder = FeatureEncoder.fit(items, "item_id"), FeatureEncoder.fit(users, "user_id")
    times = ratings["timestamp"].to_numpy(np.float64) if "timestamp" in ratings else None
    r = ratings["rating"].to_numpy(np.float32)
    user_idx = user_ids.index(ratings["user_id"])  # (nnz,)
    log_ = UserLog.from_arrays(user_idx, item_ids.index(ratings["item_id"]), r, len(user_ids), times)
    stats = {"min": float(r.min()), "max": float(r.max()), "mean": float(r.mean()),
             "std": float(r.std()) if r.std() > 0 else 1.0}
    objective = make_objective(config.objective, config.positive_rating, config.dislike_below, log_)
    net = build_net(config, len(item_ids), item_encoder, user_encoder,
                    item_encoder.transform(items, item_ids.to_list()), stats)
    net.reset_parameters(torch.Generator().manual_seed(config.seed))
    recent = newest_rows(ratings, user_idx, config.prior_recent_share)
    prior = objective.prior_bias(log_, len(item_ids), stats["mean"], recent)  # training starts at this baseline
    net.start_from_prior(torch.as_tensor(prior, dtype=torch.float32))
    net.to(resolve_device(config.device))
    state = FittedState(config, item_ids, user_ids, item_encoder.labels(items, item_ids.to_list()), item_encoder,
                        user_encoder, user_encoder.transform(users, user_ids.to_list()), log_, stats, objective, net)
    name = config.teacher_for(len(item_ids))
    return with_teacher(state, ratings, name) if name is not None else state


def with_teacher(state: FittedState, ratings: pd.DataFrame, name: str) -> FittedState:
    """`state` with the teacher `name` fitted on the training users (not the validation users): the item-id
    embeddings start from its item factors (teacher_init), and it is kept for distillation when teacher_weight > 0."""
    config = state.config
    liked = config.teacher_min_rating
    liked = liked if liked is not None and len(state.log.ratings) and state.log.ratings.max() >= liked else None
    teacher = fit_teacher(name, state.log, len(state.items), config.seed,
                          leave_out=validation_users(state, ratings), min_rating=liked)
    if config.teacher_init:
        start_item_ids(state.net, teacher)
    keep = teacher.to(state.net.item_bias.device) if config.teacher_weight > 0 else None
    return replace(state, teacher=keep)


def _catalogue(rated: pd.Series, items: pd.DataFrame | None) -> IdMap:
    """The rated items in first-seen order, then the featured items never rated (never a str per rating row:
    `rated` may be Categorical)."""
    ids = IdMap.from_values(rated)
    if items is None:
        return ids
    return IdMap(dict.fromkeys(ids.to_list() + items["item_id"].astype(str).tolist()))


def validation_users(state: FittedState, ratings: pd.DataFrame) -> np.ndarray:
    """(V,) user indices held out of meta-training: the newest `validation_fraction` of the users with 2 or more
    interactions, by first timestamp (a seeded random draw without timestamps)."""
    eligible = np.flatnonzero(state.log.lengths() >= 2)
    n = int(round(state.config.validation_fraction * len(eligible)))
    if "timestamp" in ratings:
        first = ratings.groupby("user_id", observed=True)["timestamp"].min()
        first = first.reindex(state.users.to_list()).to_numpy()
        order = eligible[np.argsort(-first[eligible], kind="stable")]
    else:
        order = np.random.default_rng(state.config.seed).permutation(eligible)
    return np.sort(order[:n])


def newest_rows(ratings: pd.DataFrame, users: np.ndarray, share: float) -> np.ndarray:
    """(nnz,) in the log's row order, True for the rows among the newest `share` of `ratings` by timestamp (every
    row without timestamps). `users` are the rows' user indices."""
    if "timestamp" not in ratings or share >= 1.0:
        return np.ones(len(ratings), dtype=bool)
    times = ratings["timestamp"].to_numpy(np.float64)
    recent = times >= np.quantile(times, 1.0 - share)  # (nnz,) in input order
    return recent[UserLog.row_order(users, times)]
