"""`Blend`: EASE fold-in plus a weighted popularity prior ("recent+ease", "peers+ease"), the weight chosen on
validation users carved from the training log.

Dimension letters as in the package docstring (`coldstart/baselines/__init__.py`).
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..io import Dataset
from .base import _Baseline, _check_non_negative, _row_chunks, _training_log
from .ease import EASEFoldIn
from .validation import Validation, best

_PRIORS = {"popularity_recent": "recent", "popularity_features": "peers", "popularity_liked": "liked"}
"""A prior's name -> its short name in the blend's ("recent" + "+ease")."""


class Blend(_Baseline):
    """EASE's score plus `weight` times a popularity prior's, the prior as a share of its best item for the user:

        score(u, i) = x_u B_i + weight * prior(u, i) / max_j prior(u, j)

    The scales, and why: the prior's scores are counts of a log of any size, or sums of shares over however many
    feature values a user has; divided by the user's largest one they lie in [0, 1] on any data, so one weight grid
    serves every data set (a prior that is 0 everywhere adds nothing). EASE's score is left as it is: it sums a
    regression weight per support item, so it grows with the support and the prior's pull fades as the user tells
    more, which is what a prior should do; its scale is set by l2, fixed before the weight is chosen.

    `weight` 0 gives EASE's scores, so its ranking; a weight far above the range of EASE's scores gives the prior's
    ranking (its ties broken by EASE). Scores are not ratings.

    Args:
        prior: the popularity model (`Popularity` for "recent+ease", `FeaturePopularity` for "peers+ease"); `fit`
            fits a copy, leaving this one as it is.
        weight: the prior's weight, >= 0.
        ease: the EASE model (default `EASEFoldIn()`); `fit` fits a copy.
    """

    rating_predictor = False

    def __init__(self, prior: _Baseline, weight: float = 1.0, ease: EASEFoldIn | None = None):
        self.prior = prior
        self.weight = weight
        self.ease = ease
        self.name = f"{_PRIORS.get(prior.name, prior.name)}+ease"

    @classmethod
    def of(cls, ease: EASEFoldIn, prior: _Baseline, weight: float) -> Blend:
        """The blend of two models already fitted on the same catalogue, sharing their state (nothing is copied or
        refit: one EASE fit can serve the plain "ease" system and every blend)."""
        blend = cls(prior, weight, ease)
        blend._settle(ease, prior)
        return blend

    @classmethod
    def tuned(cls, ratings: pd.DataFrame | Dataset, prior: _Baseline, ease: EASEFoldIn | None = None,
              items: pd.DataFrame | None = None, users: pd.DataFrame | None = None,
              grid: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 1e4), valid_fraction: float = 0.2,
              shots: int = 5, k: int = 10, seed: int = 0) -> Blend:
        """The blend with the weight of `grid` that ranks best on validation users carved from `ratings`
        (`Validation.carve`, as `EASEFoldIn.tuned`); 0 and a large weight in the grid let it fall back to either part.

        On validation, EASE (with `ease`'s l2) and a copy of `prior` (with its settings, e.g. a tuned window) are fit
        once on the users kept, then each weight only re-weights their scores. The returned blend shares `ease`'s
        weights. Nothing but `ratings`, `items` and the held-out users' rows of `users` is read: pass the training
        log, never the test users.

        Args:
            ratings: the training log, or a Dataset (whose `items` and `users` serve as defaults).
            prior: the popularity model, fitted or not: copies are fit on the validation and on the whole log.
            ease: an `EASEFoldIn` fitted on `ratings` (e.g. `EASEFoldIn.tuned`'s), reused as is; None tunes one.
            items: optional item table; its items join the catalogue.
            users: the training users' features, for a prior that reads them.
            grid: the weights tried, each >= 0.
            valid_fraction: share of the users held out for validation.
            shots: support size of a held-out user.
            k: the nDCG cut-off.
            seed: draws the held-out users when the log has no `timestamp`.

        Returns:
            A blend fit on all of `ratings`; `tuning_` maps each weight of `grid` to its mean nDCG@k.
        """
        if isinstance(ratings, Dataset):
            users = ratings.users if users is None else users
        log, catalogue = _training_log(ratings, items)
        valid = Validation.carve(log, catalogue, users, valid_fraction, shots, k, seed)
        if ease is None:
            ease = EASEFoldIn.tuned(log, valid.items, valid_fraction=valid_fraction, shots=shots, k=k, seed=seed)
        ease_valid = EASEFoldIn(ease.l2, ease.max_items).fit(valid.train, valid.items)
        prior_valid = copy.deepcopy(prior).fit(valid.train, valid.items, users)
        tuning = {weight: valid.ndcg(cls.of(ease_valid, prior_valid, weight)) for weight in grid}
        model = cls.of(ease, copy.deepcopy(prior).fit(log, valid.items, users), best(tuning))
        model.tuning_ = tuning
        return model

    def fit(self, ratings: pd.DataFrame | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> Blend:
        """Fit copies of the prior and of EASE on the log.

        Args:
            ratings: the interaction log (`user_id`, `item_id`, ...), or a Dataset.
            items: optional item table; its items join the catalogue.
            users: the training users' features, for a prior that reads them.

        Raises:
            ValueError: weight is negative, or as the parts' `fit` raise.
        """
        _check_non_negative(self, "weight")
        ease = copy.deepcopy(self.ease) if self.ease is not None else EASEFoldIn()
        self._settle(ease.fit(ratings, items), copy.deepcopy(self.prior).fit(ratings, items, users))
        return self

    def _settle(self, ease: EASEFoldIn, prior: _Baseline) -> None:
        """Take fitted parts as this blend's learned state."""
        _check_non_negative(self, "weight")
        ease._check_fitted()
        prior._check_fitted()
        if ease.items_.to_list() != prior.items_.to_list():
            raise ValueError("Blend: EASE and the prior were fitted on different catalogues; fit them on the same "
                             "ratings and items")
        self.ease_, self.prior_, self.items_ = ease, prior, ease.items_

    def _user_features(self, users: pd.DataFrame | None, user_ids: list[str]) -> sp.csr_matrix:
        return self.prior_._user_features(users, user_ids)  # (B, V)

    def _scores(self, seen: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
        prior = self.prior_._scores(seen, features)  # (b, I)
        return self.ease_._scores(seen, features) + self.weight * _share(prior, prior.max(axis=1))  # (b, I)

    def _pair_scores(self, seen: sp.csr_matrix, features: sp.csr_matrix, users: np.ndarray, items: np.ndarray
                     ) -> np.ndarray:
        top = np.concatenate([self.prior_._scores(seen[rows], features[rows]).max(axis=1)
                              for rows in _row_chunks(*seen.shape)])  # (B,) each user's best prior score
        prior = self.prior_._pair_scores(seen, features, users, items)  # (P,)
        return self.ease_._pair_scores(seen, features, users, items) + self.weight * _share(prior, top[users])


def _share(scores: np.ndarray, top: np.ndarray) -> np.ndarray:
    """scores / top along the last axis of `scores` ((b, I) with (b,) tops, or (P,) with (P,)); 0 where top <= 0."""
    top = top[..., None] if scores.ndim == 2 else top
    return np.divide(scores, top, out=np.zeros(np.shape(scores)), where=top > 0)
