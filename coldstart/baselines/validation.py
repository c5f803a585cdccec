"""Validation users carved from a training log, on which the `tuned` constructors of the baselines choose their
settings (EASE's l2, the recent-popularity window, a blend's weight) as coldstart's own tuning does: the newest
users of the log are held out, their first ratings are the support and their liked later ratings the query.

Only the log passed in is read: give it the training log, never the evaluation's new users.

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import LIKED_RATING
from ..ids import IdMap
from ..metrics import ranking_metrics
from .base import _Baseline, _binary, _liked, _support_matrix


@dataclass(frozen=True)
class Validation:
    """The held-out users of a training log and how a fitted model ranks for them.

    Attributes:
        train: the rows of the users kept for fitting.
        items: every item of the log's catalogue (`item_id`), to fit with, so that no query item is unknown.
        support: each held-out user's first `shots` rows in time.
        query: each held-out user's later rows rated >= 4 (all of them on a log with a single rating value).
        users: the user-feature table passed to `carve` (held-out users read their own rows of it), or None.
        k: the nDCG cut-off.
    """

    train: pd.DataFrame
    items: pd.DataFrame
    support: pd.DataFrame
    query: pd.DataFrame
    users: pd.DataFrame | None
    k: int

    @classmethod
    def carve(cls, ratings: pd.DataFrame, catalogue: IdMap, users: pd.DataFrame | None = None,
              valid_fraction: float = 0.2, shots: int = 5, k: int = 10, seed: int = 0) -> Validation:
        """Hold out the newest `valid_fraction` of the users of `ratings` by first timestamp (a draw seeded by `seed`
        when the log has no `timestamp`).

        Args:
            ratings: the checked training log (`base._training_log`).
            catalogue: its catalogue.
            users: the training users' features, for models that read them.
            valid_fraction: share of the users held out.
            shots: support size of a held-out user.
            k: the nDCG cut-off.
            seed: draws the held-out users when the log has no `timestamp`.

        Raises:
            ValueError: fewer than one user either side, shots < 1, or no held-out user with a relevant query row.
        """
        every = ratings["user_id"].unique()
        n_valid = round(valid_fraction * len(every))
        if shots < 1 or not 0 < n_valid < len(every):
            raise ValueError(f"validation needs shots >= 1 and 0 < valid_fraction * users < users, found "
                             f"shots={shots}, valid_fraction={valid_fraction} of {len(every)} users")
        if "timestamp" in ratings:
            ratings = ratings.sort_values("timestamp", kind="stable")
            held = ratings["user_id"].unique()[-n_valid:]  # users in order of their first timestamp
        else:
            held = np.random.default_rng(seed).choice(every, size=n_valid, replace=False)
        is_held = ratings["user_id"].isin(held).to_numpy()
        position = ratings.groupby("user_id", sort=False).cumcount().to_numpy()  # each user's rows 0, 1, ... in time
        query = is_held & (position >= shots) & _liked(ratings, LIKED_RATING)
        if not query.any():
            raise ValueError("validation: no held-out user has a relevant query item (too few users or ratings)")
        return cls(ratings[~is_held], pd.DataFrame({"item_id": catalogue.to_list()}),
                   ratings[is_held & (position < shots)], ratings[query], users, k)

    def ndcg(self, model: _Baseline) -> float:
        """Mean nDCG@k of `model`'s top-k lists (catalogue minus support) against the held-out users' relevant query
        items, over the users with at least one."""
        user_ids, seen = _support_matrix(self.support, model.items_)
        features = model._user_features(self.users, user_ids)  # (B, V)
        top, scores = model._rank(seen, features, min(self.k, len(model.items_)), exclude_seen=True)  # (B, k) each
        relevant = _binary(IdMap(user_ids).index(self.query["user_id"]), model.items_.index(self.query["item_id"]),
                           seen.shape)  # (B, I)
        return float(np.nanmean(ranking_metrics(np.where(np.isfinite(scores), top, -1), relevant, self.k)["ndcg"]))


def best(tuning: dict) -> object:
    """The grid value of the highest validation score; the first such value on a tie."""
    return max(tuning, key=tuning.get)
