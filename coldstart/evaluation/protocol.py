"""Who is evaluated on what: the protocol's settings, and the seeded splits of ratings into training users and
tasks of new users (support / query)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import LIKED_RATING

MELU_SCENARIOS = ("warm_up", "user_cold_testing", "item_cold_testing", "user_and_item_cold_testing")
MELU_PAPER = {"user_cold_testing": {"mae": 0.7854, "wq_ndcg@1": 0.8803, "wq_ndcg@3": 0.8812}}  # MeLU-5, Table 3
MELU_QUERY, MELU_MIN, MELU_MAX = 10, 13, 100
WARM_UP_SHARE = 0.2  # item_split: the newest share of existing users' existing-item ratings, scored as "warm_up"


@dataclass(frozen=True)
class Protocol:
    """How new users are split and judged."""

    shots: tuple[int, ...] = (1, 3, 5, 10)
    k: int = 10
    new_fraction: float = 0.2
    threshold: float | None = LIKED_RATING  # relevant = query rating >= threshold; None: every query item (implicit data)
    seed: int = 0
    item_split: tuple[str, float] | None = None  # (item column, cutoff): MeLU's scenarios, items >= cutoff are new

    def __post_init__(self) -> None:
        if not self.shots or min(self.shots) < 1:
            raise ValueError(f"--shots: expected positive integers, found {self.shots}")
        if self.k < 1:
            raise ValueError(f"--k: expected a positive integer, found {self.k}")
        if not 0 < self.new_fraction < 1:
            raise ValueError(f"--new-fraction: expected a number in (0, 1), found {self.new_fraction}")


@dataclass
class Task:
    """One evaluation setting: support and query ratings of the new users."""

    name: str  # "1 shot", "5 shots", or a MeLU scenario
    shots: int | None
    support: pd.DataFrame
    query: pd.DataFrame
    skipped: int = 0  # users left out (too few interactions)


# --- splits ----------------------------------------------------------------------------------------------------
def time_ordered(ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Ratings grouped by user, each user's rows in time order (a seeded random order without timestamps)."""
    key = ratings["timestamp"] if "timestamp" in ratings else pd.Series(
        np.random.default_rng(seed).random(len(ratings)), index=ratings.index)
    return ratings.assign(_t=key.to_numpy()).sort_values(["user_id", "_t"], kind="stable").drop(columns="_t")


def split_new_users(ratings: pd.DataFrame, new_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, new) ratings: new users are the newest `new_fraction` by first interaction (random without time)."""
    rng = np.random.default_rng(seed)
    users = pd.Index(ratings["user_id"].unique())
    first = (ratings.groupby("user_id")["timestamp"].min().reindex(users).to_numpy() if "timestamp" in ratings
             else np.zeros(len(users)))
    order = np.lexsort((rng.random(len(users)), first))  # oldest first, ties at random
    new = set(users[order[len(users) - round(new_fraction * len(users)):]])
    is_new = ratings["user_id"].isin(new)
    return ratings[~is_new].reset_index(drop=True), time_ordered(ratings[is_new], seed).reset_index(drop=True)


def shot_task(new: pd.DataFrame, shots: int) -> Task:
    """Support = each new user's first `shots` interactions (rows already in time order), query = the rest."""
    rank = new.groupby("user_id", sort=False).cumcount()
    size = new.groupby("user_id", sort=False)["item_id"].transform("size")
    kept = new[size > shots]
    rank = rank[size > shots]
    skipped = new["user_id"].nunique() - kept["user_id"].nunique()
    return Task(f"{shots} shot{'s' if shots > 1 else ''}", shots, kept[rank < shots], kept[rank >= shots], skipped)


def melu_tasks(ratings: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, list[Task]]:
    """MeLU's protocol on ratings with a `split` column: (training ratings, one Task per scenario present)."""
    rng = np.random.default_rng(seed)
    train = ratings[ratings["split"] == "meta_training"].reset_index(drop=True)
    tasks = []
    for scenario in MELU_SCENARIOS:
        rows = ratings[ratings["split"] == scenario]
        size = rows.groupby("user_id")["item_id"].transform("size")
        kept = rows[(size >= MELU_MIN) & (size <= MELU_MAX)]
        if kept.empty:
            continue
        kept = kept.assign(_r=rng.random(len(kept))).sort_values(["user_id", "_r"]).drop(columns="_r")
        is_query = kept.groupby("user_id", sort=False).cumcount() < MELU_QUERY
        skipped = rows["user_id"].nunique() - kept["user_id"].nunique()
        tasks.append(Task(scenario, None, kept[~is_query], kept[is_query], skipped))
    return train, tasks


def item_split_scenarios(ratings: pd.DataFrame, items: pd.DataFrame | None, column: str, cutoff: float,
                         new_fraction: float, seed: int) -> pd.DataFrame:
    """`ratings` with MeLU's `split` column built from an item date column (e.g. the release year).

    New items: `column` >= `cutoff` (a missing value counts as existing). New users: as in `split_new_users`.
    Existing users x existing items are `meta_training`, except the newest WARM_UP_SHARE of those ratings (a seeded
    random share without timestamps), which are `warm_up`; new users x existing items `user_cold_testing`;
    existing users x new items `item_cold_testing`; new users x new items `user_and_item_cold_testing`.
    """
    if items is None or column not in items:
        found = "no item table" if items is None else f"columns {', '.join(map(str, items.columns))}"
        raise ValueError(f"--item-split: expected an item column {column!r}, found {found}")
    values = pd.to_numeric(items[column], errors="coerce")
    new_items = set(items.loc[values >= cutoff, "item_id"].astype(str))
    if not new_items:
        raise ValueError(f"--item-split {column}:{cutoff:g}: expected some items with {column} >= {cutoff:g}, "
                         f"found none (largest: {values.max()})")
    _, new_rows = split_new_users(ratings, new_fraction, seed)
    new_user = ratings["user_id"].isin(set(new_rows["user_id"])).to_numpy()
    new_item = ratings["item_id"].isin(new_items).to_numpy()
    warm = ~new_user & ~new_item
    when = (ratings["timestamp"].to_numpy(np.float64) if "timestamp" in ratings
            else np.random.default_rng(seed).random(len(ratings)))
    late = np.zeros(len(ratings), dtype=bool)
    order = np.flatnonzero(warm)[np.argsort(when[warm], kind="stable")]  # existing x existing, oldest first
    late[order[len(order) - round(WARM_UP_SHARE * len(order)):]] = True
    split = np.select([warm & ~late, warm & late, new_user & ~new_item, ~new_user & new_item],
                      ["meta_training", "warm_up", "user_cold_testing", "item_cold_testing"],
                      "user_and_item_cold_testing")
    return ratings.assign(split=split)
