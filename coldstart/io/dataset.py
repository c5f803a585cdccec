"""The `Dataset` container and the two validated readers, `load_ratings` and `load_features`.

Both read any file `readers.read_any` reads and validate it with `validate.py`; every error is a `DataError`
naming the file, the line (the header is line 1) or column, what was expected and what was found.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .readers import read_any
from .validate import ITEM, RATING, TIME, USER, Columns, standardize_features, standardize_ratings


@dataclass(frozen=True)
class Dataset:
    """Ratings plus optional side features, with ids as strings.

    Attributes:
        ratings: columns `user_id` (str), `item_id` (str), `rating` (float64) and, when known,
            `timestamp` (float64, seconds since the epoch); extra columns (e.g. MeLU's `split`) may follow.
        items: `item_id` (str) then feature columns, or None.
        users: `user_id` (str) then feature columns, or None.
        name: a short human-readable name of the source.
        implicit: True when the source had no rating column (every rating is 1.0).
    """

    ratings: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    name: str = "ratings"
    implicit: bool = False


def load_ratings(path: str | Path, *, user_col: str = USER, item_col: str = ITEM, rating_col: str = RATING,
                 time_col: str = TIME, name: str | None = None, categorical: bool = False) -> pd.DataFrame:
    """Read and validate a ratings file (CSV, TSV, Parquet, RecBole `.inter`; `.gz`/`.zip`; `-` for stdin).

    Args:
        path: the file; the format comes from the extension.
        user_col: column holding user ids; `item_col`, `rating_col`, `time_col` likewise. A missing default
            `rating` column means implicit feedback; a missing `timestamp` column means no times.
        name: the file name shown in messages (default: the path as given).
        categorical: return the id columns as pandas Categorical (str categories, int32 or narrower codes)
            instead of str objects, read so from CSV/Parquet: no Python str per row, for logs of millions of
            ratings (what `coldstart fit` reads). Ids, validation and messages are the same.

    Returns:
        Columns `user_id`, `item_id` (str, or Categorical of str), `rating` (float64), `timestamp` (float64 seconds, when present),
        then the other columns unchanged; `attrs["implicit"]` and `attrs["duplicates_dropped"]` say how
        the file was read. Dropped duplicates and a few ratings far off the scale of the rest (`_warn_strays`)
        are logged as warnings.

    Raises:
        DataError: the file is missing, empty, lacks an id column, has a row wider than its header, or holds
            an empty id or a missing, unparsable or infinite rating/time.
    """
    cols = Columns(user_col, item_col, rating_col, time_col)
    raw, src = read_any(path, text_cols=cols, name=name, category_cols=(user_col, item_col) if categorical else ())
    return standardize_ratings(raw, src, cols, categorical)


def load_features(path: str | Path, *, id_col: str, kind: str) -> pd.DataFrame:
    """Read and validate a side-feature table (same formats as `load_ratings`).

    Args:
        path: the file.
        id_col: the column holding the ids; it is renamed to `item_id` or `user_id`.
        kind: "item" or "user".

    Returns:
        The id column (str) first, then every other column as read (text stays text, numbers numeric).

    Raises:
        DataError: the file is missing or empty, lacks the id column, or holds an empty or repeated id.
    """
    if kind not in ("item", "user"):
        raise ValueError(f"kind must be 'item' or 'user', got {kind!r}")
    raw, src = read_any(path, text_cols=[id_col])
    return standardize_features(raw, src, id_col, kind)
