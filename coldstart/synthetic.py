"""A seeded generator of ratings with planted structure, for tests with a known answer and scale benchmarks.

Users belong to taste groups; each group loves some genres and dislikes others. Items have one genre and a quality;
popularity follows a power law (Zipf). A user feature (`age_band`) reveals the group only partly, so a model can only
learn a user's taste well from their ratings (which is what adaptation is for).

Everything is vectorised over users (no per-user Python loop): `synthetic_log` draws index arrays,
`make_synthetic` turns them into a Dataset, `write_synthetic` into Parquet files without ever building a Python
string per row (20M ratings in well under a minute).

Dimension letters: U users, I items, G taste groups, N ratings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .io import Dataset

EXACT_CELLS = 1 << 24  # up to this many users x items, a user's items are drawn exactly without replacement


@dataclass(frozen=True)
class SyntheticLog:
    """Ratings as index arrays, plus the side information behind them."""

    user: np.ndarray  # (N,) int32, rows grouped by user, each user's rows in time order
    item: np.ndarray  # (N,) int32
    rating: np.ndarray  # (N,) float32, 1..5
    timestamp: np.ndarray  # (N,) int64 seconds
    genre: np.ndarray  # (I,) int32
    hint: np.ndarray  # (U,) int32: the user feature, equal to the user's group with probability feature_signal


def synthetic_log(n_users: int = 300, n_items: int = 200, n_groups: int = 4, n_genres: int = 8,
                  ratings_per_user: tuple[int, int] = (10, 40), feature_signal: float = 0.3,
                  popularity_skew: float = 0.8, seed: int = 0) -> SyntheticLog:
    """Draw the log (see `make_synthetic` for the arguments)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(n_groups, size=n_users)  # (U,)
    genre = rng.integers(n_genres, size=n_items)  # (I,)
    taste = rng.choice([-1.5, 0.0, 1.5], size=(n_groups, n_genres), p=[0.35, 0.3, 0.35])  # (G, Gen)
    quality = rng.normal(0.0, 0.4, size=n_items)  # (I,)
    popularity = (1.0 / np.arange(1, n_items + 1) ** popularity_skew)[rng.permutation(n_items)]  # (I,)
    log_weight = np.log(popularity)[None, :] + 0.8 * taste[:, genre]  # (G, I)
    counts = np.minimum(rng.integers(ratings_per_user[0], ratings_per_user[1] + 1, size=n_users), n_items)  # (U,)
    draw = _draw_exact if n_users * n_items <= EXACT_CELLS else _draw_oversampled
    user, item = draw(rng, log_weight, group, counts)  # (N,) each, grouped by user
    affinity = taste[group[user], genre[item]]  # (N,)
    mean = 3.0 + affinity + quality[item] + rng.normal(0.0, 0.5, size=len(item))
    rating = np.clip(np.rint(mean), 1, 5).astype(np.float32)
    times = 1_000_000 + user.astype(np.int64) * 10 + rng.integers(0, 10_000_000, size=len(item))
    order = np.lexsort((times, user))  # each user's rows in time order
    hint = np.where(rng.random(n_users) < feature_signal, group, rng.integers(n_groups, size=n_users))
    return SyntheticLog(user[order].astype(np.int32), item[order].astype(np.int32), rating[order], times[order],
                        genre.astype(np.int32), hint.astype(np.int32))


def _draw_exact(rng: np.random.Generator, log_weight: np.ndarray, group: np.ndarray, counts: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each user's `count` items without replacement, with probability proportional to its group's weights: the
    top `count` of log-weight + Gumbel noise (the Gumbel-top-k trick, exact)."""
    keys = log_weight[group] + rng.gumbel(size=(len(group), log_weight.shape[1]))  # (U, I)
    ranked = np.argsort(-keys, axis=1)  # (U, I)
    keep = np.arange(log_weight.shape[1])[None, :] < counts[:, None]  # (U, I)
    user = np.broadcast_to(np.arange(len(group))[:, None], ranked.shape)[keep]
    return user, ranked[keep]


def _draw_oversampled(rng: np.random.Generator, log_weight: np.ndarray, group: np.ndarray, counts: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """For large catalogues: twice the needed draws with replacement from the group's distribution, each user's
    first `count` distinct items kept (a user whose draws repeat a lot keeps fewer)."""
    cdf = np.cumsum(np.exp(log_weight - log_weight.max(1, keepdims=True)), axis=1)  # (G, I)
    cdf /= cdf[:, -1:]
    n_draws = 2 * counts + 5  # (U,)
    user = np.repeat(np.arange(len(group)), n_draws)  # (D,)
    item = np.empty(len(user), dtype=np.int64)
    u = rng.random(len(user))
    for g in range(cdf.shape[0]):  # a loop over the few taste groups, not over users
        rows = group[user] == g
        item[rows] = np.minimum(np.searchsorted(cdf[g], u[rows], side="right"), cdf.shape[1] - 1)
    key = user.astype(np.int64) * cdf.shape[1] + item
    _, first = np.unique(key, return_index=True)  # the first draw of each (user, item)
    first.sort()  # back in draw order: grouped by user
    user, item = user[first], item[first]
    starts = np.searchsorted(user, np.arange(len(group)))  # (U,) every user has at least one draw
    rank = np.arange(len(user)) - starts[user]  # position among the user's distinct draws
    keep = rank < counts[user]
    return user[keep], item[keep]


def make_synthetic(n_users: int = 300, n_items: int = 200, n_groups: int = 4, n_genres: int = 8,
                   ratings_per_user: tuple[int, int] = (10, 40), feature_signal: float = 0.3,
                   popularity_skew: float = 0.8, seed: int = 0) -> Dataset:
    """A Dataset of explicit 1-5 ratings with timestamps, item genres and titles, and a weakly informative user
    feature.

    Args:
        n_users, n_items: sizes.
        n_groups: taste groups of users.
        n_genres: item genres (one per item).
        ratings_per_user: inclusive range of each user's number of ratings.
        feature_signal: probability that a user's `age_band` equals its group (else random).
        popularity_skew: Zipf exponent of item popularity.
        seed: everything is drawn from this seed.
    """
    log = synthetic_log(n_users, n_items, n_groups, n_genres, ratings_per_user, feature_signal, popularity_skew,
                        seed)
    user_ids, item_ids = _ids("u", n_users), _ids("i", n_items)
    ratings = pd.DataFrame({"user_id": user_ids[log.user], "item_id": item_ids[log.item],
                            "rating": log.rating.astype(np.float64), "timestamp": log.timestamp.astype(np.float64)})
    return Dataset(ratings=ratings, items=_items(item_ids, log.genre), users=_users(user_ids, log.hint),
                   name="synthetic")


def write_synthetic(folder: str | Path, n_users: int, n_items: int, ratings_per_user: tuple[int, int] = (10, 40),
                    seed: int = 0, **kwargs) -> Path:
    """Write `ratings.parquet`, `items.parquet` and `users.parquet` of a synthetic log to `folder` (ids as
    dictionary-encoded strings: no Python string per row); returns the folder. `coldstart fit FOLDER/ratings.parquet
    --items FOLDER/items.parquet --users FOLDER/users.parquet` reads them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = synthetic_log(n_users, n_items, ratings_per_user=ratings_per_user, seed=seed, **kwargs)
    user_ids, item_ids = _ids("u", n_users), _ids("i", n_items)
    table = pa.table({
        "user_id": pa.DictionaryArray.from_arrays(log.user, pa.array(user_ids.tolist(), pa.string())),
        "item_id": pa.DictionaryArray.from_arrays(log.item, pa.array(item_ids.tolist(), pa.string())),
        "rating": log.rating, "timestamp": log.timestamp})
    pq.write_table(table, folder / "ratings.parquet", row_group_size=1 << 20)
    _items(item_ids, log.genre).to_parquet(folder / "items.parquet", index=False)
    _users(user_ids, log.hint).to_parquet(folder / "users.parquet", index=False)
    return folder


def _ids(prefix: str, n: int) -> np.ndarray:
    """(n,) object array of the ids prefix0, prefix1, ..."""
    return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)


def _items(item_ids: np.ndarray, genre: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"item_id": item_ids, "genres": [f"g{g}" for g in genre],
                         "title": [f"Item {i} (genre {g})" for i, g in enumerate(genre)]})


def _users(user_ids: np.ndarray, hint: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"user_id": user_ids, "age_band": [f"band{h}" for h in hint]})
