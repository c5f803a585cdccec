"""Property-based fuzzing of every input boundary: the file readers and the API's DataFrame checks.

The property, for every input: it either loads into a valid dataset (string ids, none missing; finite float64
ratings and timestamps; feature tables the encoder can fit) or fails with the project's clean error
(`DataError` from the readers, `ValueError` from `frames`), never any other exception. Bounded and
derandomized, so the run is short and CI sees the same examples every time;
`COLDSTART_FUZZ_SCALE=30 python -m pytest tests/test_fuzz.py` multiplies every example count for a deeper
search by hand.
"""
from __future__ import annotations

import bz2
import gzip
import io
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from coldstart.errors import DataError
from coldstart.features import FeatureEncoder
from coldstart.frames import check_frame, support_rows
from coldstart.ids import IdMap
from coldstart.io import Dataset, load_dataset, load_features, load_ratings

SCALE = int(os.environ.get("COLDSTART_FUZZ_SCALE", "1"))
KEYS = ["user_id", "item_id", "rating", "timestamp"]


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- strategies

EDGE_TEXT = [
    "", " ", "0", "-0", "-0.0", "1", "1.0", "007", "007.0", "1.5", "5", "-3", "100", "1e308", "-1e308",
    "1e400", "-1e400", "5e-324", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "NA", "None", "null",
    "1.0e3", "+1", "99999999999999999999", "9223372036854775808", "1" + "0" * 400, "0x10", "1_000", " 2 ",
    "True", "2020-01-01", "2020-01-01T00:00:00Z", "1970-01-01 00:00:00+01:00", "99999-01-01",
    "\u00e9", "\u2603", "\U0001f600", "\x00", '"', '""', "a,b", "a\tb", "a|b", "a;b", "a::b", "a\nb", "\r",
    "\ufeff",
]
cells = st.one_of(st.sampled_from(EDGE_TEXT), st.integers(-3, 6).map(str), st.sampled_from(["a", "b", "c"]),
                  st.text(max_size=6), st.floats().map(repr), st.integers().map(str))
names = st.one_of(st.sampled_from(KEYS + ["title", "genres", "name", "id", "weight"]), st.text(max_size=5))
SEPARATORS = [",", "\t", ";", "|"]


@st.composite
def table_text(draw: st.DrawFn, sep: str | None = None, header: list[str] | None = None) -> str:
    """Delimited text: a header (often the standard columns), rows mostly as wide as it (sometimes ragged),
    fields sometimes quoted, any line ending, sometimes a trailing separator."""
    sep = sep or draw(st.sampled_from(SEPARATORS))
    if header is None:
        standard = draw(st.sampled_from([["user_id", "item_id"], ["user_id", "item_id", "rating"], KEYS]))
        header = draw(st.one_of(st.just(standard), st.lists(names, max_size=5),
                                st.lists(names, max_size=2).map(lambda extra: standard + extra)))
    width = len(header)
    ragged = draw(st.sampled_from([0, 0, 0, 1]))
    row = st.lists(cells, min_size=max(0, width - ragged), max_size=width + ragged)
    rows = draw(st.lists(row, max_size=10))
    quote = draw(st.sampled_from(["", "", '"']))
    eol = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    trail = draw(st.sampled_from(["", "", sep]))

    def field(text: str) -> str:
        return quote + text.replace('"', '""') + quote if quote else text

    lines = [sep.join(field(c) for c in row) + trail for row in [header, *rows]]
    return eol.join(lines) + draw(st.sampled_from(["", eol]))


def pack(data: bytes, suffix: str) -> bytes:
    """`data` compressed as the file suffix says."""
    if suffix.endswith(".gz"):
        return gzip.compress(data)
    if suffix.endswith(".bz2"):
        return bz2.compress(data)
    if suffix.endswith(".zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("ratings.csv", data)
        return buffer.getvalue()
    return data


# ---------------------------------------------------------------- the property


def valid_ratings(df: pd.DataFrame) -> None:
    assert list(df.columns[:3]) == ["user_id", "item_id", "rating"] and len(df) > 0
    for col in ("user_id", "item_id"):
        assert all(type(v) is str for v in df[col]), col
    assert df["rating"].dtype == np.float64 and np.isfinite(df["rating"]).all()
    if "timestamp" in df:
        assert df["timestamp"].dtype == np.float64 and np.isfinite(df["timestamp"]).all()
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert df.index.equals(pd.RangeIndex(len(df)))


def valid_features(df: pd.DataFrame, kind: str) -> None:
    key = f"{kind}_id"
    assert df.columns[0] == key and list(df.columns).count(key) == 1 and len(df) > 0
    assert all(type(v) is str for v in df[key]) and df[key].is_unique
    encoder = FeatureEncoder.fit(df, key)  # whatever loads, the encoder can fit and encode
    encoded = encoder.transform(df, [*df[key], "unknown"])
    assert encoded.numeric.shape == (len(df) + 1, len(encoder.numeric_fields))
    assert torch.isfinite(encoded.numeric).all()


def valid_dataset(data: Dataset) -> None:
    valid_ratings(data.ratings)
    assert data.implicit == data.ratings.attrs["implicit"]
    for table, kind in ((data.items, "item"), (data.users, "user")):
        if table is not None:
            valid_features(table, kind)


def loads_or_fails_cleanly(load: Callable[[], object], check: Callable[[object], None], where: Path
                           ) -> None:
    """The property: `load()` gives a valid result, or raises a DataError naming the file (or folder) in
    `where`; anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' own warnings are not the readers' errors
        try:
            result = load()
        except DataError as exc:
            assert str(where) in str(exc) and "Traceback" not in str(exc)
            return
    check(result)


def load_all(path: Path) -> None:
    """Every reader on one file: ratings, item and user features, and load_dataset on the file."""
    loads_or_fails_cleanly(lambda: load_ratings(path), valid_ratings, path)
    loads_or_fails_cleanly(lambda: load_features(path, id_col="user_id", kind="user"),
                           lambda df: valid_features(df, "user"), path)
    loads_or_fails_cleanly(lambda: load_dataset(path), valid_dataset, path.parent)


# ---------------------------------------------------------------- readers


@fuzz(150)
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".txt", ".csv.gz", ".parquet",
                                                              ".inter", ".csv.zip", ".csv.bz2"]))
def test_arbitrary_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"r{suffix}"
        path.write_bytes(data)
        load_all(path)


@fuzz(300)
@given(text=table_text(), suffix=st.sampled_from([".csv", ".csv", ".tsv", ".txt", ".csv.gz", ".csv.zip"]))
def test_delimited_text(text, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"r{suffix}"
        path.write_bytes(pack(text.encode("utf-8"), suffix))
        load_all(path)


recbole_names = st.tuples(st.sampled_from(KEYS + ["title", "class", "age"]),
                          st.sampled_from([":token", ":float", ":token_seq", ":float_seq", "", ":"]))


@fuzz(120)
@given(data=st.data(), header=st.lists(recbole_names.map("".join), min_size=1, max_size=5),
       side=st.sampled_from(["", ".item", ".user"]))
def test_recbole_atomic_files(data, header, side):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "toy.inter").write_text(data.draw(table_text(sep="\t", header=header)), encoding="utf-8")
        if side:
            key = "item_id:token" if side == ".item" else "user_id:token"
            text = data.draw(table_text(sep="\t", header=[key, "title:token_seq", "score:float"]))
            (folder / f"toy{side}").write_text(text, encoding="utf-8")
        loads_or_fails_cleanly(lambda: load_dataset(folder), valid_dataset, folder)


LAYOUTS = {  # a known layout's files: name -> (separator as written, header or None)
    "u.data": ("\t", None), "u.item": ("|", None), "u.user": ("|", None), "u.genre": ("|", None),
    "ratings.dat": ("::", None), "movies.dat": ("::", None), "users.dat": ("::", None),
    "ratings.csv": (",", ["userId", "movieId", "rating", "timestamp"]),
    "movies.csv": (",", ["movieId", "title", "genres"]),
    "user_artists.dat": ("\t", ["userID", "artistID", "weight"]),
    "artists.dat": ("\t", ["id", "name", "url"]),
}
FOLDERS = [["u.data", "u.item", "u.user"], ["u.data", "u.item", "u.genre"],
           ["ratings.dat", "movies.dat", "users.dat"], ["ratings.csv", "movies.csv"],
           ["user_artists.dat", "artists.dat"]]


@st.composite
def layout_file(draw: st.DrawFn, name: str) -> bytes:
    """A file of a known layout: its separator and header, fuzzed rows; sometimes latin-1, sometimes junk."""
    sep, header = LAYOUTS[name]
    width = len(header) if header else draw(st.integers(1, 6))
    text = draw(table_text(sep="\t", header=header or [f"c{i}" for i in range(width)]))
    if header is None:
        text = text.split("\n", 1)[-1] if "\n" in text else ""
    text = text.replace("\t", sep)
    return draw(st.one_of(st.just(text.encode("utf-8")), st.just(text.encode("utf-8", "replace")),
                          st.binary(max_size=80)))


@fuzz(150)
@given(data=st.data(), files=st.sampled_from(FOLDERS), via_file=st.booleans())
def test_known_layouts(data, files, via_file):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "layout"
        folder.mkdir()
        for name in files[: data.draw(st.integers(1, len(files)))]:
            (folder / name).write_bytes(data.draw(layout_file(name)))
        path = folder / files[0] if via_file else folder
        loads_or_fails_cleanly(lambda: load_dataset(path), valid_dataset, folder)


# Column values of one kind each (Parquet stores one type per column), numeric edge cases included.
floats_ = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1.0, 1e308, -1e308, float("nan"), float("inf"),
                                                  float("-inf"), 1e20, 2.0**63]))
COLUMN_KINDS = {
    "int": st.integers(-(2**63), 2**63 - 1), "float": floats_,
    "text": st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=5)),
    "bool": st.booleans(), "maybe_int": st.one_of(st.none(), st.integers(-5, 5)),
    "datetime": st.one_of(st.none(), st.datetimes().map(pd.Timestamp)),
    "list": st.lists(st.integers(0, 3), max_size=2),
}


@st.composite
def frames(draw: st.DrawFn, column_names: st.SearchStrategy[str]) -> pd.DataFrame:
    """A frame Parquet can hold: one kind of value per column."""
    n = draw(st.integers(0, 8))
    columns = draw(st.lists(column_names, min_size=1, max_size=5, unique=True))
    data = {}
    for col in columns:
        kind = draw(st.sampled_from(sorted(COLUMN_KINDS)))
        data[col] = pd.Series(draw(st.lists(COLUMN_KINDS[kind], min_size=n, max_size=n)), dtype=object)
        data[col] = data[col].infer_objects() if kind != "list" else data[col]
    return pd.DataFrame(data)


@fuzz(150)
@given(frame=frames(st.sampled_from(KEYS + ["x"])))
def test_parquet_files(frame):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.parquet"
        try:
            frame.to_parquet(path)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):  # pyarrow cannot store this frame
            assume(False)
        load_all(path)


@fuzz(60)
@given(ids=st.lists(st.one_of(st.integers(-(10**15), 10**15), st.integers(-20, 20).map(lambda i: i / 4)),
                    min_size=1, max_size=6).map(lambda ids: [float(i) for i in ids]))
def test_float_ids_read_alike_from_csv_parquet_and_frames(ids):
    """pandas writes a float id column as `1.0` (in plain decimals below 1e16): all boundaries read one id."""
    frame = pd.DataFrame({"user_id": ids, "item_id": [f"i{k}" for k in range(len(ids))], "rating": 1.0})
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / "r.csv", index=False)
        frame.to_parquet(Path(tmp) / "r.parquet")
        from_csv, from_parquet = load_ratings(Path(tmp) / "r.csv"), load_ratings(Path(tmp) / "r.parquet")
    expected = from_parquet["user_id"].tolist()
    assert from_csv["user_id"].tolist() == expected == check_frame(frame, "ratings")["user_id"].tolist()
    if all(v.is_integer() for v in ids):
        assert expected == [str(int(v)) for v in ids]


# ---------------------------------------------------------------- the API's DataFrame boundary

MIXED = st.one_of(COLUMN_KINDS["int"], floats_, COLUMN_KINDS["text"], st.booleans(), st.none(),
                  st.just(pd.NA), st.just(pd.NaT), st.integers(2**63, 2**80), st.just(10**400),
                  st.complex_numbers(max_magnitude=9),
                  st.datetimes(), st.lists(st.integers(), max_size=2), floats_.map(np.float64),
                  st.integers(-5, 5).map(np.int64))


@st.composite
def api_frames(draw: st.DrawFn) -> pd.DataFrame:
    """A user's DataFrame: the standard columns (sometimes one missing or doubled), each column either of one
    kind (as pandas infers it) or of mixed Python objects, any index."""
    n = draw(st.integers(0, 8))
    columns = draw(st.lists(st.sampled_from(KEYS + ["x"]), min_size=1, max_size=6))
    values = {}
    for i, col in enumerate(columns):
        kind = draw(st.sampled_from([*sorted(COLUMN_KINDS), "mixed"]))
        cells = MIXED if kind == "mixed" else COLUMN_KINDS[kind]
        values[i] = pd.Series(draw(st.lists(cells, min_size=n, max_size=n)), dtype=object)
        values[i] = values[i].infer_objects() if kind not in ("list", "mixed") else values[i]
    frame = pd.DataFrame(values)
    frame.columns = columns
    indexes = [frame.index, pd.Index([0] * n), pd.Index([f"r{i}" for i in range(n)])]
    frame.index = draw(st.sampled_from(indexes))
    return frame


def valid_checked(out: pd.DataFrame, frame: pd.DataFrame, need_rating: bool) -> None:
    assert len(out) == len(frame) and out.index.equals(pd.RangeIndex(len(frame)))
    for col in ("user_id", "item_id"):
        assert out[col].dtype == object and all(type(v) is str for v in out[col])
    if need_rating:
        assert out["rating"].dtype == np.float64 and np.isfinite(out["rating"]).all()
    if "timestamp" in out:
        assert out["timestamp"].dtype == np.float64 and np.isfinite(out["timestamp"]).all()


@fuzz(400)
@given(frame=api_frames(), need_rating=st.booleans())
def test_check_frame(frame, need_rating):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = check_frame(frame, "support", need_rating=need_rating)
        except ValueError as exc:
            assert str(exc).startswith("support: ") and "np." not in str(exc)
            return
    valid_checked(out, frame, need_rating)


CATALOGUE = IdMap(["1", "2", "007", "a", "b", "-3"])


@fuzz(200)
@given(ratings=st.lists(MIXED, min_size=1, max_size=6))
@example(ratings=[0j, pd.NaT]).via("discovered failure")  # pandas read these as garbage numbers
@example(ratings=[0j, " "]).via("discovered failure")
def test_check_frame_reads_ratings_as_their_number_or_names_the_first_bad_one(ratings):
    frame = pd.DataFrame({"user_id": "u", "item_id": [f"i{k}" for k in range(len(ratings))],
                          "rating": pd.Series(ratings, dtype=object)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = check_frame(frame, "support")
        except ValueError as exc:
            expected = r"support: row \d, column 'rating': expected a finite number, found .+"
            assert re.fullmatch(expected, str(exc))
            return
    expected = [v.real if isinstance(v, complex) else float(v) for v in ratings]
    assert out["rating"].tolist() == expected


finite_pairs = st.tuples(floats_, floats_).filter(lambda s: np.isfinite(s).all())
scales = st.one_of(st.none(), st.just((1.0, 5.0)), st.just((1.0, 1.0)), finite_pairs.map(sorted).map(tuple))


@fuzz(300)
@given(frame=api_frames(), extra=st.lists(st.sampled_from(["u", "1", "z"]), max_size=2), scale=scales)
def test_support_rows(frame, extra, scale):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            users, rows, items, ratings = support_rows(frame, CATALOGUE, extra, scale)
        except ValueError as exc:
            assert str(exc).startswith("support: ") and "np." not in str(exc)
            return
    assert all(type(u) is str for u in users) and len(set(users)) == len(users) and set(extra) <= set(users)
    assert len(rows) == len(items) == len(ratings) and rows.dtype == items.dtype == np.int64
    assert ((rows >= 0) & (rows < len(users))).all() and ((items >= 0) & (items < len(CATALOGUE))).all()
    assert ratings.dtype == np.float64 and np.isfinite(ratings).all()
    if scale is not None and scale[1] > scale[0]:
        slack = 0.25 * (scale[1] - scale[0])
        assert ((ratings >= scale[0] - slack) & (ratings <= scale[1] + slack)).all()
    assert len(set(zip(rows.tolist(), items.tolist(), strict=True))) == len(rows)  # one row per (user, item)
