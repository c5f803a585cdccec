"""Tests of coldstart.io: readers, validation messages, duplicate policy, side features and IdMap."""
from __future__ import annotations

import io
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldstart.errors import DataError
from coldstart.ids import IdMap
from coldstart.io import load_features, load_ratings


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- plain ratings files


def test_csv_ids_stay_strings_and_ratings_are_floats(tmp_path):
    df = load_ratings(write(tmp_path / "r.csv", "user_id,item_id,rating\n007,0042,5\n7,42,3.5\n"))
    assert list(df.columns) == ["user_id", "item_id", "rating"]
    assert df["user_id"].tolist() == ["007", "7"]
    assert df["item_id"].tolist() == ["0042", "42"]
    assert all(type(v) is str for v in df["user_id"])
    assert df["rating"].dtype == np.float64 and df["rating"].tolist() == [5.0, 3.5]
    assert df.attrs["implicit"] is False and df.attrs["duplicates_dropped"] == 0


def test_na_like_ids_are_ids_not_missing(tmp_path):
    df = load_ratings(write(tmp_path / "r.csv", "user_id,item_id,rating\nNA,None,1\n"))
    assert df["user_id"].tolist() == ["NA"] and df["item_id"].tolist() == ["None"]


def test_tsv_parquet_gz_zip_read_the_same(tmp_path):
    frame = pd.DataFrame({"user_id": ["007", "1"], "item_id": ["a", "b"], "rating": [4.0, 2.0]})
    frame.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    frame.to_csv(tmp_path / "r.csv.gz", index=False)
    with zipfile.ZipFile(tmp_path / "r.csv.zip", "w") as zf:
        zf.writestr("r.csv", frame.to_csv(index=False))
    write(tmp_path / "r.txt", frame.to_csv(sep="\t", index=False))
    for name in ("r.tsv", "r.parquet", "r.csv.gz", "r.csv.zip", "r.txt"):
        df = load_ratings(tmp_path / name)
        pd.testing.assert_frame_equal(df[["user_id", "item_id", "rating"]].astype(object),
                                      frame.astype(object), check_dtype=False, obj=name)
        assert all(type(v) is str for v in df["user_id"]), name


def test_parquet_integer_ids_become_text(tmp_path):
    pd.DataFrame({"user_id": [7, 8], "item_id": [1, 2]}).to_parquet(tmp_path / "r.parquet")
    df = load_ratings(tmp_path / "r.parquet")
    assert df["user_id"].tolist() == ["7", "8"] and df["item_id"].tolist() == ["1", "2"]


def test_implicit_feedback_without_rating_column(tmp_path):
    df = load_ratings(write(tmp_path / "clicks.csv", "user_id,item_id\nu1,i1\nu1,i2\n"))
    assert df["rating"].tolist() == [1.0, 1.0] and df["rating"].dtype == np.float64
    assert df.attrs["implicit"] is True
    assert "timestamp" not in df.columns


def test_iso_and_numeric_timestamps_become_seconds(tmp_path):
    text = ("user_id,item_id,timestamp\na,x,2020-01-01T00:00:00Z\na,y,2020-01-01 01:00:00+01:00\n"
            "b,x,1577836800\n")
    df = load_ratings(write(tmp_path / "r.csv", text))
    assert df["timestamp"].dtype == np.float64
    assert df["timestamp"].tolist() == [1577836800.0] * 3


def test_extra_columns_kept_and_order_preserved(tmp_path):
    text = "user_id,item_id,rating,split,score\nb,x,1,train,0.5\na,y,2,test,0.25\n"
    df = load_ratings(write(tmp_path / "r.csv", text))
    assert list(df.columns) == ["user_id", "item_id", "rating", "split", "score"]
    assert df["split"].tolist() == ["train", "test"] and df["score"].dtype == np.float64
    assert df["user_id"].tolist() == ["b", "a"]


def test_column_mapping(tmp_path):
    text = "uid;iid;stars;when\n1;10;4;100\n2;20;5;200\n"
    path = write(tmp_path / "r.csv", text.replace(";", ","))
    df = load_ratings(path, user_col="uid", item_col="iid", rating_col="stars", time_col="when")
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert df["rating"].tolist() == [4.0, 5.0] and df["timestamp"].tolist() == [100.0, 200.0]


def test_stdin(tmp_path, monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(b"user_id,item_id,rating\n007,1,3\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    df = load_ratings("-")
    assert df["user_id"].tolist() == ["007"] and df["rating"].tolist() == [3.0]


# ---------------------------------------------------------------- validation messages


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv.*found nothing"):
        load_ratings(tmp_path / "nope.csv")


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match=r"empty\.csv: .*empty file"):
        load_ratings(write(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match=r"header\.csv: expected at least one row after the header, found none"
                       ):
        load_ratings(write(tmp_path / "header.csv", "user_id,item_id,rating\n"))


def test_missing_id_column_lists_found_columns_and_option(tmp_path):
    path = write(tmp_path / "r.csv", "userId,item_id,rating\n1,2,3\n")
    expected = (r"r\.csv: expected a column 'user_id' \(choose another with --user-col\), "
                r"found columns 'userId', 'item_id', 'rating'")
    with pytest.raises(DataError, match=expected):
        load_ratings(path)
    with pytest.raises(DataError, match=r"'stars'.*--rating-col"):
        load_ratings(path, user_col="userId", rating_col="stars")


def test_empty_id_names_line(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,2,3\n1,3,4\n,4,5\n")
    with pytest.raises(DataError, match=r"r\.csv, line 4, column 'user_id': expected a non-empty id, "
                                        r"found an empty value"):
        load_ratings(path)


def test_bad_rating_names_line_and_value(tmp_path):
    rows = "".join(f"u{i},i{i},4\n" for i in range(5))
    path = write(tmp_path / "ratings.csv", "user_id,item_id,rating\n" + rows + "u9,i9,abc\n")
    expected = r"ratings\.csv, line 7, column 'rating': expected a finite number, found 'abc'"
    with pytest.raises(DataError, match=expected):
        load_ratings(path)


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,2,3\n\n1,3,x\n")
    with pytest.raises(DataError, match=r"r\.csv, line 4, column 'rating': expected a finite number, "
                                        r"found 'x'"):
        load_ratings(path)
    assert len(load_ratings(write(tmp_path / "ok.csv", "user_id,item_id\n1,2\n\n1,3\n\n"))) == 2


def test_missing_and_infinite_ratings_are_errors(tmp_path):
    with pytest.raises(DataError, match=r"line 3, column 'rating': expected a finite number, found an empty "
                                        r"value"):
        load_ratings(write(tmp_path / "r.csv", "user_id,item_id,rating\n1,2,3\n1,3,\n"))
    with pytest.raises(DataError, match=r"line 2, column 'rating': expected a finite number, found 'inf'"):
        load_ratings(write(tmp_path / "s.csv", "user_id,item_id,rating\n1,2,inf\n"))


def test_bad_timestamp_names_line_and_value(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,timestamp\n1,2,2020-01-01\n1,3,yesterday\n")
    expected = (r"r\.csv, line 3, column 'timestamp': expected seconds since the epoch "
                r"or an ISO 8601 date/time, found 'yesterday'")
    with pytest.raises(DataError, match=expected):
        load_ratings(path)


def test_parquet_errors_name_row(tmp_path):
    pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": ["1", "bad"]}).to_parquet(
        tmp_path / "r.parquet")
    expected = r"r\.parquet, row 2, column 'rating': expected a finite number, found 'bad'"
    with pytest.raises(DataError, match=expected):
        load_ratings(tmp_path / "r.parquet")


def test_corrupt_files_raise_data_error(tmp_path):
    (tmp_path / "r.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"r\.csv\.gz"):
        load_ratings(tmp_path / "r.csv.gz")
    (tmp_path / "r.parquet").write_bytes(b"PAR1 nonsense")
    with pytest.raises(DataError, match=r"r\.parquet: expected a Parquet file"):
        load_ratings(tmp_path / "r.parquet")
    with pytest.raises(DataError, match=r"r\.csv: expected ','-separated text, found a parse error"):
        load_ratings(write(tmp_path / "r.csv", "user_id,item_id\n1,2\n1,2,3,4\n"))


def test_latin1_in_generic_file_is_reported(tmp_path):
    (tmp_path / "r.csv").write_bytes("user_id,item_id\nJosé,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"r\.csv: expected UTF-8 text"):
        load_ratings(tmp_path / "r.csv")


def test_a_field_too_many_on_the_first_row_is_an_error_not_a_shift(tmp_path):
    # pandas took the first field for a row label, shifting every field one column left (found by fuzzing)
    for text in ("user_id,item_id\nu1,i1,5\nu2,i2,4\n", "user_id,item_id\nu1,i1,\nu2,i2,\n"):
        with pytest.raises(DataError, match=r"r\.csv, line 2: expected 2 fields, as in the header, found "
                                            r"more \("):
            load_ratings(write(tmp_path / "r.csv", text))


def test_file_starting_with_a_blank_line(tmp_path):
    for name in ("r.csv", "r.inter"):
        with pytest.raises(DataError, match=rf"{name}, line 1: expected a header naming the columns, found a "
                                            r"blank line"):
            load_ratings(write(tmp_path / name, "\nuser_id,item_id\n1,2\n"))


def test_recbole_column_named_twice(tmp_path):
    path = write(tmp_path / "r.inter", "user_id:token\tuser_id:float\titem_id:token\n1\t2\t3\n")
    with pytest.raises(DataError, match=r"r\.inter: expected each column once, found 'user_id' more than "
                                        r"once \(header user_id:token, user_id:float, item_id:token\)"):
        load_ratings(path)


def test_odd_parquet_columns(tmp_path):
    frame = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": [[], [1, 2]]})
    frame.to_parquet(tmp_path / "lists.parquet")
    with pytest.raises(DataError, match=r"lists\.parquet, row 1, column 'rating': expected a finite number, "
                                        r"found array\(\[\]"):
        load_ratings(tmp_path / "lists.parquet")
    late = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": [pd.Timestamp("2263-01-01")]})
    late.to_parquet(tmp_path / "late.parquet")  # past the nanosecond range (found by fuzzing)
    assert load_ratings(tmp_path / "late.parquet")["timestamp"].tolist() == [9246182400.0]


# ---------------------------------------------------------------- duplicates


def test_duplicates_keep_last_by_timestamp(tmp_path, caplog):
    text = ("user_id,item_id,rating,timestamp\n"
            "u,a,5,300\n"   # newest of (u, a): kept although first in the file
            "u,b,1,100\n"
            "u,a,2,100\n"
            "u,a,3,200\n"
            "v,a,4,50\n")
    with caplog.at_level(logging.WARNING, logger="coldstart.io"):
        df = load_ratings(write(tmp_path / "r.csv", text))
    assert df[["user_id", "item_id", "rating"]].values.tolist() == [["u", "a", 5.0], ["u", "b", 1.0],
                                                                    ["v", "a", 4.0]]
    assert df.index.tolist() == [0, 1, 2]
    assert df.attrs["duplicates_dropped"] == 2
    assert "dropped 2 duplicate" in caplog.text and "r.csv" in caplog.text


def test_duplicates_without_timestamp_keep_last_in_file(tmp_path):
    df = load_ratings(write(tmp_path / "r.csv", "user_id,item_id,rating\nu,a,5\nu,b,1\nu,a,2\n"))
    assert df["rating"].tolist() == [1.0, 2.0] and df.attrs["duplicates_dropped"] == 1


# ---------------------------------------------------------------- side features


def test_features_keep_types_and_rename_id(tmp_path):
    path = write(tmp_path / "items.csv", "movie,title,genres,year\n001,Toy Story,Animation|Comedy,1995\n"
                                         "002,Heat,Action,NA\n")
    items = load_features(path, id_col="movie", kind="item")
    assert list(items.columns) == ["item_id", "title", "genres", "year"]
    assert items["item_id"].tolist() == ["001", "002"]
    assert items["year"].dtype == np.float64 and np.isnan(items["year"].iloc[1])
    assert items["genres"].tolist() == ["Animation|Comedy", "Action"]


def test_features_validation(tmp_path):
    dup = write(tmp_path / "users.csv", "user_id,age\n1,20\n2,30\n1,40\n")
    with pytest.raises(DataError, match=r"users\.csv, line 4, column 'user_id': expected unique ids "
                                        r"\(first seen on line 2\), found '1'"):
        load_features(dup, id_col="user_id", kind="user")
    with pytest.raises(DataError, match=r"users\.csv: expected a column 'uid'.*found columns 'user_id', 'age'"
                       ):
        load_features(dup, id_col="uid", kind="user")
    with pytest.raises(DataError, match=r"u2\.csv, line 3, column 'user_id': expected a non-empty id"):
        load_features(write(tmp_path / "u2.csv", "user_id,age\n1,20\n,30\n"), id_col="user_id", kind="user")
    with pytest.raises(ValueError, match="kind"):
        load_features(dup, id_col="user_id", kind="movie")


# ---------------------------------------------------------------- IdMap


def test_idmap_round_trip_and_unknown_ids():
    ids = IdMap.from_values(["007", "b", "007", "a", "b"])
    assert ids.to_list() == ["007", "b", "a"] and len(ids) == 3
    idx = ids.index(pd.Series(["a", "007", "zzz"]))
    assert idx.dtype == np.int64 and idx.tolist() == [2, 0, -1]
    assert ids.ids(idx[:2]).tolist() == ["a", "007"]
    assert "b" in ids and "zzz" not in ids
    assert IdMap(ids.to_list()).index(["b"]).tolist() == [1]


def test_idmap_rejects_bad_input():
    with pytest.raises(ValueError, match="'x' twice"):
        IdMap(["x", "y", "x"])
    with pytest.raises(IndexError):
        IdMap(["x"]).ids([-1])
    with pytest.raises(TypeError):
        IdMap(["x"]).index("x")
