"""`ItemMeanOffset`: global mean + shrunk item offset + shrunk offset of the new user from its support.

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..io import Dataset
from .base import _Baseline, _check_non_negative, _item_counts, _shrunk, _training_log


class ItemMeanOffset(_Baseline):
    """Predicts global mean + shrunk item offset + shrunk offset of the new user, estimated from its support.

    b_i = sum over the item's training ratings of (r - mu), divided by (n_i + item_shrinkage);
    b_u = sum over the user's known support ratings of (r - mu - b_i), divided by (n_support + shrinkage).
    `predict` clips mu + b_i + b_u to the training rating range. The user offset is the same for every item, so
    the ranking is by item offset alone (the same list for every user, minus its support items); `recommend`'s
    score is the unclipped prediction so that clipping never ties items that the offsets order.

    Args:
        shrinkage: pseudo-count pulling a new user's offset towards 0.
        item_shrinkage: pseudo-count pulling each item's offset towards 0.
    """

    name = "item_mean"
    rating_predictor = True

    def __init__(self, shrinkage: float = 10.0, item_shrinkage: float = 10.0):
        self.shrinkage = shrinkage
        self.item_shrinkage = item_shrinkage

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> ItemMeanOffset:
        """Estimate the global mean, the item offsets and the rating range.

        Args:
            ratings: the rating log (`user_id`, `item_id`, `rating`, ...), or a Dataset.
            items: optional item table; its unrated items join the catalogue with offset 0.
            users: ignored.
        """
        _check_non_negative(self, "shrinkage", "item_shrinkage")
        ratings, self.items_ = _training_log(ratings, items)
        r = ratings["rating"].to_numpy(np.float64)
        item = self.items_.index(ratings["item_id"])
        self.mean_ = float(r.mean())
        residual = np.bincount(item, weights=r - self.mean_, minlength=len(self.items_))  # (I,)
        self.item_offset_ = _shrunk(residual, _item_counts(ratings, self.items_), self.item_shrinkage)  # (I,)
        self.rating_range_ = (float(r.min()), float(r.max()))
        return self

    def _user_offset(self, seen: sp.csr_matrix) -> np.ndarray:
        """(b,) shrunk offsets of new users from their support ratings (rows of `seen`, ratings as data)."""
        residual = seen.data - self.mean_ - self.item_offset_[seen.indices]
        sums = np.asarray(sp.csr_matrix((residual, seen.indices, seen.indptr), shape=seen.shape).sum(axis=1))
        return _shrunk(sums.ravel(), np.diff(seen.indptr), self.shrinkage)

    def _scores(self, seen: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
        return self.mean_ + self.item_offset_[None, :] + self._user_offset(seen)[:, None]  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        raw = self.mean_ + self.item_offset_[items] + self._user_offset(seen)[users]  # (P,)
        return np.clip(raw, *self.rating_range_)
