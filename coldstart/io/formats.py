"""Known dataset layouts and `load_dataset`, which detects them and otherwise falls back to `load_ratings`.

Layouts (given the folder or one of its files): MovieLens 100K, 1M (and MeLU's `ml-1m-melu`) and latest;
RecBole atomic files `<name>.inter` (+ `.item`, `.user`); HetRec 2011 Last.fm 2k. Each becomes a `Dataset` with
the standard columns and validation of `validate.py`; `readers.py` does all the file reading.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .dataset import Dataset, load_features, load_ratings
from .readers import RECBOLE, read_any, read_header, read_known
from .validate import (ITEM, RATING, RATING_COLUMNS, TIME, USER, Columns, standardize_features,
                       standardize_ratings)

_ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                  "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                  "Sci-Fi", "Thriller", "War", "Western"]  # used when u.genre is absent
_MOVIELENS_FILES = {"u.data", "u.item", "u.user", "ratings.dat", "movies.dat", "users.dat", "ratings.csv",
                    "ratings.csv.gz", "movies.csv"}
_LASTFM_FILES = {"user_artists.dat", "artists.dat"}


def load_dataset(path: str | Path, *, items: str | Path | None = None, users: str | Path | None = None,
                 user_col: str = USER, item_col: str = ITEM, rating_col: str = RATING,
                 time_col: str = TIME, categorical: bool = False) -> Dataset:
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
        categorical: the ratings' id columns as pandas Categorical of str, never a str per row (for logs of
            millions of ratings; see `load_ratings`).

    Raises:
        DataError: any file is missing or invalid, or a folder has no known layout.
    """
    cols = Columns(user_col, item_col, rating_col, time_col)
    data = _load_known(Path(path), cols, categorical) if str(path) != "-" else None
    if data is None:
        ratings = load_ratings(path, user_col=user_col, item_col=item_col, rating_col=rating_col,
                               time_col=time_col, categorical=categorical)
        name = "stdin" if str(path) == "-" else Path(path).name.split(".")[0]
        data = Dataset(ratings, name=name, implicit=ratings.attrs["implicit"])
    if items is not None:
        data = dataclasses.replace(data, items=load_features(items, id_col=item_col, kind="item"))
    if users is not None:
        data = dataclasses.replace(data, users=load_features(users, id_col=user_col, kind="user"))
    return data


# ---------------------------------------------------------------- known layouts


def _load_known(path: Path, cols: Columns, categorical: bool = False) -> Dataset | None:
    """The dataset of a known layout at `path` (a folder or one of its files), or None for a plain file."""
    if path.is_file():
        if path.name in _MOVIELENS_FILES | _LASTFM_FILES:
            return _load_folder(path.parent, lastfm=path.name in _LASTFM_FILES, cols=cols, categorical=categorical)
        recbole = path.suffix.lower() in RECBOLE
        return _load_recbole(path.with_suffix(".inter"), cols, categorical) if recbole else None
    if not path.is_dir():
        return None  # load_ratings reports the missing file
    inters = sorted(path.glob("*.inter"))
    if len(inters) > 1:
        found = ", ".join(p.name for p in inters)
        raise DataError(f"{path}: expected one RecBole .inter file, found {found}")
    if inters:
        return _load_recbole(inters[0], cols, categorical)
    return _load_folder(path, lastfm=(path / "user_artists.dat").is_file(), cols=cols, categorical=categorical)


def _load_folder(folder: Path, *, lastfm: bool, cols: Columns, categorical: bool = False) -> Dataset:
    """A MovieLens (100K, 1M, MeLU's 1M, latest) or Last.fm folder."""
    if lastfm:
        return _load_lastfm(folder, categorical)
    ratings = _first(folder, ("u.data", "ratings.dat", "ratings.csv", "ratings.csv.gz"))
    if ratings is None:
        found = sorted(p.name for p in folder.iterdir())
        raise DataError(f"{folder}: expected a known layout (MovieLens u.data/ratings.dat/ratings.csv, "
                        f"RecBole *.inter, Last.fm user_artists.dat), found {found}")
    frame = _movielens_ratings(ratings, cols, categorical)
    return Dataset(frame, _movielens_items(folder), _movielens_users(folder), folder.resolve().name,
                   frame.attrs["implicit"])


def _first(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _movielens_ratings(path: Path, cols: Columns, categorical: bool = False) -> pd.DataFrame:
    if path.name in ("u.data", "ratings.dat"):
        sep = "\t" if path.name == "u.data" else "::"
        raw, src = read_known(path, sep=sep, text_cols=RATING_COLUMNS, names=list(RATING_COLUMNS))
        return standardize_ratings(raw, src, Columns(), categorical)
    header = read_header(path, str(path), sep=",")
    if "userId" in header and "movieId" in header:  # MovieLens latest
        cols = cols._replace(user="userId", item="movieId")
    return load_ratings(path, user_col=cols.user, item_col=cols.item, rating_col=cols.rating,
                        time_col=cols.time, categorical=categorical)


def _movielens_users(folder: Path) -> pd.DataFrame | None:
    path = _first(folder, ("u.user", "users.dat"))
    if path is None:
        return None
    if path.name == "u.user":
        names = [USER, "age", "gender", "occupation", "zip_code"]
        raw, src = read_known(path, sep="|", text_cols=[USER, "zip_code"], names=names)
    else:  # ML-1M: gender before age; occupation is a code, i.e. a category
        names = [USER, "gender", "age", "occupation", "zip_code"]
        raw, src = read_known(path, sep="::", text_cols=[USER, "occupation", "zip_code"], names=names)
    return standardize_features(raw, src, USER, "user")


def _movielens_items(folder: Path) -> pd.DataFrame | None:
    path = _first(folder, ("u.item", "movies.dat", "movies.csv"))
    if path is None:
        return None
    if path.name == "u.item":
        return _ml100k_items(path, _ml100k_genres(folder / "u.genre"))
    if path.name == "movies.dat":
        names = [ITEM, "title", "genres"]
        raw, src = read_known(path, sep="::", text_cols=names, names=names)
    else:
        raw, src = read_any(path, text_cols=["movieId", "title", "genres"])
        raw = raw.rename(columns={"movieId": ITEM})
    raw["genres"] = raw["genres"].fillna("").replace("(no genres listed)", "")
    raw["year"] = pd.to_numeric(raw["title"].str.extract(r"\((\d{4})\)\s*$")[0]).astype("float64")
    return standardize_features(raw, src, ITEM, "item")


def _ml100k_genres(path: Path) -> list[str]:
    if not path.is_file():
        return _ML100K_GENRES
    lines = path.read_text(encoding="latin-1").splitlines()
    return [line.split("|")[0] for line in lines if line.strip()]


def _ml100k_items(path: Path, genres: list[str]) -> pd.DataFrame:
    """u.item: 19 genre flags → one `Action|Comedy` column, release date → numeric `year`; URL dropped."""
    names = [ITEM, "title", "release_date", "video_date", "url", *genres]
    raw, src = read_known(path, sep="|", text_cols=[ITEM, "title", "release_date"], names=names)
    flags = raw[genres].fillna(0).to_numpy(dtype=bool)  # (n_items, n_genres)
    labels = np.array(genres, dtype=object)
    raw["genres"] = ["|".join(labels[row]) for row in flags]
    released = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    raw["year"] = released.dt.year.astype("float64")
    return standardize_features(raw[[ITEM, "title", "genres", "year"]], src, ITEM, "item")


def _load_recbole(inter: Path, cols: Columns, categorical: bool = False) -> Dataset:
    """RecBole atomic files `<name>.inter` (+ `<name>.item`, `<name>.user`) beside each other."""
    ratings = load_ratings(inter, user_col=cols.user, item_col=cols.item, rating_col=cols.rating,
                           time_col=cols.time, categorical=categorical)
    item_file, user_file = inter.with_suffix(".item"), inter.with_suffix(".user")
    items = load_features(item_file, id_col=cols.item, kind="item") if item_file.is_file() else None
    users = load_features(user_file, id_col=cols.user, kind="user") if user_file.is_file() else None
    return Dataset(ratings, items, users, inter.stem, ratings.attrs["implicit"])


def _load_lastfm(folder: Path, categorical: bool = False) -> Dataset:
    """HetRec 2011 Last.fm: play counts are implicit feedback (rating 1.0, `weight` kept); artists = items."""
    raw, src = read_known(folder / "user_artists.dat", sep="\t", text_cols=["userID", "artistID"])
    ratings = standardize_ratings(raw, src, Columns("userID", "artistID"), categorical)
    items = None
    if (folder / "artists.dat").is_file():
        raw, src = read_known(folder / "artists.dat", sep="\t", text_cols=["id", "name"])
        raw = raw.drop(columns=[c for c in raw.columns if c.lower().endswith("url")])
        items = standardize_features(raw, src, "id", "item")
    return Dataset(ratings, items, None, folder.resolve().name, implicit=True)
