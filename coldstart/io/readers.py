"""Reading raw tables: CSV/TSV/Parquet and RecBole atomic files, compressed (`.gz`/`.zip`/...) or on stdin.

Each reader returns the table as read (the columns named in `text_cols` as str, only "" missing in them)
with the `_Source` that gives its rows' line numbers; bad content (an empty file, undecodable bytes, a parse
error, a row wider than its header) is a `DataError` naming the file. Checking values is `validate.py`'s work.
"""
from __future__ import annotations

import contextlib
import csv
import io
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from ..errors import DataError
from .validate import _numbers, _Source

_COMPRESSION = {".gz", ".zip", ".bz2", ".xz", ".zst"}
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
RECBOLE = {".inter", ".item", ".user"}  # suffixes of RecBole atomic files
# Missing-value tokens of feature/extra columns; in id/rating/time columns only the empty field is missing.
_NA_TOKENS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "null", "NULL", "None", "<NA>", "#N/A"]


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
