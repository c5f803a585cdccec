"""Reading and validating interaction logs and side features; the `Dataset` container.

Generic readers for CSV/TSV/Parquet and RecBole atomic files, compressed (`.gz`/`.zip`/...) or on stdin, plus the
validation every layout shares. Known dataset layouts (MovieLens, RecBole folders, Last.fm) live in `formats.py`.

Every reader returns DataFrames whose ids are strings (`"007"` stays `"007"`; a column of whole floats,
`1.0`, reads `1`: `id_text`) and reports bad input as a `DataError` naming the file, the line (the header is
line 1) or column, what was expected and what was found. The value converters here (`id_text`, `to_float`,
`to_seconds`, `out_of_scale`) serve `frames.py` too, so files and API frames follow one policy.
"""
from __future__ import annotations
from .errors import DataError

import contextlib
import csv
import io
import logging
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

USER, ITEM, RATING, TIME = "user_id", "item_id", "rating", "timestamp"
RATING_COLUMNS = (USER, ITEM, RATING, TIME)
_COMPRESSION = {".gz", ".zip", ".bz2", ".xz", ".zst"}
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
RECBOLE = {".inter", ".item", ".user"}  # suffixes of RecBole atomic files
# Missing-value tokens of feature/extra columns; in id/rating/time columns only the empty field is missing.
_NA_TOKENS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "null", "NULL", "None", "<NA>", "#N/A"]
_INTEGRAL_TEXT = re.compile(r"-?\d+\.0+")  # how a float column writes a whole number: `1.0`, `-3.00`
SCALE_TOLERANCE = 0.25  # a rating further outside [min, max] than this share of max - min is out of scale
GRID_MAX_VALUES = 20  # explicit ratings taking at most this many distinct values lie on a grid (stars)
STRAY_MAX_SHARE = 0.005  # out-of-scale ratings rarer than this share of the rows (at an end) are strays


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


def plain(value: object, limit: int = 60) -> str:
    """A value as Python writes it, for messages (`'abc'`, `nan`, `inf`, never `np.float64(inf)`), cut to
    `limit` characters."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- reading raw tables


def _read_csv(src: Path | io.IOBase, name: str, *, sep: str, text_cols: Iterable[str] = (),
              names: list[str] | None = None, quoting: int = csv.QUOTE_MINIMAL,
              category_cols: Iterable[str] = ()) -> pd.DataFrame:
    """Read delimited text; `text_cols` stay str (only "" is missing), `category_cols` among them become
    Categorical of str (converted column by column after parsing); blank lines become NaN rows."""
    header, opts = _csv_options(src, name, sep, text_cols, names, quoting)
    with _wrap_errors(name, sep):
        frame = pd.read_csv(src, **opts)
    for col in set(category_cols) & set(frame.columns):  # the parser's own category dtype reads `007` as 7
        frame[col] = frame[col].astype("category")
    _check_width(frame, 0, name, header, names)
    return frame


def read_csv_chunks(path: Path, name: str, *, sep: str, text_cols: Iterable[str], rows: int
                    ) -> Iterator[tuple[pd.DataFrame, _Source]]:
    """`_read_csv` of a file with a header, `rows` rows at a time: each frame (labelled from 0) with the
    _Source that gives its rows' line numbers in the whole file."""
    header, opts = _csv_options(path, name, sep, text_cols, None, csv.QUOTE_MINIMAL)
    with _wrap_errors(name, sep):
        reader = pd.read_csv(path, chunksize=rows, **opts)
    start = 0
    while True:
        with _wrap_errors(name, sep):  # parse errors only: the checks and the consumer's own raise as they are
            frame = next(reader, None)
        if frame is None:
            return
        _check_width(frame, start, name, header, None)
        yield frame.reset_index(drop=True), _Source(name, "line", start + 2)
        start += len(frame)


def _csv_options(src: Path | io.IOBase, name: str, sep: str, text_cols: Iterable[str],
                 names: list[str] | None, quoting: int) -> tuple[list[str], dict]:
    """The header and `pd.read_csv` options of the project's text reading: `text_cols` as str, only "" missing
    in them, blank lines kept (as NaN rows)."""
    header = list(names) if names else read_header(src, name, sep=sep, quoting=quoting)
    text_cols = set(text_cols)
    na = {c: [""] if c in text_cols else _NA_TOKENS for c in header}
    return header, {"sep": sep, "quoting": quoting, "header": None if names else 0, "names": names,
                    "dtype": {c: str for c in header if c in text_cols}, "keep_default_na": False,
                    "na_values": na, "skip_blank_lines": False}


def _check_width(frame: pd.DataFrame, start: int, name: str, header: list[str], names: list[str] | None) -> None:
    """A DataError when pandas took the first field(s) of a row for row labels: a row wider than the header."""
    if not frame.index.equals(pd.RangeIndex(start, start + len(frame))):
        line = start + (1 if names else 2)
        raise DataError(f"{name}, line {line}: expected {len(header)} fields, as in the "
                        f"{'layout' if names else 'header'}, found more (a separator at the end of a line?)")


def read_header(src: Path | io.IOBase, name: str, *, sep: str, quoting: int = csv.QUOTE_MINIMAL,
                ) -> list[str]:
    """The column names of delimited text (rewinding a buffer afterwards)."""
    with _wrap_errors(name, sep):
        columns = list(pd.read_csv(src, sep=sep, quoting=quoting, nrows=0, skip_blank_lines=False).columns)
    if hasattr(src, "seek"):
        src.seek(0)
    if not columns:
        raise DataError(f"{name}, line 1: expected a header naming the columns, found a blank line")
    return columns


@contextlib.contextmanager
def _wrap_errors(name: str, sep: str) -> Iterator[None]:
    """Turn pandas/codec/compression errors on bad content into DataError naming the file."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: expected a header and rows, found an empty file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: expected UTF-8 text, found undecodable bytes ({exc.reason})") from exc
    except (pd.errors.ParserError, csv.Error, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        kind = "tab" if sep == "\t" else repr(sep)
        raise DataError(f"{name}: expected {kind}-separated text, found a parse error: {exc}") from exc


def _read_parquet(path: Path, name: str, category_cols: Iterable[str] = ()) -> pd.DataFrame:
    """Read Parquet; string columns among `category_cols` are read as their dictionary (Categorical), never
    as one str object per row."""
    category_cols = list(category_cols)
    try:
        return pd.read_parquet(path, read_dictionary=category_cols) if category_cols else pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many unrelated types for a bad file
        raise DataError(f"{name}: expected a Parquet file: {exc}") from exc


def _sniff(path: Path) -> str:
    """Guess the separator of an unknown text file from its first line (tab, comma, semicolon or pipe)."""
    if path.suffix.lower() in _COMPRESSION:
        return ","
    with open(path, encoding="utf-8", errors="replace") as f:
        line = f.readline()
    return max(("\t", ",", ";", "|"), key=line.count)


def _read_recbole(path: Path, text_cols: Iterable[str], name: str) -> tuple[pd.DataFrame, _Source]:
    """Read a RecBole atomic file: drop `:type` from names, join token_seq by `|` (titles keep spaces)."""
    src = _Source(name)
    typed = read_header(path, src.name, sep="\t", quoting=csv.QUOTE_NONE)
    names = [c.partition(":")[0] for c in typed]
    repeated = [n for n in names if names.count(n) > 1]
    if repeated:
        raise DataError(f"{src.name}: expected each column once, found {repeated[0]!r} more than once "
                        f"(header {', '.join(typed)})")
    types = dict(zip(names, (c.partition(":")[2] for c in typed), strict=True))
    text = [t for t, n in zip(typed, names, strict=True) if n in text_cols or types[n] != "float"]
    raw = _read_csv(path, src.name, sep="\t", text_cols=text, quoting=csv.QUOTE_NONE)
    raw.columns = names
    for col, kind in types.items():
        if col in text_cols:
            continue
        if kind == "token_seq":
            raw[col] = _token_seq(raw[col])
        elif kind == "float":
            raw[col] = _numbers(raw[col], src, col, "a number", required=False)
    return raw, src


def _token_seq(values: pd.Series) -> pd.Series:
    """Space-separated tokens → `|`-joined multi-valued string, unless nearly unique per row (a title)."""
    present = values.dropna()
    if present.nunique() >= 0.5 * len(present):
        return values
    return values.str.strip().str.replace(r"\s+", "|", regex=True)


def read_any(path: str | Path, text_cols: Iterable[str], name: str | None = None,
             category_cols: Iterable[str] = ()) -> tuple[pd.DataFrame, _Source]:
    """Read CSV/TSV/Parquet/RecBole by extension (`-` is CSV on stdin); compressed text is read as it is.
    Text columns among `category_cols` (CSV, Parquet) are read as Categorical, without a str object per row."""
    text_cols, category_cols = list(text_cols), list(category_cols)
    if str(path) == "-":
        name = name or "<stdin>"
        buffer = io.BytesIO(sys.stdin.buffer.read())
        return _read_csv(buffer, name, sep=",", text_cols=text_cols, category_cols=category_cols), _Source(name)
    path, name = Path(path), name or str(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "nothing"
        raise DataError(f"{name}: expected a ratings or features file, found {found}")
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in _COMPRESSION]
    fmt = suffixes[-1] if suffixes else ""
    if fmt in (".parquet", ".pq"):
        return _read_parquet(path, name, category_cols), _Source(name, "row", 1)
    if fmt in RECBOLE:
        return _read_recbole(path, text_cols, name)
    sep = _SEPARATORS.get(fmt) or _sniff(path)
    return _read_csv(path, name, sep=sep, text_cols=text_cols, category_cols=category_cols), _Source(name)


def read_known(path: Path, *, sep: str, text_cols: Iterable[str], names: list[str] | None = None,
               ) -> tuple[pd.DataFrame, _Source]:
    """Read a file of a known layout: UTF-8 or else latin-1, no quoting, `::` allowed as separator."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if sep == "::":
        text, sep = text.replace("::", "\t"), "\t"
    frame = _read_csv(io.StringIO(text), str(path), sep=sep, text_cols=text_cols, names=names,
                      quoting=csv.QUOTE_NONE)
    return frame, _Source(str(path), first=1 if names else 2)


# ---------------------------------------------------------------- validating and converting columns


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


def out_of_scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(n,) True where a value lies further outside [low, high] than SCALE_TOLERANCE of high - low."""
    slack = SCALE_TOLERANCE * (high - low)
    return (values < low - slack) | (values > high + slack)


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


# ---------------------------------------------------------------- public readers


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


# ---------------------------------------------------------------- ids <-> indices
