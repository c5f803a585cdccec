"""Bad and odd input at both boundaries, files and API frames: non-finite numbers, ratings off the model's
scale, stray values in a training file, names holding `|`, ids written as floats, unknown support items."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart.errors import DataError
from coldstart.features import NUMERIC_CLIP, FeatureEncoder, column_kind
from coldstart.frames import check_frame, parse_support, support_rows
from coldstart.ids import IdMap
from coldstart.io import load_features, load_ratings

CATALOGUE = IdMap(["a", "b", "c"])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def stars(n: int, seed: int = 0) -> list[float]:
    """n ratings on the 1-5 grid, every star well represented."""
    return np.random.default_rng(seed).integers(1, 6, size=n).astype(float).tolist()


def ratings_csv(path: Path, ratings: list[object]) -> Path:
    rows = "".join(f"u{i % 50},i{i},{r}\n" for i, r in enumerate(ratings))
    return write(path, "user_id,item_id,rating\n" + rows)


# ---------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "NaN", "-nan", "1e400", "-1e400", "Infinity"])
def test_files_reject_non_finite_ratings_naming_file_line_column(tmp_path, bad):
    path = ratings_csv(tmp_path / "r.csv", [4, 3, bad, 5])
    with pytest.raises(DataError, match=rf"r\.csv, line 4, column 'rating': expected a finite number, "
                                        rf"found '{bad}'$"):
        load_ratings(path)


def test_parquet_non_finite_ratings_and_times_are_errors(tmp_path):
    frame = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["a", "b"], "rating": [4.0, np.inf]})
    frame.to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataError, match=r"r\.parquet, row 2, column 'rating': expected a finite number, "
                                        r"found inf$"):
        load_ratings(tmp_path / "r.parquet")
    times = pd.to_datetime(["2020-01-01", None])
    frame.assign(rating=[4.0, 3.0], timestamp=times).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t\.parquet, row 2, column 'timestamp': expected .*found an empty"):
        load_ratings(tmp_path / "t.parquet")


@pytest.mark.parametrize("bad", ["inf", "nan", "1e400", "-inf"])
def test_files_reject_non_finite_timestamps(tmp_path, bad):
    path = write(tmp_path / "r.csv", f"user_id,item_id,timestamp\nu,a,100\nu,b,{bad}\n")
    with pytest.raises(DataError, match=rf"r\.csv, line 3, column 'timestamp': expected .*, found '{bad}'$"):
        load_ratings(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "1e400", "nan", None])
def test_api_frames_reject_non_finite_ratings_showing_the_value_plainly(bad):
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "rating": [4.0, bad]})
    shown = repr(bad) if isinstance(bad, str) else repr(float("nan" if bad is None else bad))
    with pytest.raises(ValueError, match=rf"^support: row 1, column 'rating': expected a finite number, "
                                         rf"found {shown}$"):
        check_frame(frame, "support")


@pytest.mark.parametrize(("bad", "shown"), [
    (10**400, "1" + "0" * 56 + "..."), (1 + 2j, "(1+2j)"), ([1, 2], "[1, 2]"),
    (pd.Timestamp(0), "Timestamp('1970-01-01 00:00:00')")])
def test_api_frames_reject_ratings_that_are_no_real_number(bad, shown):
    rating = pd.Series([4, bad], dtype=object)
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "rating": rating})
    with pytest.raises(ValueError, match=rf"^support: row 1, column 'rating': expected a finite number, "
                                         rf"found {re.escape(shown)}$"):
        check_frame(frame, "support")
    assert check_frame(frame.assign(rating=[4, 1 + 0j]), "support")["rating"].tolist() == [4.0, 1.0]


@pytest.mark.parametrize(("bad", "shown"), [(" ", "' '"), ("abc", "'abc'"), (pd.NaT, "NaT")])
def test_api_frames_reject_text_and_dates_among_complex_numbers(bad, shown):
    # pandas' to_numeric reads these as garbage numbers beside a complex one (found by fuzzing)
    rating = pd.Series([0j, bad], dtype=object)
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "rating": rating})
    with pytest.raises(ValueError, match=rf"^support: row 1, column 'rating': expected a finite number, "
                                         rf"found {shown}$"):
        check_frame(frame, "support")


def test_api_frames_reject_non_finite_timestamps_and_read_datetimes_as_seconds():
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": [100.0, np.inf]})
    with pytest.raises(ValueError, match=r"^ratings: row 1, column 'timestamp': expected finite seconds "
                                         r".*found inf$"):
        check_frame(frame, "ratings")
    dates = frame.assign(timestamp=pd.to_datetime(["1970-01-01 00:01:40", "2300-01-01 00:00:00"]))  # past ns
    assert check_frame(dates, "ratings")["timestamp"].tolist() == [100.0, 10413792000.0]
    text = frame.assign(timestamp=["1970-01-01T00:01:40Z", "1970-01-01 01:00:00+01:00"])
    assert check_frame(text, "ratings")["timestamp"].tolist() == [100.0, 0.0]


def test_api_frames_name_a_doubled_column():
    frame = pd.DataFrame([["u", "a", 4.0, 5.0]], columns=["user_id", "item_id", "rating", "rating"])
    with pytest.raises(ValueError, match=r"^support: expected one column 'rating', found 2$"):
        check_frame(frame, "support")


# ---------------------------------------------------------------- support ratings off the model's scale


@pytest.mark.parametrize("bad", [500.0, -20.0, 1e30, 6.5])
def test_support_ratings_far_off_the_training_scale_are_errors(bad):
    support = pd.DataFrame({"user_id": ["u", "u", "u", "v"], "item_id": ["a", "a", "b", "c"],
                            "rating": [3.0, 4.0, 2.0, bad]})  # the row is the frame's, duplicates and all
    expected = (r"^support: row 3 \(user 'v', item 'c'\), column 'rating': expected a rating on the model's scale 1 to 5 "
                r"\(give or take 1\)")
    with pytest.raises(ValueError, match=rf"{expected}, found {re.escape(repr(bad))}$"):
        support_rows(support, CATALOGUE, scale=(1.0, 5.0))
    assert support_rows(support, CATALOGUE)[3].tolist() == [4.0, 2.0, bad]  # no scale: no check
    with pytest.raises(ValueError, match="scale 1 to 5"):
        parse_support(support, CATALOGUE, scale=(1.0, 5.0))


def test_support_ratings_near_the_scale_pass_and_an_implicit_scale_checks_nothing():
    support = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "rating": [0.0, 6.0, 3.0]})
    assert support_rows(support, CATALOGUE, scale=(1.0, 5.0))[3].tolist() == [0.0, 6.0, 3.0]
    assert support_rows(support, CATALOGUE, scale=(1.0, 1.0))[3].tolist() == [0.0, 6.0, 3.0]


# ---------------------------------------------------------------- strays in a training file


def test_a_few_ratings_far_off_a_star_grid_are_named_in_a_warning(tmp_path, caplog):
    ratings = stars(1000)
    ratings[10], ratings[500] = 100.0, -3.0
    with caplog.at_level(logging.WARNING, logger="coldstart.io"):
        df = load_ratings(ratings_csv(tmp_path / "r.csv", ratings))
    assert df["rating"].tolist() == ratings  # kept: a warning, not an error
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().endswith(
        "r.csv: 2 of 1000 ratings lie far outside the scale 1 to 5 of the rest (line 12: 100, line 502: -3); "
        "they are kept, but check the file")


def test_many_strays_are_listed_with_an_ellipsis(tmp_path, caplog):
    ratings = stars(2000)
    for i in range(6):
        ratings[100 * i] = 50.0
    with caplog.at_level(logging.WARNING, logger="coldstart.io"):
        load_ratings(ratings_csv(tmp_path / "r.csv", ratings))
    assert "6 of 2000 ratings" in caplog.text and "line 402: 50, ...)" in caplog.text


@pytest.mark.parametrize("case", ["play counts", "rare half stars", "small file", "common outliers",
                                  "implicit"])
def test_open_scales_and_plain_data_load_without_a_word(tmp_path, caplog, case):
    rng = np.random.default_rng(1)
    ratings: list[object] = {
        "play counts": rng.zipf(1.5, size=1000).astype(float).tolist(),  # many distinct values: an open scale
        "rare half stars": [0.5] * 3 + stars(997),  # an end of the scale that is rare, not far out
        "small file": [100.0] + stars(150),  # one row of 151 is not a tiny share
        "common outliers": [100.0] * 10 + stars(990),  # 1% of the rows: a real part of the data
        "implicit": [],
    }[case]
    path = ratings_csv(tmp_path / "r.csv", ratings) if ratings else write(
        tmp_path / "r.csv", "user_id,item_id\n" + "".join(f"u,i{i}\n" for i in range(300)))
    with caplog.at_level(logging.WARNING, logger="coldstart.io"):
        load_ratings(path)
    assert caplog.text == ""


# ---------------------------------------------------------------- names holding `|`


def test_a_name_column_with_a_few_pipes_stays_a_label():
    names = [f"Artist {i}" for i in range(200)]
    for i in (3, 50, 99, 120, 199):
        names[i] = f"Band {i}|feat. Someone {i}"
    genres = ["rock|pop", "jazz", "rock", "pop|jazz"] * 50
    items = pd.DataFrame({"item_id": [str(i) for i in range(200)], "name": names, "genres": genres})
    assert column_kind(items["name"]) == "label" and column_kind(items["genres"]) == "multi"
    encoder = FeatureEncoder.fit(items, "item_id")
    assert encoder.label == "name" and [f.name for f in encoder.fields] == ["genres"]
    assert encoder.labels(items, ["3", "0"]) == ["Band 3|feat. Someone 3", "Artist 0"]


def test_unique_combinations_of_common_tags_stay_multi_valued():
    tags = [f"t{i % 7}|t{i % 11}|t{i % 13}" for i in range(100)]  # nearly every row distinct, tokens repeat
    assert pd.Series(tags).nunique() > 50 and column_kind(pd.Series(tags)) == "multi"


def test_numeric_features_with_infinities_and_huge_values_encode_finite():
    sizes = [1.5 * i for i in range(38)]
    items = pd.DataFrame({"item_id": [str(i) for i in range(40)], "size": [*sizes, np.inf, np.nan],
                          "mass": [*sizes, 1e308, -1e308]})
    encoder = FeatureEncoder.fit(items, "item_id")
    size, mass = encoder.numeric_fields
    assert size.mean == pytest.approx(np.mean(sizes)) and size.std == pytest.approx(np.std(sizes, ddof=1))
    assert np.isfinite([mass.mean, mass.std]).all()
    numeric = encoder.transform(items, items["item_id"].tolist()).numeric  # (40, 2)
    assert torch.isfinite(numeric).all() and numeric[38:, 0].tolist() == [0.0, 0.0]
    assert numeric.abs().max() <= NUMERIC_CLIP


# ---------------------------------------------------------------- ids written as floats


def test_csv_ids_written_as_whole_floats_match_integer_ids(tmp_path):
    ratings = load_ratings(write(tmp_path / "r.csv", "user_id,item_id\n1.0,7.0\n2.0,-0.0\n10.00,007.0\n"))
    assert ratings["user_id"].tolist() == ["1", "2", "10"] and ratings["item_id"].tolist() == ["7", "0", "7"]
    path = write(tmp_path / "items.csv", "item_id,color\n7.0,red\n0.0,blue\n")
    items = load_features(path, id_col="item_id", kind="item")
    assert items["item_id"].tolist() == ["7", "0"]


@pytest.mark.parametrize("column", [["007", "1"], ["1.5", "1.0"], ["1.0", "2"], ["1.0", "a"], ["1e3", "2.0"]])
def test_other_csv_ids_keep_their_text(tmp_path, column):
    df = load_ratings(write(tmp_path / "r.csv", "user_id,item_id\n" + "".join(f"u,{i}\n" for i in column)))
    assert df["item_id"].tolist() == column


def test_float_ids_read_alike_from_csv_parquet_and_api_frames(tmp_path):
    frame = pd.DataFrame({"user_id": [1.0, 2.0, -0.0], "item_id": [1.5, 2.0, 3.0], "rating": [4.0, 5.0, 3.0]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.to_parquet(tmp_path / "r.parquet")
    from_csv, from_parquet = load_ratings(tmp_path / "r.csv"), load_ratings(tmp_path / "r.parquet")
    api = check_frame(frame, "ratings")
    for df in (from_csv, from_parquet, api):
        assert df["user_id"].tolist() == ["1", "2", "0"] and df["item_id"].tolist() == ["1.5", "2.0", "3.0"]
        assert df["user_id"].dtype == object
    huge = pd.DataFrame({"user_id": [1e20, 2.0**70], "item_id": ["a", "b"]})  # past int64: no wrapping round
    huge.to_parquet(tmp_path / "huge.parquet")
    expected = ["100000000000000000000", "1180591620717411303424"]
    assert load_ratings(tmp_path / "huge.parquet")["user_id"].tolist() == expected
    assert check_frame(huge, "ratings")["user_id"].tolist() == expected


# ---------------------------------------------------------------- unknown support items


def test_dropped_unknown_support_items_are_named(caplog):
    unknown = ["zz", "7", "q1", "q2", "q3", "q4"]
    support = pd.DataFrame({"user_id": ["u"] * 7 + ["v"], "item_id": ["a", *unknown, "zz"],
                            "rating": [4.0] * 8})
    with caplog.at_level(logging.WARNING, logger="coldstart.frames"):
        users, _, items, _ = support_rows(support, CATALOGUE)
    assert users == ["u", "v"] and items.tolist() == [0]
    assert caplog.records[0].getMessage() == (
        "dropped 7 support row(s) whose item the model does not know: 'zz', '7', 'q1', 'q2', 'q3', ...")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="coldstart.frames"):
        support_rows(support.iloc[:2], CATALOGUE)
    assert caplog.records[0].getMessage().endswith("does not know: 'zz'")
