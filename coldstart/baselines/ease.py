"""`EASEFoldIn`: closed-form item-item weights (Steck 2019; the closed form itself is `coldstart/ease.py`, shared with
the teacher) with exact fold-in, and the validation split that `EASEFoldIn.tuned` picks its l2 on.

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import LIKED_RATING
from ..io import Dataset
from ..ease import DEFAULT_L2, ease_weights
from ..ids import IdMap
from ..metrics import ranking_metrics
from .base import (_Baseline, _as_binary, _binary, _item_counts, _liked, _pair_sums, _support_matrix, _tie_break,
                   _training_log)


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
              grid: tuple[float, ...] = (50, 100, 200, 500, 1000, 2000), valid_fraction: float = 0.2,
              shots: int = 5, k: int = 10, seed: int = 0) -> EASEFoldIn:
        """EASE with the l2 of `grid` that ranks best on validation users carved from `ratings`, refit on all of it.

        For each l2, a model fit on the users `_validation_split` keeps ranks the whole catalogue minus each held-out
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
        every_item = pd.DataFrame({"item_id": catalogue.to_list()})  # validation query items are never unknown
        train, support, query = _validation_split(log, valid_fraction, shots, seed)
        tuning = {l2: _validation_ndcg(cls(l2).fit(train, every_item), support, query, k) for l2 in grid}
        model = cls(max(tuning, key=tuning.get)).fit(log, every_item)
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


# --- EASE helpers --------------------------------------------------------------------------------------------


def _validation_split(ratings: pd.DataFrame, valid_fraction: float, shots: int, seed: int
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(training rows, support rows, relevant query rows) of validation users carved from a training log.

    The newest `valid_fraction` of the users by first timestamp (a draw seeded by `seed` when the log has no
    `timestamp`) are held out; a held-out user's first `shots` rows in time are its support, the others its query,
    relevant when rated >= 4 (all of them on a log with a single rating value).
    """
    users = ratings["user_id"].unique()
    n_valid = round(valid_fraction * len(users))
    if shots < 1 or not 0 < n_valid < len(users):
        raise ValueError(f"validation needs shots >= 1 and 0 < valid_fraction * users < users, found shots={shots}, "
                         f"valid_fraction={valid_fraction} of {len(users)} users")
    if "timestamp" in ratings:
        ratings = ratings.sort_values("timestamp", kind="stable")
        held = ratings["user_id"].unique()[-n_valid:]  # users in order of their first timestamp
    else:
        held = np.random.default_rng(seed).choice(users, size=n_valid, replace=False)
    is_held = ratings["user_id"].isin(held).to_numpy()
    position = ratings.groupby("user_id", sort=False).cumcount().to_numpy()  # each user's rows 0, 1, ... in time
    query = is_held & (position >= shots) & _liked(ratings, LIKED_RATING)
    if not query.any():
        raise ValueError("validation: no held-out user has a relevant query item (too few users or ratings)")
    return ratings[~is_held], ratings[is_held & (position < shots)], ratings[query]


def _validation_ndcg(model: _Baseline, support: pd.DataFrame, query: pd.DataFrame, k: int) -> float:
    """Mean nDCG@k of the top-k lists (catalogue minus support) against the relevant query items, over the users
    with at least one."""
    user_ids, seen = _support_matrix(support, model.items_)
    features = model._user_features(None, user_ids)  # (B, V)
    top, scores = model._rank(seen, features, min(k, len(model.items_)), exclude_seen=True)  # (B, k), (B, k)
    relevant = _binary(IdMap(user_ids).index(query["user_id"]), model.items_.index(query["item_id"]), seen.shape)
    return float(np.nanmean(ranking_metrics(np.where(np.isfinite(scores), top, -1), relevant, k)["ndcg"]))
