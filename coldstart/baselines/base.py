"""The plumbing the baselines share: `_Baseline` (`recommend` and `predict` over chunks of the (B, I) score
matrix, built on each subclass's `_scores` or `_rank` and `_pair_scores`) and the helpers that more than one
baseline uses (the training log and its catalogue, support matrices, top-k lists, shrunk means, tie-breaks).

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ..io import Dataset
from ..frames import check_frame as _check_frame, support_rows
from ..ids import IdMap
from ..errors import NotFittedError
from ..scoring import ranked_frame, top_k
from ..tasks import segment_positions

log = logging.getLogger(__name__)

_CELLS_PER_CHUNK = 1 << 22
"""Upper bound on the cells of one dense (b, I) score block in `recommend`."""

_TIE_BREAK = 1e-6
"""Weight of the popularity share (at most 1) added to scores so that ties, and users with nothing to go on, follow
the popularity order."""


class _Baseline:
    """Shared `recommend` / `predict` plumbing; subclasses define `fit`, `_scores` (or `_rank`) and `_pair_scores`,
    and `_user_features` when they read the new users' side features."""

    name: str = "baseline"
    rating_predictor: bool = False

    def recommend(self, support: pd.DataFrame, k: int = 10, exclude_seen: bool = True,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-k items for every user in `support` (`user_id`, `item_id`, optional `rating`), all users at once.

        Args:
            support: each user's known ratings; support items the model does not know are dropped with a warning.
            k: list length (capped at the catalogue size).
            exclude_seen: leave each user's support items out of its list.
            users: the new users' side features (`user_id` + feature columns); read only by models that use them.

        Returns:
            Columns `user_id, rank, item_id, score`, users in order of first appearance, score descending.
        """
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be a positive integer, found {k}")
        user_ids, seen = _support_matrix(support, self.items_)
        features = self._user_features(users, user_ids)  # (B, V)
        top, scores = self._rank(seen, features, min(k, len(self.items_)), exclude_seen)  # (B, k), (B, k)
        return ranked_frame(user_ids, self.items_, top, scores)

    def predict(self, support: pd.DataFrame, pairs: pd.DataFrame, users: pd.DataFrame | None = None
                ) -> pd.DataFrame:
        """Scores of (user_id, item_id) `pairs`, each user described by its rows of `support`.

        Users absent from `support` are scored as users with an empty support; unknown items get NaN.

        Args:
            support: each user's known ratings.
            pairs: the (user_id, item_id) rows to score.
            users: the new users' side features (`user_id` + feature columns); read only by models that use them.

        Returns:
            Columns `user_id, item_id, prediction`, one row per row of `pairs`, in its order.
        """
        self._check_fitted()
        pairs = _check_frame(pairs, "pairs", need_rating=False)
        user_ids, seen = _support_matrix(support, self.items_, extra_users=pairs["user_id"])
        features = self._user_features(users, user_ids)  # (B, V)
        p_user = IdMap(user_ids).index(pairs["user_id"])  # (P,)
        p_item = self.items_.index(pairs["item_id"])  # (P,)
        known = p_item >= 0
        out = np.full(len(pairs), np.nan)
        out[known] = self._pair_scores(seen, features, p_user[known], p_item[known])
        if not known.all():
            log.warning("%d pair(s) name items the model does not know: their prediction is NaN", (~known).sum())
        return pd.DataFrame({"user_id": pairs["user_id"].to_numpy(), "item_id": pairs["item_id"].to_numpy(),
                             "prediction": out})

    def _user_features(self, users: pd.DataFrame | None, user_ids: list[str]) -> sp.csr_matrix:
        """(B, V) 0/1 rows of the feature values of `user_ids` that the model knows; V = 0 for models without."""
        return sp.csr_matrix((len(user_ids), 0), dtype=np.float32)

    def _rank(self, seen: sp.csr_matrix, features: sp.csr_matrix, k: int, exclude_seen: bool
              ) -> tuple[np.ndarray, np.ndarray]:
        """(B, k) item indices and scores, best first; -inf marks slots left empty by exclusion."""
        parts = [_top_k(self._scores(seen[rows], features[rows]), seen[rows], k, exclude_seen)
                 for rows in _row_chunks(*seen.shape)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])  # (B, k) each

    def _scores(self, seen: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
        """(b, I) scores of the whole catalogue for the b users whose support is `seen` and features `features`."""
        raise NotImplementedError

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        """(P,) scores of (row of `seen` and `features`, item index) pairs."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")


# --- shared helpers ------------------------------------------------------------------------------------------
def _training_log(ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None) -> tuple[pd.DataFrame, IdMap]:
    """The checked log and the catalogue: items in order of first appearance in the log, then the item table's."""
    if isinstance(ratings, Dataset):
        items = ratings.items if items is None else items
        ratings = ratings.ratings
    ratings = _check_frame(ratings, "ratings")
    if ratings.empty:
        raise ValueError("ratings: expected at least one row, found none")
    catalogue = ratings["item_id"] if items is None else pd.concat([ratings["item_id"], items["item_id"].astype(str)])
    return ratings, IdMap.from_values(catalogue)


def _item_counts(ratings: pd.DataFrame, items: IdMap) -> np.ndarray:
    """(I,) number of log rows of each item, as floats."""
    return np.bincount(items.index(ratings["item_id"]), minlength=len(items)).astype(np.float64)


def _support_matrix(support: pd.DataFrame, items: IdMap, extra_users: pd.Series | None = None
                    ) -> tuple[list[str], sp.csr_matrix]:
    """Support rows -> (user ids in order of first appearance, (B, I) CSR of ratings, explicit zeros kept).

    `extra_users` are appended (with empty rows) when not in `support`. Rows naming unknown items are dropped with
    a warning that counts them; a repeated (user, item) keeps its last rating (`frames.support_rows`).
    """
    extra = None if extra_users is None else extra_users.tolist()
    user_ids, rows, cols, ratings = support_rows(support, items, extra)
    order = np.lexsort((cols, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(user_ids)))])
    return user_ids, sp.csr_matrix((ratings[order], cols[order], indptr), shape=(len(user_ids), len(items)))


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A float32 CSR with 1 at each distinct (row, col)."""
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    matrix.data[:] = 1.0  # repeated pairs were summed
    return matrix


def _as_binary(seen: sp.csr_matrix) -> sp.csr_matrix:
    """The same pattern as `seen` with every stored value (a rating, maybe 0) replaced by 1."""
    return sp.csr_matrix((np.ones(seen.nnz, np.float32), seen.indices, seen.indptr), shape=seen.shape)


def _shrunk(sums: np.ndarray, counts: np.ndarray, shrinkage: float) -> np.ndarray:
    """sums / (counts + shrinkage), and 0 where that is 0 / 0."""
    denominator = counts + shrinkage
    return np.divide(sums, denominator, out=np.zeros_like(sums, dtype=np.float64), where=denominator > 0)


def _row_chunks(n_rows: int, n_cols: int) -> list[slice]:
    """Row slices whose (rows, n_cols) blocks hold at most `_CELLS_PER_CHUNK` cells (one empty slice for 0 rows)."""
    step = max(1, _CELLS_PER_CHUNK // max(n_cols, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, max(n_rows, 1), step)]


def _top_k(scores: np.ndarray, seen: sp.csr_matrix, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
    """(b, k) indices and scores of the best items of each row of a dense score block (`scoring.top_k` in one
    chunk: ties to the lower index; excluded items -> -inf)."""
    block = torch.from_numpy(np.array(scores, dtype=np.float64))  # (b, I), a copy: scores may be read-only
    exclude = _padded_items(seen) if exclude_seen else None  # (b, E)
    top_s, top_i = top_k(lambda start, stop: block[:, start:stop], *block.shape, k, exclude,
                         chunk=max(block.shape[1], 1))  # (b, k)
    return top_i.numpy(), top_s.numpy()


def _padded_items(seen: sp.csr_matrix) -> torch.Tensor:
    """(b, E) the column indices of each row of `seen`, -1 in padded slots."""
    lengths = np.diff(seen.indptr)  # (b,)
    padded = np.full((seen.shape[0], lengths.max(initial=0)), -1, dtype=np.int64)  # (b, E)
    padded[np.repeat(np.arange(seen.shape[0]), lengths), segment_positions(lengths)] = seen.indices
    return torch.from_numpy(padded)


def _check_non_negative(model: _Baseline, *fields: str) -> None:
    for field in fields:
        value = getattr(model, field)
        if not value >= 0:
            raise ValueError(f"{type(model).__name__}.{field} must be >= 0, found {value!r}")


def _tie_break(counts: np.ndarray) -> np.ndarray:
    """(I,) a score term below any real signal that orders the items by `counts`: 1e-6 * count / top count."""
    return _TIE_BREAK * counts / max(counts.max(initial=0.0), 1.0)


def _pair_sums(rows: sp.csr_matrix, weights: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(P,) (rows @ weights)[p, items[p]] for every p, without the (P, I) product: a sum over row p's entries."""
    pair = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))  # (nnz,)
    return np.bincount(pair, weights=rows.data * weights[rows.indices, items[pair]], minlength=rows.shape[0])


def _liked(ratings: pd.DataFrame, min_rating: float | None) -> np.ndarray:
    """(rows,) which rows are rated >= min_rating; every row when min_rating is None or the log has one rating value."""
    if min_rating is None or ratings["rating"].nunique() <= 1:
        return np.ones(len(ratings), dtype=bool)
    return (ratings["rating"] >= min_rating).to_numpy()
