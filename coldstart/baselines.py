"""Non-meta baselines behind the recommender interface: popularity, item mean + shrunk user offset, ALS fold-in.

Each baseline has `fit`, `recommend` and `predict` like `ColdStartRecommender` (DataFrames in and out, ids only at
the edges) and treats every user of a `support` frame as new, described only by its support rows. All users of a
call are scored at once, in chunks of the (B, I) score matrix; nothing loops over users. `rating_predictor` says
whether `predict` gives ratings on the data's scale (so MAE/RMSE make sense); `name` labels the model in reports.
Side features (`items`/`users` tables) are not used, except that `items` widens the catalogue.

Dimension letters: B users of a support frame, I items in the catalogue, F latent factors, P pairs, k list length.
"""
from __future__ import annotations

import logging

import implicit.als  # imported here so that fit's BLAS thread limit also covers the OpenBLAS that scipy loads
import numpy as np
import pandas as pd
import scipy.sparse as sp
import threadpoolctl

from .data import Dataset
from .ids import IdMap
from .recommender import NotFittedError, _check_frame

__all__ = ["ALSFoldIn", "ItemMeanOffset", "Popularity"]

log = logging.getLogger(__name__)

_CELLS_PER_CHUNK = 1 << 22
"""Upper bound on the cells of one dense (b, I) score block in `recommend`."""

_FILTERED = float(np.finfo(np.float32).min)
"""The score implicit gives items removed by `filter_already_liked_items` (it pads the top-N with them)."""


class _Baseline:
    """Shared `recommend` / `predict` plumbing; subclasses define `fit`, `_scores` (or `_rank`) and `_pair_scores`."""

    name: str = "baseline"
    rating_predictor: bool = False

    def recommend(self, support: pd.DataFrame, k: int = 10, exclude_seen: bool = True,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-k items for every user in `support` (`user_id`, `item_id`, optional `rating`), all users at once.

        Args:
            support: each user's known ratings; support items the model does not know are dropped with a warning.
            k: list length (capped at the catalogue size).
            exclude_seen: leave each user's support items out of its list.
            users: accepted for interface compatibility and ignored.

        Returns:
            Columns `user_id, rank, item_id, score`, users in order of first appearance, score descending.
        """
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be a positive integer, found {k}")
        user_ids, seen = _support_matrix(support, self.items_)
        top, scores = self._rank(seen, min(k, len(self.items_)), exclude_seen)  # (B, k), (B, k)
        return _top_k_frame(user_ids, self.items_, top, scores)

    def predict(self, support: pd.DataFrame, pairs: pd.DataFrame, users: pd.DataFrame | None = None
                ) -> pd.DataFrame:
        """Scores of (user_id, item_id) `pairs`, each user described by its rows of `support`.

        Users absent from `support` are scored as users with an empty support; unknown items get NaN.

        Args:
            support: each user's known ratings.
            pairs: the (user_id, item_id) rows to score.
            users: accepted for interface compatibility and ignored.

        Returns:
            Columns `user_id, item_id, prediction`, one row per row of `pairs`, in its order.
        """
        self._check_fitted()
        pairs = _check_frame(pairs, "pairs", need_rating=False)
        user_ids, seen = _support_matrix(support, self.items_, extra_users=pairs["user_id"])
        p_user = IdMap(user_ids).index(pairs["user_id"])  # (P,)
        p_item = self.items_.index(pairs["item_id"])  # (P,)
        known = p_item >= 0
        out = np.full(len(pairs), np.nan)
        out[known] = self._pair_scores(seen, p_user[known], p_item[known])
        if not known.all():
            log.warning("%d pair(s) name items the model does not know: their prediction is NaN", (~known).sum())
        return pd.DataFrame({"user_id": pairs["user_id"].to_numpy(), "item_id": pairs["item_id"].to_numpy(),
                             "prediction": out})

    def _rank(self, seen: sp.csr_matrix, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """(B, k) item indices and scores, best first; -inf marks slots left empty by exclusion."""
        parts = [_top_k(self._scores(seen[rows]), seen[rows], k, exclude_seen) for rows in _row_chunks(*seen.shape)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _scores(self, seen: sp.csr_matrix) -> np.ndarray:
        """(b, I) scores of the whole catalogue for the b users whose support is `seen`."""
        raise NotImplementedError

    def _pair_scores(self, seen: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(P,) scores of (row of `seen`, item index) pairs."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")


class Popularity(_Baseline):
    """Recommends the items with the most training interactions, the same list for everyone.

    The score is an item's number of interactions in the training log; ties go to the item seen first in training.
    `predict` returns that count, which is not a rating.

    Args:
        min_rating: count only ratings >= this ("popularity_liked": the items people liked, not merely rated).
    """

    name = "popularity"
    rating_predictor = False

    def __init__(self, min_rating: float | None = None):
        self.min_rating = min_rating
        if min_rating is not None:
            self.name = "popularity_liked"

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> Popularity:
        """Count each item's interactions.

        Args:
            ratings: the interaction log (`user_id`, `item_id`, ...), or a Dataset.
            items: optional item table; its items join the catalogue with a count of 0.
            users: ignored.
        """
        ratings, self.items_ = _training_log(ratings, items)
        if self.min_rating is not None:
            ratings = ratings[ratings["rating"] >= self.min_rating]
        self.counts_ = _item_counts(ratings, self.items_)  # (I,)
        return self

    def _scores(self, seen: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts_, seen.shape)  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.counts_[items]


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

    def _scores(self, seen: sp.csr_matrix) -> np.ndarray:
        return self.mean_ + self.item_offset_[None, :] + self._user_offset(seen)[:, None]  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raw = self.mean_ + self.item_offset_[items] + self._user_offset(seen)[users]  # (P,)
        return np.clip(raw, *self.rating_range_)


class ALSFoldIn(_Baseline):
    """Implicit-feedback ALS (the `implicit` library) with each new user folded in from its support items.

    Training treats every logged (user, item) pair as an interaction with confidence 1 + alpha (ratings are not
    used); a new user's factors are the exact least-squares solution against the fixed item factors
    (`recalculate_user`), never stored in the model. A user without any known support item has all-zero factors,
    so every score is 0: its list is the training popularity order (score 0), and `predict` gives 0.

    Args:
        factors: latent dimension F.
        regularization: L2 weight on the factors.
        iterations: ALS sweeps.
        alpha: extra confidence of an observed interaction.
        seed: seeds the factor initialisation.
        num_threads: implicit's thread count (0: all cores); the result does not depend on it.
    """

    name = "als"
    rating_predictor = False

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15, alpha: float = 1.0,
                 seed: int = 0, num_threads: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.seed = seed
        self.num_threads = num_threads

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> ALSFoldIn:
        """Factorise the binary users x items matrix of the log.

        Args:
            ratings: the interaction log (`user_id`, `item_id`, ...), or a Dataset.
            items: optional item table; its items join the catalogue (they only get the regularised factors).
            users: ignored.
        """
        self._check_params()
        ratings, self.items_ = _training_log(ratings, items)
        train_users = IdMap.from_values(ratings["user_id"])
        interactions = _binary(train_users.index(ratings["user_id"]), self.items_.index(ratings["item_id"]),
                               (len(train_users), len(self.items_)))  # (U, I)
        # implicit checks the BLAS threads when the model is built (and warns), so build it inside the limit too;
        # its confidence is its alpha * value, so binary values with alpha 1 + alpha give 1 + alpha
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = implicit.als.AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=1.0 + self.alpha,
                iterations=self.iterations, calculate_training_loss=False, num_threads=self.num_threads,
                random_state=self.seed, use_gpu=False)
            model.fit(interactions, show_progress=False)
            _ = model.YtY  # implicit caches the Gram matrix lazily: do it now so recommend never writes to the model
        self.model_ = model
        self.popular_ = np.argsort(-_item_counts(ratings, self.items_), kind="stable")  # (I,) most popular first
        return self

    def _fold_in(self, seen: sp.csr_matrix) -> np.ndarray:
        """(b, F) folded-in factors of new users from their support (rows of `seen`); zero rows for empty ones."""
        return self.model_.recalculate_user(np.arange(seen.shape[0]), _as_binary(seen))

    def _rank(self, seen: sp.csr_matrix, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """implicit's batched fold-in + top-k for users with support; popularity order (score 0) for the rest."""
        top = np.broadcast_to(self.popular_[:k], (seen.shape[0], k)).copy()  # (B, k)
        scores = np.zeros((seen.shape[0], k))  # (B, k)
        folded = np.flatnonzero(np.diff(seen.indptr) > 0)
        if folded.size:
            ids, s = self.model_.recommend(np.arange(folded.size), _as_binary(seen[folded]), N=k,
                                           filter_already_liked_items=exclude_seen, recalculate_user=True)
            top[folded] = ids
            scores[folded] = np.where(s <= _FILTERED, -np.inf, s)
        return top, scores

    def _pair_scores(self, seen: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        factors = self._fold_in(seen)  # (B, F)
        return np.einsum("pf,pf->p", factors[users], self.model_.item_factors[items]).astype(np.float64)

    def _check_params(self) -> None:
        for field, value in (("factors", self.factors), ("iterations", self.iterations)):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"ALSFoldIn.{field} must be a positive integer, found {value!r}")
        _check_non_negative(self, "regularization", "alpha")


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
    a warning that counts them; a repeated (user, item) keeps its last rating.
    """
    support = _check_frame(support, "support").drop_duplicates(["user_id", "item_id"], keep="last")
    extra = [] if extra_users is None else extra_users.tolist()
    user_ids = list(dict.fromkeys(support["user_id"].tolist() + extra))
    rows = IdMap(user_ids).index(support["user_id"])
    cols = items.index(support["item_id"])
    known = cols >= 0
    if not known.all():
        log.warning("dropped %d support row(s) whose item the model does not know", int((~known).sum()))
    rows, cols, ratings = rows[known], cols[known], support["rating"].to_numpy(np.float64)[known]
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
    """(b, k) indices and scores of the best items of each row, ties to the lower index; excluded items -> -inf."""
    scores = np.array(scores, dtype=np.float64)  # (b, I), a writable copy
    if exclude_seen:
        scores[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)), seen.indices] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (b, k)
    return top, np.take_along_axis(scores, top, axis=1)


def _top_k_frame(user_ids: list[str], items: IdMap, top: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """The long `user_id, rank, item_id, score` frame of (B, k) top lists, dropping -inf (excluded) slots."""
    keep = np.isfinite(scores)  # (B, k); excluded slots only ever trail a row
    row, slot = np.nonzero(keep)
    return pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object)[row], "rank": slot + 1,
                         "item_id": items.ids(top[keep]), "score": scores[keep].astype(np.float64)})


def _check_non_negative(model: _Baseline, *fields: str) -> None:
    for field in fields:
        value = getattr(model, field)
        if not value >= 0:
            raise ValueError(f"{type(model).__name__}.{field} must be >= 0, found {value!r}")
