"""`EASEFoldIn`: closed-form item-item weights (Steck 2019; the closed form itself is `coldstart/ease.py`, shared with
the teacher) with exact fold-in; `EASEFoldIn.tuned` picks its l2 on validation users (`validation.py`).

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..io import Dataset
from ..ease import DEFAULT_L2, ease_weights
from ..ids import IdMap
from .base import _Baseline, _as_binary, _binary, _item_counts, _pair_sums, _tie_break, _training_log
from .validation import Validation, best


class EASEFoldIn(_Baseline):
    """EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): closed-form item-item weights, exact fold-in.

    With X the binary users x items matrix of the log, G = X^T X + l2 I and P = G^-1, the weights are
    B = I - P / diag(P) (column j divided by P_jj): B_ij = -P_ij / P_jj and B_jj = 0, the ridge regression of each
    item on all the others, forbidden to use itself. A user's scores are x_u B for its binary support row x_u, so a
    new user needs no training. Every score also gets 1e-6 times the item's count over the top count: ties, and users
    without a known support item (x_u = 0), follow the training popularity order. Scores are not ratings.

    B is a dense float32 I x I matrix and fit inverts a float64 one: fine up to ~20k items (1.6 GB kept, about 5 GB
    at the peak of fit); fit refuses a catalogue larger than `max_items`.

    Args:
        l2: the ridge weight lambda (> 0); larger for larger logs (`tuned` picks it on validation users).
        max_items: the largest catalogue fit accepts.
    """

    name = "ease"
    rating_predictor = False

    def __init__(self, l2: float = DEFAULT_L2, max_items: int = 30_000):
        self.l2 = l2
        self.max_items = max_items

    @classmethod
    def tuned(cls, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
              grid: tuple[float, ...] = (100, 1000, 10_000, 100_000, 1_000_000), valid_fraction: float = 0.2,
              shots: int = 5, k: int = 10, seed: int = 0) -> EASEFoldIn:
        """EASE with the l2 of `grid` that ranks best on validation users carved from `ratings`, refit on all of it.

        For each l2, a model fit on the users `Validation.carve` keeps ranks the whole catalogue minus each held-out
        user's support; the score is the mean nDCG@k against the user's relevant query items. Nothing but `ratings`
        (and `items`, for the catalogue) is read: pass the training log, never the test users.

        Args:
            ratings: the training log, or a Dataset.
            items: optional item table; its items join the catalogue.
            grid: the l2 values tried.
            valid_fraction: share of the users held out for validation.
            shots: support size of a held-out user.
            k: the nDCG cut-off.
            seed: draws the held-out users when the log has no `timestamp`.

        Returns:
            A model fit on all of `ratings` with the best l2; `tuning_` maps each l2 of `grid` to its mean nDCG@k.
        """
        log, catalogue = _training_log(ratings, items)
        valid = Validation.carve(log, catalogue, None, valid_fraction, shots, k, seed)
        tuning = {l2: valid.ndcg(cls(l2).fit(valid.train, valid.items)) for l2 in grid}
        model = cls(best(tuning)).fit(log, valid.items)
        model.tuning_ = tuning
        return model

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> EASEFoldIn:
        """Solve for the item-item weights B on the binary users x items matrix of the log.

        Args:
            ratings: the interaction log (`user_id`, `item_id`, ...), or a Dataset; ratings are not used.
            items: optional item table; its items join the catalogue (all-zero weights).
            users: ignored.

        Raises:
            ValueError: l2 is not positive, or the catalogue has more than `max_items` items.
        """
        if not self.l2 > 0:
            raise ValueError(f"EASEFoldIn.l2 must be > 0, found {self.l2!r}")
        ratings, self.items_ = _training_log(ratings, items)
        if len(self.items_) > self.max_items:
            raise ValueError(f"EASEFoldIn keeps a dense I x I matrix: the catalogue's {len(self.items_)} items exceed "
                             f"max_items={self.max_items} (raise it only if {len(self.items_)}^2 floats fit in memory)")
        train_users = IdMap.from_values(ratings["user_id"])
        interactions = _binary(train_users.index(ratings["user_id"]), self.items_.index(ratings["item_id"]),
                               (len(train_users), len(self.items_)))  # (U, I)
        self.weights_ = ease_weights(interactions, self.l2)  # (I, I)
        self.tie_break_ = _tie_break(_item_counts(ratings, self.items_))  # (I,)
        return self

    def _scores(self, seen: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
        return _as_binary(seen) @ self.weights_ + self.tie_break_  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        return _pair_sums(_as_binary(seen)[users], self.weights_, items) + self.tie_break_[items]

