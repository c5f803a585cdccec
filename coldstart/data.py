"""Reading interaction logs and side features: CSV/TSV/Parquet, MovieLens, RecBole; validation; IdMap.

Every reader returns DataFrames whose ids are strings (`"007"` stays `"007"`) and reports bad input as a
`DataError` naming the file, the line (the header is line 1) or column, what was expected and what was found.

(Helper-owned skeleton: the Dataset container below is the shared interface.)
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
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
_RECBOLE = {".inter", ".item", ".user"}
# Missing-value tokens of feature/extra columns; in id/rating/time columns only the empty field is missing.
_NA_TOKENS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "null", "NULL", "None", "<NA>", "#N/A"]
_ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                  "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                  "Sci-Fi", "Thriller", "War", "Western"]  # used when u.genre is absent
_MOVIELENS_FILES = {"u.data", "u.item", "u.user", "ratings.dat", "movies.dat", "users.dat", "ratings.csv",
                    "ratings.csv.gz", "movies.csv"}
_LASTFM_FILES = {"user_artists.dat", "artists.dat"}


class DataError(ValueError):
    """Bad input; the message names the file, the line or column, what was expected and what was found."""


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


class _Columns(NamedTuple):
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
        shown = "an empty value" if pd.isna(found) else repr(found)
        return DataError(f"{self.name}{where}, column {column!r}: expected {expected}, found {shown}")


# ---------------------------------------------------------------- reading raw tables


def _read_csv(src: Path | io.IOBase, name: str, *, sep: str, text_cols: Iterable[str] = (),
              names: list[str] | None = None, quoting: int = csv.QUOTE_MINIMAL) -> pd.DataFrame:
    """Read delimited text; `text_cols` stay str (only "" is missing); blank lines become NaN rows."""
    opts = {"sep": sep, "quoting": quoting, "header": None if names else 0, "names": names}
    header = list(names) if names else _header(src, name, sep=sep, quoting=quoting)
    text_cols = set(text_cols)
    na = {c: [""] if c in text_cols else _NA_TOKENS for c in header}
    with _wrap_errors(name, sep):
        return pd.read_csv(src, dtype={c: str for c in header if c in text_cols}, keep_default_na=False,
                           na_values=na, skip_blank_lines=False, **opts)


def _header(src: Path | io.IOBase, name: str, *, sep: str, quoting: int = csv.QUOTE_MINIMAL,
            ) -> list[str]:
    """The column names of delimited text (rewinding a buffer afterwards)."""
    with _wrap_errors(name, sep):
        columns = list(pd.read_csv(src, sep=sep, quoting=quoting, nrows=0).columns)
    if hasattr(src, "seek"):
        src.seek(0)
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
    except (pd.errors.ParserError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        kind = "tab" if sep == "\t" else repr(sep)
        raise DataError(f"{name}: expected {kind}-separated text, found a parse error: {exc}") from exc


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
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
    typed = _header(path, src.name, sep="\t", quoting=csv.QUOTE_NONE)
    names = [c.partition(":")[0] for c in typed]
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
            raw[col] = _numbers(raw[col], src, col, required=False)
    return raw, src


def _token_seq(values: pd.Series) -> pd.Series:
    """Space-separated tokens → `|`-joined multi-valued string, unless nearly unique per row (a title)."""
    present = values.dropna()
    if present.nunique() >= 0.5 * len(present):
        return values
    return values.str.strip().str.replace(r"\s+", "|", regex=True)


def _read_any(path: str | Path, text_cols: Iterable[str], name: str | None = None,
              ) -> tuple[pd.DataFrame, _Source]:
    """Read CSV/TSV/Parquet/RecBole by extension (`-` is CSV on stdin); compressed text is read as it is."""
    if str(path) == "-":
        name = name or "<stdin>"
        buffer = io.BytesIO(sys.stdin.buffer.read())
        return _read_csv(buffer, name, sep=",", text_cols=text_cols), _Source(name)
    path, name = Path(path), name or str(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "nothing"
        raise DataError(f"{name}: expected a ratings or features file, found {found}")
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in _COMPRESSION]
    fmt = suffixes[-1] if suffixes else ""
    if fmt in (".parquet", ".pq"):
        return _read_parquet(path, name), _Source(name, "row", 1)
    if fmt in _RECBOLE:
        return _read_recbole(path, text_cols, name)
    sep = _SEPARATORS.get(fmt) or _sniff(path)
    return _read_csv(path, name, sep=sep, text_cols=text_cols), _Source(name)


def _read_known(path: Path, *, sep: str, text_cols: Iterable[str], names: list[str] | None = None,
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
    rows = raw.dropna(how="all")
    if rows.empty:
        raise DataError(f"{src.name}: expected at least one row after the header, found none")
    return rows


def _ids(values: pd.Series, src: _Source, column: str) -> pd.Series:
    """Ids as strings; integral numbers (Parquet) become their decimal text; a missing id is an error."""
    _fail_first(values.isna().to_numpy(), values, src, column, "a non-empty id")
    if pd.api.types.is_float_dtype(values) and (values % 1 == 0).all():
        values = values.astype("int64")
    return values.astype(str)


def _to_float(values: pd.Series) -> pd.Series:
    """float64 values; NaN where missing or unparsable."""
    parsed = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")
    return pd.Series(parsed.to_numpy(dtype="float64", na_value=np.nan), index=values.index)


def _numbers(values: pd.Series, src: _Source, column: str, expected: str = "a number",
             required: bool = True) -> pd.Series:
    """Parse numbers as float64; unparsable (and, when required, missing or infinite) values are errors."""
    parsed = _to_float(values)
    bad = ~np.isfinite(parsed.to_numpy()) if required else (parsed.isna() & values.notna()).to_numpy()
    _fail_first(bad, values, src, column, expected)
    return parsed


def _fail_first(bad: np.ndarray, values: pd.Series, src: _Source, column: str, expected: str) -> None:
    """Raise a DataError for the first row flagged in `bad`, showing its raw value."""
    if bad.any():
        label = values.index[bad.argmax()]
        raise src.fail(label, column, expected, values.loc[label])


def _seconds(values: pd.Series, src: _Source, column: str) -> pd.Series:
    """Seconds since the epoch from numbers or ISO 8601 date/times (naive ones read as UTC)."""
    expected = "seconds since the epoch or an ISO 8601 date/time"
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet timestamps
        return (pd.to_datetime(values, utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    numbers = _to_float(values)
    dates = values[numbers.isna() & values.notna()]
    if len(dates):
        stamps = pd.to_datetime(dates, format="ISO8601", utc=True, errors="coerce")
        numbers.loc[dates.index] = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    _fail_first(~np.isfinite(numbers.to_numpy()), values, src, column, expected)
    return numbers


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


def _standardize_ratings(raw: pd.DataFrame, src: _Source, cols: _Columns) -> pd.DataFrame:
    """Validate a raw ratings table and rename it to the standard columns (see `load_ratings`)."""
    _require(raw, src, cols.user, "--user-col")
    _require(raw, src, cols.item, "--item-col")
    for column, default, option in ((cols.rating, RATING, "--rating-col"), (cols.time, TIME, "--time-col")):
        if column != default:
            _require(raw, src, column, option)
    raw = _nonblank(raw, src)
    out = pd.DataFrame({USER: _ids(raw[cols.user], src, cols.user),
                        ITEM: _ids(raw[cols.item], src, cols.item)})
    implicit = cols.rating not in raw.columns
    out[RATING] = 1.0 if implicit else _numbers(raw[cols.rating], src, cols.rating)
    if cols.time in raw.columns:
        out[TIME] = _seconds(raw[cols.time], src, cols.time)
    extras = [c for c in raw.columns if c not in cols and c not in RATING_COLUMNS]
    out = pd.concat([out, raw[extras]], axis=1)
    out, dropped = _drop_duplicates(out, src)
    out = out.reset_index(drop=True)
    out.attrs.update(implicit=implicit, duplicates_dropped=dropped)
    return out


def _standardize_features(raw: pd.DataFrame, src: _Source, id_col: str, kind: str) -> pd.DataFrame:
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
                 time_col: str = TIME, name: str | None = None) -> pd.DataFrame:
    """Read and validate a ratings file (CSV, TSV, Parquet, RecBole `.inter`; `.gz`/`.zip`; `-` for stdin).

    Args:
        path: the file; the format comes from the extension.
        user_col: column holding user ids; `item_col`, `rating_col`, `time_col` likewise. A missing default
            `rating` column means implicit feedback; a missing `timestamp` column means no times.
        name: the file name shown in messages (default: the path as given).

    Returns:
        Columns `user_id`, `item_id` (str), `rating` (float64), `timestamp` (float64 seconds, when present),
        then the other columns unchanged; `attrs["implicit"]` and `attrs["duplicates_dropped"]` say how
        the file was read.

    Raises:
        DataError: the file is missing, empty, lacks an id column or holds an empty id or a bad rating/time.
    """
    cols = _Columns(user_col, item_col, rating_col, time_col)
    raw, src = _read_any(path, text_cols=cols, name=name)
    return _standardize_ratings(raw, src, cols)


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
    raw, src = _read_any(path, text_cols=[id_col])
    return _standardize_features(raw, src, id_col, kind)


def load_dataset(path: str | Path, *, items: str | Path | None = None, users: str | Path | None = None,
                 user_col: str = USER, item_col: str = ITEM, rating_col: str = RATING,
                 time_col: str = TIME) -> Dataset:
    """Read ratings and side features from a known layout or a plain ratings file.

    Known layouts (given the folder or a file in it): MovieLens 100K, 1M (and MeLU's `ml-1m-melu`), latest;
    RecBole atomic files; HetRec Last.fm 2k. Anything else is read with `load_ratings`.

    Args:
        path: a ratings file, a folder of a known layout or one of its files, or `-` for CSV on stdin.
        items: an item feature table (id column `item_col`) replacing the one found in the layout.
        users: a user feature table (id column `user_col`) replacing the one found in the layout.
        user_col: column names of a plain ratings file (and of RecBole/MovieLens CSV ratings).
        item_col: see `user_col`.
        rating_col: see `user_col`.
        time_col: see `user_col`.

    Raises:
        DataError: any file is missing or invalid, or a folder has no known layout.
    """
    cols = _Columns(user_col, item_col, rating_col, time_col)
    data = _load_known(Path(path), cols) if str(path) != "-" else None
    if data is None:
        ratings = load_ratings(path, user_col=user_col, item_col=item_col, rating_col=rating_col,
                               time_col=time_col)
        name = "stdin" if str(path) == "-" else Path(path).name.split(".")[0]
        data = Dataset(ratings, name=name, implicit=ratings.attrs["implicit"])
    if items is not None:
        data = dataclasses.replace(data, items=load_features(items, id_col=item_col, kind="item"))
    if users is not None:
        data = dataclasses.replace(data, users=load_features(users, id_col=user_col, kind="user"))
    return data


# ---------------------------------------------------------------- known layouts


def _load_known(path: Path, cols: _Columns) -> Dataset | None:
    """The dataset of a known layout at `path` (a folder or one of its files), or None for a plain file."""
    if path.is_file():
        if path.name in _MOVIELENS_FILES | _LASTFM_FILES:
            return _load_folder(path.parent, lastfm=path.name in _LASTFM_FILES, cols=cols)
        recbole = path.suffix.lower() in _RECBOLE
        return _load_recbole(path.with_suffix(".inter"), cols) if recbole else None
    if not path.is_dir():
        return None  # load_ratings reports the missing file
    inters = sorted(path.glob("*.inter"))
    if len(inters) > 1:
        found = ", ".join(p.name for p in inters)
        raise DataError(f"{path}: expected one RecBole .inter file, found {found}")
    if inters:
        return _load_recbole(inters[0], cols)
    return _load_folder(path, lastfm=(path / "user_artists.dat").is_file(), cols=cols)


def _load_folder(folder: Path, *, lastfm: bool, cols: _Columns) -> Dataset:
    """A MovieLens (100K, 1M, MeLU's 1M, latest) or Last.fm folder."""
    if lastfm:
        return _load_lastfm(folder)
    ratings = _first(folder, ("u.data", "ratings.dat", "ratings.csv", "ratings.csv.gz"))
    if ratings is None:
        found = sorted(p.name for p in folder.iterdir())
        raise DataError(f"{folder}: expected a known layout (MovieLens u.data/ratings.dat/ratings.csv, "
                        f"RecBole *.inter, Last.fm user_artists.dat), found {found}")
    frame = _movielens_ratings(ratings, cols)
    return Dataset(frame, _movielens_items(folder), _movielens_users(folder), folder.resolve().name,
                   frame.attrs["implicit"])


def _first(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _movielens_ratings(path: Path, cols: _Columns) -> pd.DataFrame:
    if path.name in ("u.data", "ratings.dat"):
        sep = "\t" if path.name == "u.data" else "::"
        raw, src = _read_known(path, sep=sep, text_cols=RATING_COLUMNS, names=list(RATING_COLUMNS))
        return _standardize_ratings(raw, src, _Columns())
    header = _header(path, str(path), sep=",")
    if "userId" in header and "movieId" in header:  # MovieLens latest
        cols = cols._replace(user="userId", item="movieId")
    return load_ratings(path, user_col=cols.user, item_col=cols.item, rating_col=cols.rating,
                        time_col=cols.time)


def _movielens_users(folder: Path) -> pd.DataFrame | None:
    path = _first(folder, ("u.user", "users.dat"))
    if path is None:
        return None
    if path.name == "u.user":
        names = [USER, "age", "gender", "occupation", "zip_code"]
        raw, src = _read_known(path, sep="|", text_cols=[USER, "zip_code"], names=names)
    else:  # ML-1M: gender before age; occupation is a code, i.e. a category
        names = [USER, "gender", "age", "occupation", "zip_code"]
        raw, src = _read_known(path, sep="::", text_cols=[USER, "occupation", "zip_code"], names=names)
    return _standardize_features(raw, src, USER, "user")


def _movielens_items(folder: Path) -> pd.DataFrame | None:
    path = _first(folder, ("u.item", "movies.dat", "movies.csv"))
    if path is None:
        return None
    if path.name == "u.item":
        return _ml100k_items(path, _ml100k_genres(folder / "u.genre"))
    if path.name == "movies.dat":
        names = [ITEM, "title", "genres"]
        raw, src = _read_known(path, sep="::", text_cols=names, names=names)
    else:
        raw, src = _read_any(path, text_cols=["movieId", "title", "genres"])
        raw = raw.rename(columns={"movieId": ITEM})
    raw["genres"] = raw["genres"].fillna("").replace("(no genres listed)", "")
    raw["year"] = pd.to_numeric(raw["title"].str.extract(r"\((\d{4})\)\s*$")[0]).astype("float64")
    return _standardize_features(raw, src, ITEM, "item")


def _ml100k_genres(path: Path) -> list[str]:
    if not path.is_file():
        return _ML100K_GENRES
    lines = path.read_text(encoding="latin-1").splitlines()
    return [line.split("|")[0] for line in lines if line.strip()]


def _ml100k_items(path: Path, genres: list[str]) -> pd.DataFrame:
    """u.item: 19 genre flags → one `Action|Comedy` column, release date → numeric `year`; URL dropped."""
    names = [ITEM, "title", "release_date", "video_date", "url", *genres]
    raw, src = _read_known(path, sep="|", text_cols=[ITEM, "title", "release_date"], names=names)
    flags = raw[genres].fillna(0).to_numpy(dtype=bool)  # (n_items, n_genres)
    labels = np.array(genres, dtype=object)
    raw["genres"] = ["|".join(labels[row]) for row in flags]
    released = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    raw["year"] = released.dt.year.astype("float64")
    return _standardize_features(raw[[ITEM, "title", "genres", "year"]], src, ITEM, "item")


def _load_recbole(inter: Path, cols: _Columns) -> Dataset:
    """RecBole atomic files `<name>.inter` (+ `<name>.item`, `<name>.user`) beside each other."""
    ratings = load_ratings(inter, user_col=cols.user, item_col=cols.item, rating_col=cols.rating,
                           time_col=cols.time)
    item_file, user_file = inter.with_suffix(".item"), inter.with_suffix(".user")
    items = load_features(item_file, id_col=cols.item, kind="item") if item_file.is_file() else None
    users = load_features(user_file, id_col=cols.user, kind="user") if user_file.is_file() else None
    return Dataset(ratings, items, users, inter.stem, ratings.attrs["implicit"])


def _load_lastfm(folder: Path) -> Dataset:
    """HetRec 2011 Last.fm: play counts are implicit feedback (rating 1.0, `weight` kept); artists = items."""
    raw, src = _read_known(folder / "user_artists.dat", sep="\t", text_cols=["userID", "artistID"])
    ratings = _standardize_ratings(raw, src, _Columns("userID", "artistID"))
    items = None
    if (folder / "artists.dat").is_file():
        raw, src = _read_known(folder / "artists.dat", sep="\t", text_cols=["id", "name"])
        raw = raw.drop(columns=[c for c in raw.columns if c.lower().endswith("url")])
        items = _standardize_features(raw, src, "id", "item")
    return Dataset(ratings, items, None, folder.resolve().name, implicit=True)


# ---------------------------------------------------------------- ids <-> indices


class IdMap:
    """Opaque string ids ↔ contiguous indices 0..n-1, in the order given.

    Args:
        ids: the distinct ids; index `i` is `ids[i]`.

    Raises:
        ValueError: an id appears twice.
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self._index = pd.Index(list(ids), dtype=object)
        if not self._index.is_unique:
            repeated = self._index[self._index.duplicated()][0]
            raise ValueError(f"IdMap ids must be unique, found {repeated!r} twice")
        self._ids = self._index.to_numpy()

    @classmethod
    def from_values(cls, values: Iterable[str]) -> IdMap:
        """The distinct ids of `values` in first-seen order."""
        values = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        return cls(values.unique())

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._index

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    def index(self, ids: Sequence[str] | pd.Series) -> np.ndarray:
        """Indices (int64) of `ids`; -1 for an id not in the map."""
        if isinstance(ids, str):
            raise TypeError("IdMap.index takes a sequence of ids; wrap a single id in a list")
        return self._index.get_indexer(pd.Index(ids, dtype=object)).astype(np.int64, copy=False)

    def ids(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The ids (object array of str) at `indices`.

        Raises:
            IndexError: an index is outside 0..len-1 (so -1 never silently means the last id).
        """
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            found = f"{indices.min()}..{indices.max()}"
            raise IndexError(f"IdMap indices must lie in 0..{len(self) - 1}, found {found}")
        return self._ids[indices]

    def to_list(self) -> list[str]:
        """The ids in index order."""
        return list(self._ids)
