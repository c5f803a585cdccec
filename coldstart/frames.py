"""The one DataFrame boundary of every recommender: checked frames in, padded index tensors out.

Policies, the same for the meta-learner and every baseline:
    ids        strings (`7` and `"7"` are one id; so are `7.0` and `7` in a column of whole floats, as in the
               files, `data.id_text`); a missing id is an error naming the row and column
    rating     a finite number, 1.0 when the column is absent (implicit data); anything else is an error
    timestamp  when present, seconds since the epoch (numbers, datetimes or ISO 8601 text), finite
    scale      given the model's training scale (min, max), a support rating further outside it than
               `data.SCALE_TOLERANCE` of its width (500 or -20 to a 1-5 model) is an error
    duplicates a user's repeated item keeps its last row
    unknown    support rows naming items the model does not know are dropped, with a warning that counts them
               and shows a few
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from .io.values import SCALE_TOLERANCE, id_text, out_of_scale, plain, to_float, to_seconds
from .ids import IdMap
from .tasks import TaskBatch, support_batch

log = logging.getLogger(__name__)

SHOWN_UNKNOWN = 5  # unknown support items named in the warning


def check_frame(df: pd.DataFrame, what: str, need_rating: bool = True) -> pd.DataFrame:
    """A copy with string ids, a finite float rating (1.0 when absent; only when `need_rating`) and finite
    timestamp seconds (when present); a ValueError naming the row (0-based position) and column otherwise.

    Categorical id columns stay Categorical (their categories become the id strings, see `data.id_text`), so a
    log of millions of rows never holds a str per row; columns already in their checked form are not copied."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, found {type(df).__name__}")
    _check_columns(df, what)
    out = df.copy(deep=False)  # new columns replace, never write into, df's arrays
    out["user_id"], out["item_id"] = _ids(df, "user_id", what), _ids(df, "item_id", what)
    if need_rating:
        out["rating"] = _finite(out, "rating", to_float, what) if "rating" in out else 1.0
    if "timestamp" in out:
        out["timestamp"] = _finite(out, "timestamp", to_seconds, what)
    out.index = pd.RangeIndex(len(out))
    return out


def _check_columns(df: pd.DataFrame, what: str) -> None:
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; found columns {list(df.columns)}")
    for col in ("user_id", "item_id", "rating", "timestamp"):
        if (df.columns == col).sum() > 1:
            raise ValueError(f"{what}: expected one column {col!r}, found {(df.columns == col).sum()}")


def _ids(df: pd.DataFrame, col: str, what: str) -> pd.Series:
    missing = df[col].isna().to_numpy()
    if missing.any():
        raise ValueError(f"{what}: row {missing.argmax()}, column {col!r}: expected an id, "
                         "found a missing value")
    return id_text(df[col])  # a Categorical stays one


def _finite(df: pd.DataFrame, col: str, parse: Callable[[pd.Series], pd.Series], what: str) -> pd.Series:
    """`parse(df[col])` as float64, or a ValueError showing the first value that is not finite."""
    values = parse(df[col]).to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(bad.argmax())
        expected = "a finite number" if col == "rating" else "finite seconds since the epoch or a date/time"
        found = plain(df[col].iloc[row])
        raise ValueError(f"{what}: row {row}, column {col!r}: expected {expected}, found {found}")
    return pd.Series(values, index=df.index)  # df's own index: assigned as it is, never realigned


def support_rows(support: pd.DataFrame, items: IdMap, extra_users: list[str] | None = None,
                 scale: tuple[float, float] | None = None
                 ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Support rows under the policies above -> (user ids in order of first appearance, then the `extra_users` not
    among them; and, per kept row, its user's position in that list, its item index and its rating (float64)).

    A user's repeated item keeps its last row; rows naming unknown items are dropped with a warning that
    counts them and names a few (their user still keeps its place, with whatever support is left). `scale`,
    the model's training (min, max) rating, rejects ratings far outside it (`check_scale`)."""
    support = check_frame(support, "support")
    if scale is not None:
        check_scale(support, scale, "support")
    support = support.drop_duplicates(["user_id", "item_id"], keep="last")
    user_ids = list(dict.fromkeys(support["user_id"].tolist() + (extra_users or [])))
    rows = IdMap(user_ids).index(support["user_id"])
    item_idx = items.index(support["item_id"])
    known = item_idx >= 0
    if not known.all():
        _warn_unknown(support["item_id"].to_numpy()[~known])
    return user_ids, rows[known], item_idx[known], support["rating"].to_numpy(np.float64)[known]


def _warn_unknown(item_ids: np.ndarray) -> None:
    """Warn that the rows of these unknown items were dropped, naming the first SHOWN_UNKNOWN distinct ids."""
    distinct = pd.unique(item_ids)
    named = ", ".join(repr(i) for i in distinct[:SHOWN_UNKNOWN])
    named += ", ..." if len(distinct) > SHOWN_UNKNOWN else ""
    log.warning("dropped %d support row(s) whose item the model does not know: %s", len(item_ids), named)


def check_scale(ratings: pd.DataFrame, scale: tuple[float, float], what: str) -> None:
    """A ValueError for the first rating further outside `scale` (min, max) than SCALE_TOLERANCE of its width;
    a scale of one value (a model of implicit data, every rating 1) checks nothing."""
    low, high = scale
    if not high > low:
        return
    values = ratings["rating"].to_numpy(np.float64)
    bad = out_of_scale(values, low, high)
    if bad.any():
        row = int(bad.argmax())
        slack = SCALE_TOLERANCE * (high - low)
        who = f"user {plain(ratings['user_id'].iloc[row])}, item {plain(ratings['item_id'].iloc[row])}"
        raise ValueError(f"{what}: row {row} ({who}), column 'rating': expected a rating on the model's scale "
                         f"{low:g} to {high:g} (give or take {slack:g}), found {plain(values[row])}")


def parse_support(support: pd.DataFrame, items: IdMap, extra_users: list[str] | None = None,
                  scale: tuple[float, float] | None = None) -> tuple[list[str], TaskBatch]:
    """Support rows -> (user ids, see `support_rows`; one padded batch of their supports)."""
    user_ids, rows, item_idx, ratings = support_rows(support, items, extra_users, scale)
    return user_ids, support_batch(item_idx, ratings.astype(np.float32), rows, len(user_ids))
