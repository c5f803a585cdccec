"""Tests of coldstart.io.formats: load_dataset on plain files and known layouts, synthetic and real."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coldstart.errors import DataError
from coldstart.features import FeatureEncoder
from coldstart.io import load_dataset
from tests.conftest import shared_data


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- load_dataset


def test_generic_dataset_with_feature_overrides(tmp_path):
    ratings = write(tmp_path / "log.csv", "uid,iid\n1,a\n2,b\n")
    items = write(tmp_path / "items.csv", "iid,color\na,red\nb,blue\n")
    users = write(tmp_path / "users.csv", "uid,age\n1,20\n2,30\n")
    data = load_dataset(ratings, items=items, users=users, user_col="uid", item_col="iid")
    assert data.name == "log" and data.implicit is True
    assert data.items["item_id"].tolist() == ["a", "b"] and data.users["age"].tolist() == [20, 30]


def test_recbole_atomic_files(tmp_path):
    write(tmp_path / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                  "007\t1\t4\t10\n008\t2\t3\t20\n")
    titles = [f"Movie Number {i}" for i in range(6)]
    genres = ["Action Comedy", "Drama", "Action Comedy", "Drama", "Drama", "Action Comedy"]
    rows = "".join(f"{i}\t{t}\t{g}\t{i * 1.5}\n" for i, (t, g) in enumerate(zip(titles, genres, strict=True)))
    header = "item_id:token\tmovie_title:token_seq\tclass:token_seq\tscore:float\n"
    write(tmp_path / "toy.item", header + rows)
    data = load_dataset(tmp_path)
    assert data.name == "toy" and data.implicit is False
    assert data.ratings["user_id"].tolist() == ["007", "008"]
    assert data.ratings["timestamp"].tolist() == [10.0, 20.0]
    assert list(data.items.columns) == ["item_id", "movie_title", "class", "score"]
    assert data.items["class"].tolist()[:2] == ["Action|Comedy", "Drama"]
    assert data.items["movie_title"].tolist() == titles
    assert data.items["score"].dtype == np.float64 and data.users is None


def test_folder_without_known_layout(tmp_path):
    write(tmp_path / "notes.txt", "hello\n")
    with pytest.raises(DataError, match=r"expected a known layout.*found \['notes.txt'\]"):
        load_dataset(tmp_path)


def test_movielens_1m_layout_with_double_colons(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    write(folder / "ratings.dat", "1::10::5::978300760\n2::10::3::978302109\n")
    write(folder / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    (folder / "movies.dat").write_bytes("10::Café: Noir (1995)::Comedy|Drama\n".encode("latin-1"))
    data = load_dataset(folder / "ratings.dat")
    assert data.name == "ml-1m" and len(data.ratings) == 2 and data.ratings["rating"].tolist() == [5.0, 3.0]
    assert data.items.iloc[0].tolist() == ["10", "Café: Noir (1995)", "Comedy|Drama", 1995.0]
    assert data.users["occupation"].tolist() == ["10", "16"] and data.users["age"].tolist() == [1, 56]


def test_known_layout_rows_with_a_field_too_many_are_errors_not_shifts(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    write(folder / "u.data", "196\t242\t3\t881250949\t\n186\t302\t3\t891717742\t\n")  # a tab at each end
    with pytest.raises(DataError, match=r"u\.data, line 1: expected 4 fields, as in the layout, found more"):
        load_dataset(folder)


def test_lastfm_artist_names_holding_a_pipe_stay_labels(tmp_path):
    folder = tmp_path / "lastfm"
    folder.mkdir()
    rows = "".join(f"{u}\t{a}\t{u * a}\n" for u in range(1, 4) for a in range(1, 31))
    write(folder / "user_artists.dat", "userID\tartistID\tweight\n" + rows)
    names = [f"Artist {a}" if a % 10 else f"Sunn O|||{a}" for a in range(1, 31)]
    write(folder / "artists.dat", "id\tname\turl\tpictureURL\n" + "".join(
        f"{a}\t{n}\thttp://x/{a}\thttp://y/{a}\n" for a, n in enumerate(names, start=1)))
    data = load_dataset(folder)
    assert list(data.items.columns) == ["item_id", "name"]
    encoder = FeatureEncoder.fit(data.items, "item_id")
    assert encoder.label == "name" and encoder.fields == []
    assert encoder.labels(data.items, ["10"]) == ["Sunn O|||10"]


# ---------------------------------------------------------------- real data (../shared/data)


def test_real_ml100k():
    data = load_dataset(shared_data("ml-100k"))
    r = data.ratings
    assert (len(r), r["user_id"].nunique(), r["item_id"].nunique()) == (100_000, 943, 1_682)
    assert data.name == "ml-100k" and not data.implicit and "timestamp" in r.columns
    assert len(data.users) == 943 and {"age", "gender", "occupation"} <= set(data.users.columns)
    assert len(data.items) == 1_682 and {"title", "genres", "year"} <= set(data.items.columns)
    toy = data.items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story (1995)" and toy["genres"] == "Animation|Children's|Comedy"
    assert toy["year"] == 1995.0


def test_real_recbole_ml100k_matches_u_data():
    recbole = load_dataset(shared_data("ml-100k-recbole")).ratings
    original = load_dataset(shared_data("ml-100k") / "u.data").ratings
    assert len(recbole) == 100_000
    key = ["user_id", "item_id", "rating"]
    assert set(map(tuple, recbole[key].values)) == set(map(tuple, original[key].values))


def test_real_ml_latest_small():
    data = load_dataset(shared_data("ml-latest-small"))
    assert len(data.ratings) == 100_004 and data.ratings["rating"].min() == 0.5
    assert "(no genres listed)" not in set(data.items["genres"])


def test_real_ml1m_melu():
    data = load_dataset(shared_data("ml-1m-melu"))
    r = data.ratings
    # The file holds 1,000,209 rows; 4 repeat a (user, item) pair and the duplicate policy drops them.
    assert len(r) + r.attrs["duplicates_dropped"] == 1_000_209 and r.attrs["duplicates_dropped"] == 4
    assert "split" in r.columns and "meta_training" in set(r["split"])
    assert len(data.users) == 6_040 and "genres" in data.items.columns


def test_real_lastfm_is_implicit():
    data = load_dataset(shared_data("lastfm-2k"))
    assert data.implicit and data.ratings.attrs["implicit"]
    assert len(data.ratings) == 92_834 and (data.ratings["rating"] == 1.0).all()
    assert "name" in data.items.columns and not any("url" in c.lower() for c in data.items.columns)
    assert FeatureEncoder.fit(data.items, "item_id").label == "name"  # five of its names hold a `|`
