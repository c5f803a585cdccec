"""ColdStartRecommender: fit / recommend / predict / save / load, DataFrames in and out, ids only at the edges.

Dimension letters: B users, I items in the catalogue, k items returned per user.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import persist
from .adapt import adapt_detached, objective_loss
from .config import Config
from .data import Dataset
from .ids import IdMap
from .features import EncodedFeatures, FeatureEncoder, features_to, select_rows
from .meta import StepReport, meta_train, own_items, sample_negatives
from .model import ColdStartNet
from .tasks import TaskBatch, UserLog, support_batch, user_rows

log = logging.getLogger(__name__)

PRIOR_SHRINKAGE = 10.0  # pseudo-ratings that pull a rarely rated item's starting offset towards the global mean


class NotFittedError(RuntimeError):
    """The recommender was used before `fit` or `load`."""


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; `cuda` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device (use --device auto or cpu)")
    return torch.device(device)


class ColdStartRecommender:
    """Meta-learns an initialisation across known users; adapts it to each new user's support ratings.

    Learned state (after `fit` or `load`) ends in an underscore; `recommend` and `predict` never change it.
    """

    name = "coldstart"

    def __init__(self, config: Config | None = None, **overrides):
        config = config or Config()
        self.config = config.replace(**overrides) if overrides else config

    @property
    def rating_predictor(self) -> bool:
        """Whether `predict` returns ratings on the data's scale (objective "rating")."""
        return self.config.objective == "rating"

    def with_adaptation(self, inner_steps: int, inner_lr: float | None = None) -> ColdStartRecommender:
        """A view of this fitted model that adapts new users with other inner-loop settings (shares the weights;
        e.g. plain fine-tuning of a network trained without meta-learning)."""
        self._check_fitted()
        view = copy.copy(self)
        view.config = self.config.replace(inner_steps=inner_steps, learn_inner_lr=False,
                                          inner_lr=self.config.step_size() if inner_lr is None else inner_lr)
        return view

    # --- fitting ---------------------------------------------------------------------------------------------
    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None, on_step: Callable[[StepReport], None] | None = None
            ) -> ColdStartRecommender:
        """Meta-train on a ratings log (`user_id`, `item_id`, optional `rating`, `timestamp`).

        Args:
            ratings: the interaction log, or a Dataset (whose feature tables are used unless given here).
            items: optional item features (`item_id` + feature columns).
            users: optional user features (`user_id` + feature columns).
            on_step: called after every meta-step (progress display).
        """
        if isinstance(ratings, Dataset):
            items = ratings.items if items is None else items
            users = ratings.users if users is None else users
            ratings = ratings.ratings
        ratings = _check_frame(ratings, "ratings")
        self._initialise(ratings, items, users)
        self.summary_ = meta_train(self.net_, self.log_, features_to(self.user_feats_, self.device_), self.config,
                                   np.random.default_rng(self.config.seed), self.device_, on_step,
                                   self._validation_users(ratings))
        self.summary_.update(n_ratings=len(ratings), n_users=len(self.users_), n_items=len(self.items_),
                             device=str(self.device_))
        return self

    def _initialise(self, ratings: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None) -> None:
        """Everything `fit` learns before meta-training: vocabularies, encoders, the log, the initial network."""
        cfg = self.config
        self.device_ = resolve_device(cfg.device)
        catalogue = ratings["item_id"] if items is None else pd.concat([ratings["item_id"], items["item_id"].astype(str)])
        self.items_ = IdMap.from_values(catalogue)
        self.users_ = IdMap.from_values(ratings["user_id"])
        self.item_encoder_ = FeatureEncoder.fit(items, "item_id")
        self.user_encoder_ = FeatureEncoder.fit(users, "user_id")
        self.item_labels_ = self.item_encoder_.labels(items, self.items_.to_list())
        self.user_feats_ = self.user_encoder_.transform(users, self.users_.to_list())
        times = ratings["timestamp"].to_numpy(np.float64) if "timestamp" in ratings else None
        r = ratings["rating"].to_numpy(np.float32)
        self.log_ = UserLog.from_arrays(self.users_.index(ratings["user_id"]), self.items_.index(ratings["item_id"]),
                                        r, len(self.users_), times)
        self.rating_stats_ = {"min": float(r.min()), "max": float(r.max()), "mean": float(r.mean()),
                              "std": float(r.std()) if r.std() > 0 else 1.0}
        self.net_ = self._build_net(self.item_encoder_.transform(items, self.items_.to_list()))
        self.net_.reset_parameters(torch.Generator().manual_seed(cfg.seed))
        if cfg.init_from_prior:
            self.net_.start_from_prior(torch.as_tensor(self._prior_bias(), dtype=torch.float32))
        self.net_.to(self.device_)
        self.summary_ = {}

    def _validation_users(self, ratings: pd.DataFrame) -> np.ndarray:
        """(V,) user indices held out of meta-training: the newest `validation_fraction` of the users with 2 or more
        interactions, by first timestamp (a seeded random draw without timestamps)."""
        eligible = np.flatnonzero(self.log_.lengths() >= 2)
        n = int(round(self.config.validation_fraction * len(eligible)))
        if "timestamp" in ratings:
            first = ratings.groupby("user_id")["timestamp"].min().reindex(self.users_.to_list()).to_numpy()
            order = eligible[np.argsort(-first[eligible], kind="stable")]
        else:
            order = np.random.default_rng(self.config.seed).permutation(eligible)
        return np.sort(order[:n])

    def _prior_bias(self) -> np.ndarray:
        """(I,) per-item starting bias: centred log(1 + count) ("implicit"), or the item's mean rating offset
        shrunk towards 0 by PRIOR_SHRINKAGE pseudo-ratings ("rating")."""
        items, ratings = self.log_.items, self.log_.ratings
        counts = np.bincount(items, minlength=len(self.items_)).astype(np.float64)
        if self.config.objective == "rating":
            sums = np.bincount(items, weights=ratings - self.rating_stats_["mean"], minlength=len(self.items_))
            return sums / (counts + PRIOR_SHRINKAGE)
        log_pop = np.log1p(counts)
        return log_pop - log_pop.mean()

    def _build_net(self, item_feats: EncodedFeatures) -> ColdStartNet:
        stats = self.rating_stats_
        offset = stats["mean"] if self.config.objective == "rating" else 0.0
        return ColdStartNet(len(self.items_), self.item_encoder_, self.user_encoder_, item_feats, self.config,
                            global_mean=offset, rating_center=stats["mean"], rating_spread=stats["std"])

    # --- recommending ----------------------------------------------------------------------------------------
    def recommend(self, support: pd.DataFrame, k: int = 10, exclude_seen: bool = True,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-k items for every user in `support` (`user_id`, `item_id`, optional `rating`), in one batched pass.

        Each user is treated as new: adapted on its rows of `support`, with features from `users` when given.
        Returns columns `user_id, rank, item_id, score`, users in order of first appearance.
        """
        user_ids, batch = self._support_batch(support)
        return self._top_k(user_ids, batch, self._new_user_feats(users, user_ids), k, exclude_seen)

    def recommend_known(self, user_ids: list[str], k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-k items for users seen in training, each adapted on its whole logged history."""
        self._check_fitted()
        idx = self.users_.index(pd.Series(user_ids, dtype=object))
        if (idx < 0).any():
            missing = [u for u, i in zip(user_ids, idx) if i < 0][:5]
            raise KeyError(f"unknown user id(s) {', '.join(map(repr, missing))}: not in the training data")
        seg, _, rows = user_rows(self.log_, idx)
        batch = support_batch(self.log_.items[rows], self.log_.ratings[rows], seg, len(idx), users=idx)
        feats = select_rows(self.user_feats_, torch.as_tensor(idx))
        return self._top_k(list(user_ids), batch, feats, k, exclude_seen)

    def predict(self, support: pd.DataFrame, pairs: pd.DataFrame, users: pd.DataFrame | None = None
                ) -> pd.DataFrame:
        """Scores for (user_id, item_id) `pairs`, each user first adapted on its rows of `support`.

        With objective "rating" the prediction is a rating clipped to the training scale; with "implicit" it is the
        ranking score. Users absent from `support` get the unadapted initialisation; unknown items get NaN.
        """
        pairs = _check_frame(pairs, "pairs", need_rating=False)
        support = _check_frame(support, "support")
        extra = pairs.loc[~pairs["user_id"].isin(support["user_id"]), ["user_id"]].drop_duplicates()
        user_ids, batch = self._support_batch(support, extra_users=extra["user_id"].tolist())
        feats = self._new_user_feats(users, user_ids)
        row_of = IdMap(user_ids)
        out = np.full(len(pairs), np.nan)
        p_user = row_of.index(pairs["user_id"])
        p_item = self.items_.index(pairs["item_id"])
        for rows, scores in self._adapted_scores(batch, feats):
            sel = np.flatnonzero(np.isin(p_user, rows) & (p_item >= 0))
            local = p_user[sel] - rows[0]
            out[sel] = scores[torch.as_tensor(local), torch.as_tensor(p_item[sel])].cpu().numpy()
        if self.config.objective == "rating":
            out = np.clip(out, self.rating_stats_["min"], self.rating_stats_["max"])
        if (p_item < 0).any():
            log.warning("%d pair(s) name items the model does not know: their prediction is NaN", (p_item < 0).sum())
        return pd.DataFrame({"user_id": pairs["user_id"].to_numpy(), "item_id": pairs["item_id"].to_numpy(),
                             "prediction": out})

    def item_label(self, item_ids: list[str]) -> list[str] | None:
        """Human-readable labels (e.g. titles) of items, when the training data had them."""
        if self.item_labels_ is None:
            return None
        idx = self.items_.index(pd.Series(item_ids, dtype=object))
        return [self.item_labels_[i] if i >= 0 else "" for i in idx]

    # --- internals -------------------------------------------------------------------------------------------
    def _support_batch(self, support: pd.DataFrame, extra_users: list[str] | None = None
                       ) -> tuple[list[str], TaskBatch]:
        """Support rows -> one padded batch; unknown items are dropped with a warning that counts them."""
        self._check_fitted()
        support = _check_frame(support, "support")
        user_ids = list(dict.fromkeys(support["user_id"].tolist() + (extra_users or [])))
        seg = IdMap(user_ids).index(support["user_id"])
        items = self.items_.index(support["item_id"])
        known = items >= 0
        if not known.all():
            log.warning("dropped %d support row(s) whose item the model does not know", int((~known).sum()))
        ratings = support["rating"].to_numpy(np.float32)
        return user_ids, support_batch(items[known], ratings[known], seg[known], len(user_ids))

    def _new_user_feats(self, users: pd.DataFrame | None, user_ids: list[str]) -> EncodedFeatures:
        if users is None:
            return self.user_encoder_.empty(len(user_ids))
        users = users.assign(user_id=users["user_id"].astype(str))
        return self.user_encoder_.transform(users, user_ids)

    def _adapted_scores(self, batch: TaskBatch, feats: EncodedFeatures) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yields (user rows, (b, I) scores of the whole catalogue) chunk by chunk, each user adapted on its support."""
        cfg, net = self.config, self.net_
        negatives = sample_negatives(len(self.items_), cfg.n_negatives, np.random.default_rng(cfg.seed))
        negatives = negatives.to(self.device_)
        with torch.no_grad():
            item_vecs = net.item_vectors()  # (I, Di)
        for start in range(0, len(batch), cfg.eval_batch_size):
            rows = np.arange(start, min(start + cfg.eval_batch_size, len(batch)))
            sub = _slice_batch(batch, rows).to(self.device_)
            sub_feats = features_to(select_rows(feats, torch.as_tensor(rows)), self.device_)
            with torch.no_grad():
                start = net.user_params(sub_feats, item_vecs, sub.support_items, sub.support_ratings,
                                        sub.support_mask)
            loss = objective_loss(net, cfg, item_vecs, sub.support_items, sub.support_ratings,
                                  sub.support_mask, negatives, own_items(sub), cfg.inner_reduction)
            params = adapt_detached(start, net.local_names(), loss, cfg.inner_steps,
                                    net.inner_lr() if cfg.learn_inner_lr else cfg.step_size())
            with torch.no_grad():
                yield rows, net.scores(params, item_vecs, None)  # (b, I)

    def _top_k(self, user_ids: list[str], batch: TaskBatch, feats: EncodedFeatures, k: int,
               exclude_seen: bool) -> pd.DataFrame:
        if k < 1:
            raise ValueError(f"k must be a positive integer, found {k}")
        k = min(k, len(self.items_))
        users, ranks, items, scores = [], [], [], []
        for rows, s in self._adapted_scores(batch, feats):
            if exclude_seen:
                sup = batch.support_items[rows].to(s.device)  # (b, S)
                mask = batch.support_mask[rows].to(s.device)
                s = s.scatter(1, sup, torch.where(mask, float("-inf"), s.gather(1, sup)))
            top_s, top_i = torch.topk(s, k, dim=1)  # (b, k)
            keep = torch.isfinite(top_s).cpu().numpy()
            users.append(np.repeat(rows, k)[keep.ravel()])
            ranks.append(np.tile(np.arange(1, k + 1), len(rows))[keep.ravel()])
            items.append(top_i.cpu().numpy().ravel()[keep.ravel()])
            scores.append(top_s.cpu().numpy().ravel()[keep.ravel()])
        u, i = np.concatenate(users), np.concatenate(items)
        return pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object)[u], "rank": np.concatenate(ranks),
                             "item_id": self.items_.ids(i), "score": np.concatenate(scores).astype(np.float64)})

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("this ColdStartRecommender is not fitted yet: call fit() or load() first")

    # --- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model directory (weights.safetensors + model.json) atomically; returns its path."""
        self._check_fitted()
        return persist.save_model(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> ColdStartRecommender:
        """Read a model directory written by `save` (never unpickles); `device` overrides the saved config's."""
        return persist.load_model(cls, Path(path), device)


def _slice_batch(batch: TaskBatch, rows: np.ndarray) -> TaskBatch:
    idx = torch.as_tensor(rows)
    return TaskBatch(*(getattr(batch, name)[idx] for name in (
        "support_items", "support_ratings", "support_mask", "query_items", "query_ratings", "query_mask", "users")))


def _check_frame(df: pd.DataFrame, what: str, need_rating: bool = True) -> pd.DataFrame:
    """A copy with string ids and a float rating (1.0 when absent); a clear error for missing columns / NaN ids."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, found {type(df).__name__}")
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; found columns {list(df.columns)}")
    for col in ("user_id", "item_id"):
        if df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise ValueError(f"{what}: row {row}, column '{col}': expected an id, found a missing value")
    out = df.assign(user_id=df["user_id"].astype(str).astype(object), item_id=df["item_id"].astype(str).astype(object))
    if need_rating:
        rating = pd.to_numeric(out["rating"], errors="coerce") if "rating" in out else pd.Series(1.0, index=out.index)
        if rating.isna().any():
            row = int(np.flatnonzero(rating.isna().to_numpy())[0])
            raise ValueError(f"{what}: row {row}, column 'rating': expected a number, found {out['rating'].iloc[row]!r}")
        out["rating"] = rating.astype(np.float64)
    return out.reset_index(drop=True)
