"""One policy for ids, numbers and times, shared by files (`validate.py`) and API frames (`frames.py`).

Ids become strings (`"007"` stays `"007"`; a column of whole floats, `1.0`, reads `1`: `id_text`); numbers
become float64 with NaN for what is no real number (`to_float`); times become seconds since the epoch
(`to_seconds`). These converters never raise on bad values: the callers decide what is an error and say where.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

_INTEGRAL_TEXT = re.compile(r"-?\d+\.0+")  # how a float column writes a whole number: `1.0`, `-3.00`
SCALE_TOLERANCE = 0.25  # a rating further outside [min, max] than this share of max - min is out of scale


def plain(value: object, limit: int = 60) -> str:
    """A value as Python writes it, for messages (`'abc'`, `nan`, `inf`, never `np.float64(inf)`), cut to
    `limit` characters."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def id_text(values: pd.Series) -> pd.Series:
    """Ids (none missing) as strings. A column of whole numbers stored as floats, in Parquet or as the text a
    float column writes (every value like `1.0`), becomes their integer text `1`; the rest keep their text.

    A Categorical stays one, with the same policy applied to its (used) categories only: no str per row; ids
    that become equal (`1` and `"1"`) are merged into one category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _category_text(values)
    if pd.api.types.is_float_dtype(values) and (values % 1 == 0).all():
        small = (values.abs() < 2.0**63).all()  # else int64 would wrap: 1e20 must read 100000000000000000000
        text = values.astype("int64").astype(str) if small else values.map(lambda v: str(int(v)))
        return text.astype(object)
    text = values.astype(str).astype(object)
    if len(text) and _INTEGRAL_TEXT.fullmatch(text.iloc[0]) and text.str.fullmatch(_INTEGRAL_TEXT).all():
        return text.map(lambda t: str(int(t.partition(".")[0]))).astype(object)
    return text


def _category_text(values: pd.Series) -> pd.Series:
    """`id_text` of a Categorical Series (none missing), applied to its categories; codes stay as small as
    pandas makes them (int32 or narrower below 2**31 categories)."""
    used = values.cat.remove_unused_categories()  # the column policy must see only the ids that occur
    text = id_text(pd.Series(used.cat.categories.to_numpy())).to_numpy(object)  # (C,) str
    if pd.Index(text).is_unique:
        return used.cat.rename_categories(text)
    new_code, categories = pd.factorize(text)  # (C,), (C',): merge categories that became equal
    codes = new_code[used.cat.codes.to_numpy()]  # (n,)
    merged = pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))
    return pd.Series(merged, index=values.index, name=values.name)


def to_float(values: pd.Series) -> pd.Series:
    """float64 values; NaN where missing or not a real number (text that is no number, a date, a list...)."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        return pd.Series(np.nan, index=values.index)
    array = _numbers_of(values).to_numpy(na_value=np.nan)
    if np.iscomplexobj(array):
        array = np.where(array.imag == 0, array.real, np.nan)
    return pd.Series(array.astype("float64", copy=False), index=values.index)


def _numbers_of(values: pd.Series) -> pd.Series:
    """`pd.to_numeric(errors="coerce")`, one value at a time where it fails: on an integer too large for a
    float it raises, and among complex numbers it turns text and NaT into garbage numbers."""
    if pd.api.types.is_numeric_dtype(values):
        return values
    if values.dtype == object and values.map(lambda v: isinstance(v, complex | np.complexfloating)).any():
        return values.map(_float_or_nan)
    try:
        return pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        return values.map(_float_or_nan)


def _float_or_nan(value: object) -> float:
    if isinstance(value, complex | np.complexfloating):
        return float(value.real) if value.imag == 0 else np.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return np.nan


def to_seconds(values: pd.Series) -> pd.Series:
    """Seconds since the epoch (float64) from numbers, datetimes or ISO 8601 text (naive ones read as UTC);
    NaN where missing or unparsable."""
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet timestamps
        return _since_epoch(values)
    numbers = to_float(values)
    dates = (numbers.isna() & values.notna()).to_numpy()
    if dates.any():
        text = values[dates].astype(str)
        stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        numbers[dates] = _since_epoch(stamps).to_numpy()
    return numbers


def _since_epoch(stamps: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(stamps, utc=True)  # in their own unit: year 2263 overflows nanoseconds
    return (stamps - pd.Timestamp(0, tz="UTC").as_unit(stamps.dt.unit)).dt.total_seconds().astype("float64")


def out_of_scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(n,) True where a value lies further outside [low, high] than SCALE_TOLERANCE of high - low."""
    slack = SCALE_TOLERANCE * (high - low)
    return (values < low - slack) | (values > high + slack)
