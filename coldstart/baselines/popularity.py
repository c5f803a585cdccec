"""Popularity baselines: `Popularity` (the most-interacted items, the same list for everyone) and
`FeaturePopularity` (popularity among the training users who share a new user's side features).

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import LIKED_RATING
from ..io import Dataset
from ..features import column_kind
from ..ids import IdMap
from .base import _Baseline, _binary, _item_counts, _liked, _pair_sums, _shrunk, _tie_break, _training_log
from .validation import Validation, best


class Popularity(_Baseline):
    """Recommends the items with the most training interactions, the same list for everyone.

    The score is an item's number of interactions in the training log; ties go to the item seen first in training.
    `predict` returns that count, which is not a rating.

    Args:
        min_rating: count only ratings >= this ("popularity_liked": the items people liked, not merely rated).
        recent_share: count only the newest share of the log by timestamp ("popularity_recent": what is popular
            now; the whole log when it has no timestamps).
    """

    name = "popularity"
    rating_predictor = False

    def __init__(self, min_rating: float | None = None, recent_share: float = 1.0):
        self.min_rating = min_rating
        self.recent_share = recent_share
        if recent_share < 1.0:
            self.name = "popularity_recent"
        elif min_rating is not None:
            self.name = "popularity_liked"

    @classmethod
    def tuned(cls, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
              min_rating: float | None = None, grid: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0),
              valid_fraction: float = 0.2, shots: int = 5, k: int = 10, seed: int = 0) -> Popularity:
        """"popularity_recent" with the `recent_share` of `grid` that ranks best on validation users carved from
        `ratings` (`Validation.carve`, as `EASEFoldIn.tuned`), refit on all of it; 1.0 in the grid lets the window
        grow to the whole log. Nothing but `ratings` (and `items`, for the catalogue) is read: pass the training log.

        Args:
            ratings: the training log, or a Dataset.
            items: optional item table; its items join the catalogue.
            min_rating: count only ratings >= this (None: every row).
            grid: the shares of the log tried, each in (0, 1].
            valid_fraction: share of the users held out for validation.
            shots: support size of a held-out user.
            k: the nDCG cut-off.
            seed: draws the held-out users when the log has no `timestamp`.

        Returns:
            A model named "popularity_recent" (whatever share won) fit on all of `ratings`; `tuning_` maps each share
            of `grid` to its mean nDCG@k.
        """
        log, catalogue = _training_log(ratings, items)
        valid = Validation.carve(log, catalogue, None, valid_fraction, shots, k, seed)
        tuning = {share: valid.ndcg(cls(min_rating, share).fit(valid.train, valid.items)) for share in grid}
        model = cls(min_rating, best(tuning)).fit(log, valid.items)
        model.name, model.tuning_ = "popularity_recent", tuning
        return model

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> Popularity:
        """Count each item's interactions.

        Args:
            ratings: the interaction log (`user_id`, `item_id`, ...), or a Dataset.
            items: optional item table; its items join the catalogue with a count of 0.
            users: ignored.
        """
        if not 0 < self.recent_share <= 1:
            raise ValueError(f"Popularity.recent_share must be in (0, 1], found {self.recent_share!r}")
        ratings, self.items_ = _training_log(ratings, items)
        if self.recent_share < 1.0 and "timestamp" in ratings:
            times = ratings["timestamp"].to_numpy(np.float64)
            ratings = ratings[times >= np.quantile(times, 1.0 - self.recent_share)]
        if self.min_rating is not None:
            ratings = ratings[ratings["rating"] >= self.min_rating]
        self.counts_ = _item_counts(ratings, self.items_)  # (I,)
        return self

    def _scores(self, seen: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts_, seen.shape)  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        return self.counts_[items]


class FeaturePopularity(_Baseline):
    """Popularity among the training users who share a new user's side features (gender, occupation, age band...).

    For each value v of each user-feature column, fit counts each item's interactions by the training users with
    that value and divides by their total: share_v(i), which sums to 1 over the items. A new user's score of item i
    is the sum of share_v(i) over its feature values (the `users=` table of `recommend` / `predict`), plus 1e-6 times
    the item's count over the top count, so that users without features, or with values fit never saw, get the
    overall popularity order of the counted interactions. Without a usable user table at fit (none given, or no
    usable column), every user gets that order: `Popularity(min_rating)`'s ranking. The support only excludes items.

    Columns: text, and numbers with at most 20 distinct values, are categories (`25`, `25.0` and `"25"` are one
    value); other numeric columns are cut into 5 quantile bins at fit; label-like text (nearly one value per user,
    e.g. a zip code) and empty columns are skipped. A missing value contributes nothing.

    Args:
        min_rating: count only ratings >= this ("liked"); ignored when the log has a single rating value (an
            implicit log); None counts every interaction.
    """

    name = "popularity_features"
    rating_predictor = False

    def __init__(self, min_rating: float | None = LIKED_RATING):
        self.min_rating = min_rating

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> FeaturePopularity:
        """Count each item's (liked) interactions per user-feature value.

        Args:
            ratings: the interaction log (`user_id`, `item_id`, ...), or a Dataset (whose `users` serve as default).
            items: optional item table; its items join the catalogue with a count of 0.
            users: the training users' features (`user_id` + feature columns).
        """
        if users is None and isinstance(ratings, Dataset):
            users = ratings.users
        ratings, self.items_ = _training_log(ratings, items)
        liked = ratings[_liked(ratings, self.min_rating)]
        users = _user_table(users)
        self.columns_ = _feature_columns(users)
        train_users = IdMap.from_values(ratings["user_id"])
        rows, values = _feature_values(users, self.columns_, train_users.to_list())
        self.values_ = IdMap.from_values(values)
        has = _binary(rows, self.values_.index(values), (len(train_users), len(self.values_)))  # (U, V)
        counts = sp.csr_matrix((np.ones(len(liked)), (train_users.index(liked["user_id"]),
                                                       self.items_.index(liked["item_id"]))),
                               shape=(len(train_users), len(self.items_)))  # (U, I), repeated rows add up
        value_counts = (has.T @ counts).toarray()  # (V, I)
        self.shares_ = _shrunk(value_counts, value_counts.sum(axis=1, keepdims=True), 0.0)  # (V, I)
        self.tie_break_ = _tie_break(_item_counts(liked, self.items_))  # (I,)
        return self

    def _user_features(self, users: pd.DataFrame | None, user_ids: list[str]) -> sp.csr_matrix:
        rows, values = _feature_values(_user_table(users), self.columns_, user_ids)
        cols = self.values_.index(values)
        known = cols >= 0
        return _binary(rows[known], cols[known], (len(user_ids), len(self.values_)))  # (B, V)

    def _scores(self, seen: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
        return features @ self.shares_ + self.tie_break_  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        return _pair_sums(features[users], self.shares_, items) + self.tie_break_[items]


# --- FeaturePopularity helpers -------------------------------------------------------------------------------
_MAX_CATEGORIES = 20
"""A numeric user column with at most this many distinct values is categorical; others are binned."""

_BINS = 5
"""Quantile bins of a many-valued numeric user column."""


def _user_table(users: pd.DataFrame | None) -> pd.DataFrame | None:
    """`users` with string ids (None stays None); a clear error when it has no `user_id` column."""
    if users is None:
        return None
    if "user_id" not in users:
        raise ValueError(f"users: missing column 'user_id'; found columns {list(users.columns)}")
    return users.assign(user_id=users["user_id"].astype(str))


def _feature_columns(users: pd.DataFrame | None) -> dict[str, np.ndarray | None]:
    """The usable columns of a user table: name -> quantile bin edges (many-valued numbers) or None (categories)."""
    if users is None:
        return {}
    return {name: _bin_edges(users[name]) for name in users.columns.drop("user_id")
            if column_kind(users[name]) not in ("label", "empty")}


def _bin_edges(column: pd.Series) -> np.ndarray | None:
    """The quantile bin edges of a numeric column with more than 20 distinct values; None for a categorical one."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if not numeric or column.nunique() <= _MAX_CATEGORIES:
        return None
    numbers = column.astype(np.float64).to_numpy()  # (U,), NaN where missing
    return np.unique(np.nanquantile(numbers, np.linspace(0.0, 1.0, _BINS + 1)[1:-1]))


def _feature_values(users: pd.DataFrame | None, columns: dict[str, np.ndarray | None], user_ids: list[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(row in `user_ids`, "column=value" label) of each feature value of those users in the `columns` of `users`."""
    rows, values = [np.zeros(0, np.int64)], [np.zeros(0, object)]
    if users is None or not columns:
        return rows[0], values[0]
    table = users.drop_duplicates("user_id", keep="last").set_index("user_id")
    table = table.reindex(pd.Index(user_ids, dtype=object))  # missing users: all missing values
    for name, edges in columns.items():
        if name in table:
            labels = _value_labels(table[name], edges)
            known = labels.notna().to_numpy()
            rows.append(np.flatnonzero(known))
            values.append((f"{name}=" + labels[known].astype(str)).to_numpy(object))
    return np.concatenate(rows), np.concatenate(values)


def _value_labels(column: pd.Series, edges: np.ndarray | None) -> pd.Series:
    """Each value's label, missing ones missing: its quantile bin when `edges` are given, else the value itself,
    numbers written alike (`25`, `25.0` and `"25"` are one category)."""
    numbers = pd.to_numeric(column, errors="coerce").astype(np.float64)
    if edges is not None:
        bins = pd.Series(np.searchsorted(edges, numbers.to_numpy(), side="right"), index=column.index)
        return ("bin" + bins.astype(str)).where(numbers.notna())
    return numbers.astype(str).where(numbers.notna(), column.astype("string")).where(column.notna())
