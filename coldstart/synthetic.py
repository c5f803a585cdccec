"""A seeded generator of ratings with planted structure, for tests with a known answer and scale benchmarks.

Users belong to taste groups; each group loves some genres and dislikes others. Items have one genre and a quality;
popularity follows a Zipf law. A user feature (`age_band`) reveals the group only partly, so a model can only learn a
user's taste well from their ratings (which is what adaptation is for).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import Dataset


def make_synthetic(n_users: int = 300, n_items: int = 200, n_groups: int = 4, n_genres: int = 8,
                   ratings_per_user: tuple[int, int] = (10, 40), feature_signal: float = 0.3,
                   popularity_skew: float = 0.8, seed: int = 0) -> Dataset:
    """A Dataset of explicit 1-5 ratings with timestamps, item genres and a weakly informative user feature.

    Args:
        n_users, n_items: sizes.
        n_groups: taste groups of users.
        n_genres: item genres (one per item).
        ratings_per_user: inclusive range of each user's number of ratings.
        feature_signal: probability that a user's `age_band` equals its group (else random).
        popularity_skew: Zipf exponent of item popularity.
        seed: everything is drawn from this seed.
    """
    rng = np.random.default_rng(seed)
    group = rng.integers(n_groups, size=n_users)  # (U,)
    genre = rng.integers(n_genres, size=n_items)  # (I,)
    taste = rng.choice([-1.5, 0.0, 1.5], size=(n_groups, n_genres), p=[0.35, 0.3, 0.35])  # (G, Gen)
    quality = rng.normal(0.0, 0.4, size=n_items)  # (I,)
    popularity = 1.0 / np.arange(1, n_items + 1) ** popularity_skew
    popularity = popularity[rng.permutation(n_items)]
    rows = []
    for u in range(n_users):
        affinity = taste[group[u], genre]  # (I,)
        weight = popularity * np.exp(0.8 * affinity)
        n = min(int(rng.integers(ratings_per_user[0], ratings_per_user[1] + 1)), n_items)
        items = rng.choice(n_items, size=n, replace=False, p=weight / weight.sum())
        mean = 3.0 + affinity[items] + quality[items] + rng.normal(0, 0.5, size=n)
        rating = np.clip(np.rint(mean), 1, 5)
        times = 1_000_000 + u * 10 + np.sort(rng.integers(0, 10_000_000, size=n))
        rows.append(pd.DataFrame({"user_id": f"u{u}", "item_id": [f"i{i}" for i in items],
                                  "rating": rating, "timestamp": times.astype(float)}))
    hint = np.where(rng.random(n_users) < feature_signal, group, rng.integers(n_groups, size=n_users))
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "age_band": [f"band{h}" for h in hint]})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "genres": [f"g{g}" for g in genre],
                          "title": [f"Item {i} (genre {g})" for i, g in enumerate(genre)]})
    return Dataset(ratings=pd.concat(rows, ignore_index=True), items=items, users=users, name="synthetic")
