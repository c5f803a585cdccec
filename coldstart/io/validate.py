"""Validating raw tables into the standard columns; every error names file, line, column, expected and found.

`standardize_ratings` turns a raw ratings table into `user_id`, `item_id` (str), `rating` and `timestamp`
(float64), checking ids, numbers and times (converted by `values.py`), dropping duplicate (user, item) rows and
warning about a few ratings far off the scale of the rest; `standardize_features` checks a side-feature table.
A `_Source` says where the rows came from, so that `_Source.fail` can name the file and line of a bad value.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError
from .values import id_text, out_of_scale, plain, to_float, to_seconds

logger = logging.getLogger(__name__)

USER, ITEM, RATING, TIME = "user_id", "item_id", "rating", "timestamp"
RATING_COLUMNS = (USER, ITEM, RATING, TIME)
GRID_MAX_VALUES = 20  # explicit ratings taking at most this many distinct values lie on a grid (stars)
STRAY_MAX_SHARE = 0.005  # out-of-scale ratings rarer than this share of the rows (at an end) are strays


class Columns(NamedTuple):
    """The source column names of a ratings table (`load_ratings`'s `*_col` arguments)."""

    user: str = USER
    item: str = ITEM
    rating: str = RATING
    time: str = TIME


class _Source(NamedTuple):
    """Where rows came from: row label `i` of the raw frame is `{unit} {first + i}` of file `name`."""

    name: str
    unit: str = "line"
    first: int = 2

    def fail(self, label: int | None, column: str, expected: str, found: object) -> DataError:
        where = f", {self.unit} {self.first + label}" if label is not None else ""
        shown = "an empty value" if pd.api.types.is_scalar(found) and pd.isna(found) else plain(found)
        return DataError(f"{self.name}{where}, column {column!r}: expected {expected}, found {shown}")


def _require(raw: pd.DataFrame, src: _Source, column: str, option: str) -> None:
    if column not in raw.columns:
        found = ", ".join(repr(c) for c in raw.columns)
        raise DataError(f"{src.name}: expected a column {column!r} (choose another with {option}), "
                        f"found columns {found}")


def _nonblank(raw: pd.DataFrame, src: _Source) -> pd.DataFrame:
    """Drop blank lines (all fields missing), keeping row labels for line numbers; fail when none remain."""
    blank = raw.isna().all(axis=1).to_numpy()  # a mask, not a copy of the whole table
    rows = raw[~blank] if blank.any() else raw
    if rows.empty:
        raise DataError(f"{src.name}: expected at least one row after the header, found none")
    return rows


def _ids(values: pd.Series, src: _Source, column: str, categorical: bool = False) -> pd.Series:
    """Ids as strings (see `id_text`), or as a Categorical of str when `categorical`; a missing id is an error."""
    _fail_first(values.isna().to_numpy(), values, src, column, "a non-empty id")
    is_categorical = isinstance(values.dtype, pd.CategoricalDtype)
    if categorical and not is_categorical:
        values = values.astype("category")
    ids = id_text(values)
    return ids.astype(object) if is_categorical and not categorical else ids


def _numbers(values: pd.Series, src: _Source, column: str, expected: str = "a finite number",
             required: bool = True) -> pd.Series:
    """Parse numbers as float64; unparsable (and, when required, missing or infinite) values are errors."""
    parsed = to_float(values)
    bad = ~np.isfinite(parsed.to_numpy()) if required else (parsed.isna() & values.notna()).to_numpy()
    _fail_first(bad, values, src, column, expected)
    return parsed


def _fail_first(bad: np.ndarray, values: pd.Series, src: _Source, column: str, expected: str) -> None:
    """Raise a DataError for the first row flagged in `bad`, showing its raw value."""
    if bad.any():
        label = values.index[bad.argmax()]
        raise src.fail(label, column, expected, values.loc[label])


def _seconds(values: pd.Series, src: _Source, column: str) -> pd.Series:
    """Seconds since the epoch (see `to_seconds`); a missing, unparsable or infinite time is an error."""
    numbers = to_seconds(values)
    expected = "seconds since the epoch or an ISO 8601 date/time"
    _fail_first(~np.isfinite(numbers.to_numpy()), values, src, column, expected)
    return numbers


def _warn_strays(ratings: pd.Series, src: _Source) -> None:
    """Warn about a few ratings far outside the scale of the rest (100 and -3 among a million 1-5 stars).

    The scale [low, high] of the rest runs from the STRAY_MAX_SHARE to the 1 - STRAY_MAX_SHARE quantile, so
    fewer than that share of the rows at either end can lie out of it (`out_of_scale`). When some do, and the
    ratings in scale take at most GRID_MAX_VALUES values (stars, not play counts or other open scales), they
    are named. They are kept: a warning, not an error.
    """
    values = ratings.to_numpy()
    low, high = np.quantile(values, [STRAY_MAX_SHARE, 1 - STRAY_MAX_SHARE], method="inverted_cdf")
    stray = out_of_scale(values, low, high)
    if not stray.any() or high <= low or len(np.unique(values[~stray])) > GRID_MAX_VALUES:
        return
    rows = [f"{src.unit} {src.first + label}: {value:g}" for label, value in ratings[stray].head(5).items()]
    shown = ", ".join(rows) + (", ..." if stray.sum() > 5 else "")
    logger.warning("%s: %d of %d ratings lie far outside the scale %g to %g of the rest (%s); they are kept, "
                   "but check the file", src.name, stray.sum(), len(values), low, high, shown)


def _drop_duplicates(ratings: pd.DataFrame, src: _Source) -> tuple[pd.DataFrame, int]:
    """Keep the last rating of each (user, item) by timestamp; file order breaks ties or stands in."""
    if not ratings.duplicated([USER, ITEM]).any():
        return ratings, 0
    ordered = ratings.sort_values(TIME, kind="stable") if TIME in ratings else ratings
    keep = ~ordered.duplicated([USER, ITEM], keep="last").to_numpy()
    dropped = int((~keep).sum())
    logger.warning("%s: dropped %d duplicate (user_id, item_id) rows, keeping the last by %s", src.name,
                   dropped, "timestamp" if TIME in ratings else "file order")
    return ratings.loc[np.sort(ordered.index[keep])], dropped


def standardize_ratings(raw: pd.DataFrame, src: _Source, cols: Columns, categorical: bool = False) -> pd.DataFrame:
    """Validate a raw ratings table and rename it to the standard columns (see `load_ratings`)."""
    _require(raw, src, cols.user, "--user-col")
    _require(raw, src, cols.item, "--item-col")
    for column, default, option in ((cols.rating, RATING, "--rating-col"), (cols.time, TIME, "--time-col")):
        if column != default:
            _require(raw, src, column, option)
    raw = _nonblank(raw, src)
    out = pd.DataFrame({USER: _ids(raw[cols.user], src, cols.user, categorical),
                        ITEM: _ids(raw[cols.item], src, cols.item, categorical)})
    implicit = cols.rating not in raw.columns
    out[RATING] = 1.0 if implicit else _numbers(raw[cols.rating], src, cols.rating)
    if cols.time in raw.columns:
        out[TIME] = _seconds(raw[cols.time], src, cols.time)
    extras = [c for c in raw.columns if c not in cols and c not in RATING_COLUMNS]
    if extras:
        out = pd.concat([out, raw[extras]], axis=1)
    out, dropped = _drop_duplicates(out, src)
    if not implicit:
        _warn_strays(out[RATING], src)
    out = out.reset_index(drop=True)
    out.attrs.update(implicit=implicit, duplicates_dropped=dropped)
    return out


def standardize_features(raw: pd.DataFrame, src: _Source, id_col: str, kind: str) -> pd.DataFrame:
    """Validate a side-feature table: ids present and unique, id column first as `item_id`/`user_id`."""
    target = f"{kind}_id"
    _require(raw, src, id_col, f"--{kind}-col")
    if id_col != target and target in raw.columns:
        raise DataError(f"{src.name}: expected one id column, found both {id_col!r} and {target!r}")
    raw = _nonblank(raw, src)
    ids = _ids(raw[id_col], src, id_col)
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        label = ids.index[repeated.argmax()]
        first = ids.index[(ids == ids.loc[label]).to_numpy().argmax()]
        expected = f"unique ids (first seen on {src.unit} {src.first + first})"
        raise src.fail(label, id_col, expected, ids.loc[label])
    out = raw.drop(columns=id_col)
    out.insert(0, target, ids)
    return out.reset_index(drop=True)
