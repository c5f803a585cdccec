"""Id columns as pandas Categorical, from reading to `initial_state`: the same ids, vocabularies and logs as str ids.

Memory and speed themselves are measured in benchmarks, not here."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart.config import Config
from coldstart.errors import DataError
from coldstart.fitted import initial_state
from coldstart.frames import check_frame
from coldstart.ids import IdMap
from coldstart.io import load_dataset, load_ratings, read_any


def _is_categorical(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype)


def _log_frame() -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u2", "u1", "u2", "u3", "u1", "u3"],
                         "item_id": ["b", "a", "c", "a", "c", "d"],
                         "rating": [4.0, 5.0, 3.0, 2.0, 1.0, 5.0],
                         "timestamp": [6.0, 1.0, 2.0, 3.0, 4.0, 5.0]})


def test_parquet_reader_gives_categorical_ids_with_small_codes(tmp_path):
    frame = _log_frame()
    frame.to_parquet(tmp_path / "r.parquet")
    df = load_ratings(tmp_path / "r.parquet", categorical=True)
    for col in ("user_id", "item_id"):
        assert _is_categorical(df[col]) and df[col].cat.codes.dtype.itemsize <= 4
        assert df[col].tolist() == frame[col].tolist()
    dataset = load_dataset(tmp_path / "r.parquet", categorical=True)
    assert _is_categorical(dataset.ratings["item_id"]) and dataset.ratings["user_id"].tolist() == frame["user_id"].tolist()
    assert sorted(df["user_id"].cat.categories) == ["u1", "u2", "u3"]


def test_parquet_string_columns_are_read_as_their_dictionary(tmp_path):
    _log_frame().to_parquet(tmp_path / "r.parquet")  # plain (not dictionary) string columns
    raw, _ = read_any(tmp_path / "r.parquet", text_cols=["user_id", "item_id"], category_cols=["user_id"])
    assert _is_categorical(raw["user_id"]) and not _is_categorical(raw["item_id"])


def test_default_readers_keep_str_ids(tmp_path):
    _log_frame().astype({"user_id": "category"}).to_parquet(tmp_path / "r.parquet")
    df = load_ratings(tmp_path / "r.parquet")
    assert df["user_id"].dtype == object and df["user_id"].tolist() == _log_frame()["user_id"].tolist()


def test_csv_reader_gives_categorical_ids_and_names_the_line_of_a_missing_id(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\n007,a,4\n7,b,3\n")
    df = load_ratings(tmp_path / "r.csv", categorical=True)
    assert _is_categorical(df["user_id"]) and df["user_id"].tolist() == ["007", "7"]
    (tmp_path / "bad.csv").write_text("user_id,item_id,rating\nu1,a,4\n,b,3\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3, column 'user_id'"):
        load_ratings(tmp_path / "bad.csv", categorical=True)


def test_whole_float_ids_are_normalised_on_the_categories(tmp_path):
    frame = pd.DataFrame({"user_id": [1.0, 2.0, 1.0, -0.0], "item_id": [1.5, 2.0, 3.0, 1.5],
                          "rating": [4.0, 5.0, 3.0, 2.0]})
    frame.to_parquet(tmp_path / "r.parquet")
    frame.to_csv(tmp_path / "r.csv", index=False)
    for path in (tmp_path / "r.parquet", tmp_path / "r.csv"):
        df = load_ratings(path, categorical=True)
        assert _is_categorical(df["user_id"]) and df["user_id"].tolist() == ["1", "2", "1", "0"]
        assert df["item_id"].tolist() == ["1.5", "2.0", "3.0", "1.5"]
        assert sorted(df["user_id"].cat.categories) == ["0", "1", "2"]


def test_categories_that_become_equal_are_merged():
    frame = pd.DataFrame({"user_id": pd.Categorical([1, "1", "x", 1]), 
                          "item_id": pd.Categorical(["a", "b", "c", "d"])})
    checked = check_frame(frame, "ratings")
    assert _is_categorical(checked["user_id"]) and checked["user_id"].tolist() == ["1", "1", "x", "1"]
    assert sorted(checked["user_id"].cat.categories) == ["1", "x"]


def test_check_frame_keeps_categorical_ids_and_still_accepts_plain_ones():
    frame = _log_frame()
    plain = check_frame(frame, "ratings")
    categorical = check_frame(frame.astype({"user_id": "category", "item_id": "category"}), "ratings")
    assert plain["user_id"].dtype == object and _is_categorical(categorical["user_id"])
    pd.testing.assert_frame_equal(categorical.astype({"user_id": object, "item_id": object}), plain)
    with pytest.raises(ValueError, match="row 1, column 'item_id'"):
        check_frame(frame.assign(item_id=pd.Categorical(["a", None, "a", "a", "a", "a"])), "ratings")


@pytest.mark.parametrize("values", [["u2", "u1", "u2", "u3", "u1"], ["b", "a", "c", "a", "c", "d", "b"]])
def test_idmap_on_a_categorical_equals_idmap_on_str(values):
    categorical = pd.Series(pd.Categorical(values, categories=sorted(set(values)) + ["unused"]))
    assert IdMap.from_values(categorical).to_list() == IdMap.from_values(pd.Series(values, dtype=object)).to_list()
    ids = IdMap(["a", "u1", "c", "zz"])
    assert ids.index(categorical).tolist() == ids.index(pd.Series(values, dtype=object)).tolist()
    assert ids.index(categorical).dtype == np.int64


def test_initial_state_is_the_same_on_categorical_and_object_ids():
    config = Config(device="cpu", epochs=1)
    frame = _log_frame()
    items = pd.DataFrame({"item_id": ["z", "a"], "genre": ["x", "y"]})
    plain = check_frame(frame, "ratings")
    categorical = check_frame(frame.astype({"user_id": "category", "item_id": "category"}), "ratings")
    a, b = initial_state(config, plain, items, None), initial_state(config, categorical, items, None)
    assert a.items.to_list() == b.items.to_list() == ["b", "a", "c", "d", "z"]
    assert a.users.to_list() == b.users.to_list() == ["u2", "u1", "u3"]
    for name in ("items", "ratings", "lengths"):
        left, right = getattr(a.log, name), getattr(b.log, name)
        left, right = (left(), right()) if callable(left) else (left, right)
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))
    assert a.rating_stats == b.rating_stats
