"""The one DataFrame boundary of every recommender: checked frames in, padded index tensors out.

Policies, the same for the meta-learner and every baseline:
    ids        strings (`7` and `"7"` are one id); a missing id is an error naming the row and column
    rating     a number, 1.0 when the column is absent (implicit data); anything else is an error
    duplicates a user's repeated item keeps its last row
    unknown    support rows naming items the model does not know are dropped, with a warning that counts them
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .ids import IdMap
from .tasks import TaskBatch, support_batch

log = logging.getLogger(__name__)


def check_frame(df: pd.DataFrame, what: str, need_rating: bool = True) -> pd.DataFrame:
    """A copy with string ids and a float rating (1.0 when absent); a clear error for missing columns / NaN ids."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, found {type(df).__name__}")
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; found columns {list(df.columns)}")
    for col in ("user_id", "item_id"):
        if df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise ValueError(f"{what}: row {row}, column '{col}': expected an id, found a missing value")
    out = df.assign(user_id=df["user_id"].astype(str).astype(object), item_id=df["item_id"].astype(str).astype(object))
    if need_rating:
        rating = pd.to_numeric(out["rating"], errors="coerce") if "rating" in out else pd.Series(1.0, index=out.index)
        if rating.isna().any():
            row = int(np.flatnonzero(rating.isna().to_numpy())[0])
            raise ValueError(f"{what}: row {row}, column 'rating': expected a number, found {out['rating'].iloc[row]!r}")
        out["rating"] = rating.astype(np.float64)
    return out.reset_index(drop=True)


def support_rows(support: pd.DataFrame, items: IdMap, extra_users: list[str] | None = None
                 ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Support rows under the policies above -> (user ids in order of first appearance, then the `extra_users` not
    among them; and, per kept row, its user's position in that list, its item index and its rating (float64)).

    A user's repeated item keeps its last row; rows naming unknown items are dropped with a warning that counts
    them (their user still keeps its place, with whatever support is left)."""
    support = check_frame(support, "support").drop_duplicates(["user_id", "item_id"], keep="last")
    user_ids = list(dict.fromkeys(support["user_id"].tolist() + (extra_users or [])))
    rows = IdMap(user_ids).index(support["user_id"])
    item_idx = items.index(support["item_id"])
    known = item_idx >= 0
    if not known.all():
        log.warning("dropped %d support row(s) whose item the model does not know", int((~known).sum()))
    return user_ids, rows[known], item_idx[known], support["rating"].to_numpy(np.float64)[known]


def parse_support(support: pd.DataFrame, items: IdMap, extra_users: list[str] | None = None
                  ) -> tuple[list[str], TaskBatch]:
    """Support rows -> (user ids, see `support_rows`; one padded batch of their supports)."""
    user_ids, rows, item_idx, ratings = support_rows(support, items, extra_users)
    return user_ids, support_batch(item_idx, ratings.astype(np.float32), rows, len(user_ids))
