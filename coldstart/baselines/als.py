"""`ALSFoldIn`: implicit-feedback ALS (the `implicit` library) with each new user folded in from its support.

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import implicit.als  # imported here so that fit's BLAS thread limit also covers the OpenBLAS that scipy loads
import numpy as np
import pandas as pd
import scipy.sparse as sp
import threadpoolctl

from ..io import Dataset
from ..ids import IdMap
from .base import _Baseline, _as_binary, _binary, _check_non_negative, _item_counts, _training_log

_FILTERED = float(np.finfo(np.float32).min)
"""The score implicit gives items removed by `filter_already_liked_items` (it pads the top-N with them)."""


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

    def _rank(self, seen: sp.csr_matrix, features: sp.csr_matrix, k: int, exclude_seen: bool
              ) -> tuple[np.ndarray, np.ndarray]:
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

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        factors = self._fold_in(seen)  # (B, F)
        return np.einsum("pf,pf->p", factors[users], self.model_.item_factors[items]).astype(np.float64)

    def _check_params(self) -> None:
        for field, value in (("factors", self.factors), ("iterations", self.iterations)):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"ALSFoldIn.{field} must be a positive integer, found {value!r}")
        _check_non_negative(self, "regularization", "alpha")
