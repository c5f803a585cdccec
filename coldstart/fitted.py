"""FittedState: everything `fit` learns, as one value that the recommender uses and `persist` saves and loads."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .config import TEACHER_MAX_ITEMS, Config
from .features import EncodedFeatures, FeatureEncoder
from .ids import IdMap
from .learners import learner_class, make_learner
from .learners.base import Learner
from .model import ColdStartNet
from .objectives import Objective, make_objective
from .priors import choose_l2, fit_priors
from .tasks import UserLog
from .teacher import Teacher, fit_teacher, start_item_ids

log = logging.getLogger(__name__)


@dataclass
class FittedState:
    """A fitted coldstart model.

    Attributes:
        config: the hyperparameters it was trained with, settled (`resolve`): no field left to "auto"/None that
            the data decides.
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


def resolve(config: Config, n_items: int, has_item_features: bool, objective: Objective) -> Config:
    """`config` with every setting the data decides settled, as the fitted model records it: the inner step size,
    item ids, the teacher, the learner's options with their defaults, and the objective's thresholds."""
    learner = learner_class(config.learner)
    options = dataclasses.asdict(learner.options_of(config))
    channels = [c for c in config.prior_channels() if c != "ease" or n_items <= TEACHER_MAX_ITEMS]  # EASE: I x I
    return config.replace(inner_lr=config.step_size(), use_item_ids=config.uses_item_ids(has_item_features),
                          teacher=config.teacher_for(n_items, learner.has_query_loss), learner_options=options,
                          priors=",".join(channels) or "none",
                          positive_rating=getattr(objective, "positive_rating", config.positive_rating),
                          dislike_below=getattr(objective, "dislike_below", config.dislike_below))


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; `cuda` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device (use --device auto or cpu)")
    return torch.device(device)


def initial_state(config: Config, ratings: pd.DataFrame, items: pd.DataFrame | None,
                  users: pd.DataFrame | None) -> FittedState:
    """Everything `fit` learns before meta-training: vocabularies, encoders, the log, the settled config, the
    initial network (and the teacher, when one applies)."""
    item_ids, user_ids = _catalogue(ratings["item_id"], items), IdMap.from_values(ratings["user_id"])
    item_encoder, user_encoder = FeatureEncoder.fit(items, "item_id"), FeatureEncoder.fit(users, "user_id")
    times = ratings["timestamp"].to_numpy(np.float64) if "timestamp" in ratings else None
    r = ratings["rating"].to_numpy(np.float32)
    user_idx = user_ids.index(ratings["user_id"])  # (nnz,)
    log_ = UserLog.from_arrays(user_idx, item_ids.index(ratings["item_id"]), r, len(user_ids), times)
    stats = {"min": float(r.min()), "max": float(r.max()), "mean": float(r.mean()),
             "std": float(r.std()) if r.std() > 0 else 1.0}
    objective = make_objective(config.objective, config.positive_rating, config.dislike_below, log_)
    item_feats = item_encoder.transform(items, item_ids.to_list())
    config = resolve(config, len(item_ids), bool(item_encoder.to_dict()["fields"]), objective)
    liked = _liked_rows(log_, objective)
    if "ease" in config.prior_channels() and config.prior_l2 is None:
        l2, tried = choose_l2(log_, _first_times(log_), liked, len(item_ids), seed=config.seed)
        log.info("priors: EASE l2 %g chosen on validation users (nDCG@10 %s)", l2,
                 ", ".join(f"{k:g}: {v:.4f}" for k, v in tried.items()))
        config = config.replace(prior_l2=l2)
    net = build_net(config, len(item_ids), item_encoder, user_encoder, item_feats, stats)
    generator = torch.Generator().manual_seed(config.seed)
    net.reset_parameters(generator)
    make_learner(config).reset(net, generator)
    recent = newest_rows(ratings, user_idx, config.prior_recent_share)
    prior = objective.prior_bias(log_, len(item_ids), stats["mean"], recent)  # training starts at this baseline
    net.start_from_prior(torch.as_tensor(prior, dtype=torch.float32))
    user_feats = user_encoder.transform(users, user_ids.to_list())
    if net.priors is not None:
        fit_priors(net.priors, log_, log_.times, liked, user_feats, config.prior_channels(), config.prior_l2 or 0.0)
    net.to(resolve_device(config.device))
    state = FittedState(config, item_ids, user_ids, item_encoder.labels(items, item_ids.to_list()), item_encoder,
                        user_encoder, user_feats, log_, stats, objective, net)
    return with_teacher(state) if config.teacher != "none" else state


def with_teacher(state: FittedState) -> FittedState:
    """`state` with its config's teacher fitted on the training log: the item-id embeddings start from its item
    factors, and it is kept for distillation when teacher_weight > 0."""
    config, began = state.config, time.perf_counter()
    log.info("teacher: fitting %s on %d users x %d items", config.teacher.upper(), len(state.users),
             len(state.items))
    teacher = fit_teacher(config.teacher, state.log, len(state.items), config.seed, config.teacher_rank)
    log.info("teacher: %s fitted in %.1f s", config.teacher.upper(), time.perf_counter() - began)
    start_item_ids(state.net, teacher)
    keep = teacher.to(state.net.item_bias.device) if config.teacher_weight > 0 else None
    return replace(state, teacher=keep)


def _liked_rows(log_: UserLog, objective: Objective) -> np.ndarray:
    """(nnz,) the log rows the objective's query counts as liked (every row without a threshold)."""
    threshold = getattr(objective, "positive_rating", None)
    return np.ones(len(log_.items), bool) if threshold is None else log_.ratings >= threshold


def _first_times(log_: UserLog) -> np.ndarray | None:
    """(U,) each user's first timestamp (its rows are in time order), or None without times."""
    if log_.times is None:
        return None
    starts = log_.indptr[:-1]
    return np.where(log_.lengths() > 0, log_.times[np.minimum(starts, max(len(log_.times) - 1, 0))], np.inf)


def _catalogue(rated: pd.Series, items: pd.DataFrame | None) -> IdMap:
    """The rated items in first-seen order, then the featured items never rated (never a str per rating row:
    `rated` may be Categorical)."""
    ids = IdMap.from_values(rated)
    if items is None:
        return ids
    return IdMap(dict.fromkeys(ids.to_list() + items["item_id"].astype(str).tolist()))


def newest_rows(ratings: pd.DataFrame, users: np.ndarray, share: float) -> np.ndarray:
    """(nnz,) in the log's row order, True for the rows among the newest `share` of `ratings` by timestamp (every
    row without timestamps). `users` are the rows' user indices."""
    if "timestamp" not in ratings or share >= 1.0:
        return np.ones(len(ratings), dtype=bool)
    times = ratings["timestamp"].to_numpy(np.float64)
    recent = times >= np.quantile(times, 1.0 - share)  # (nnz,) in input order
    return recent[UserLog.row_order(users, times)]
