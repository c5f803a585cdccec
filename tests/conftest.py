"""Shared fixtures and helpers: tiny synthetic data with a planted answer, small models, support slices."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart import ColdStartRecommender, Config, make_synthetic
from coldstart.baselines import ALSFoldIn
from coldstart.metrics import ndcg_at_k

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY = Config(embedding_dim=8, hidden=(16, 8), epochs=2, meta_batch_size=16, n_negatives=64, seed=0)


def als(**params) -> ALSFoldIn:
    """A small ALS; one thread, since implicit's thread start-up dwarfs these fits (results do not depend on it)."""
    return ALSFoldIn(**{"factors": 8, "iterations": 10, "seed": 0, "num_threads": 1, **params})


def support_of(data, users, n=4) -> pd.DataFrame:
    """The first n ratings in time of each user, users in the order given."""
    r = data.ratings.sort_values("timestamp", kind="stable")
    return pd.concat([r[r["user_id"] == u].head(n) for u in users])[["user_id", "item_id", "rating"]]


def oracle_validation_ndcg(ratings, make, users=None, valid_fraction=0.2, shots=5, k=10) -> float:
    """A baseline's `tuned` validation score of one setting, user by user: `make()` (an unfitted model) fit on all but
    the newest users, each of those given its first `shots` ratings in time as support, scored by nDCG@k against its
    later ratings >= 4."""
    ratings = ratings.sort_values("timestamp", kind="stable")  # the catalogue, so the ties, in order of time
    first = ratings.groupby("user_id")["timestamp"].min().sort_values(kind="stable")
    held = set(first.index[-round(valid_fraction * len(first)):])
    rec = make().fit(ratings[~ratings["user_id"].isin(held)],
                     items=pd.DataFrame({"item_id": ratings["item_id"].unique()}), users=users)
    scores = []
    for user in held:
        rows = ratings[ratings["user_id"] == user]
        support, query = rows.head(shots), rows.iloc[shots:]
        relevant = set(query.loc[query["rating"] >= 4, "item_id"])
        if relevant:
            scores.append(ndcg_at_k(list(rec.recommend(support, k=k, users=users)["item_id"]), relevant, k))
    return float(np.mean(scores))


BUNDLED = Path(__file__).resolve().parents[1] / "data"  # ml-latest-small ships in the repo


def shared_data(name: str) -> Path:
    """A real dataset folder: the repo's data/ for the bundled ml-latest-small, else ../shared/data/NAME, or a skip
    saying why it is missing."""
    for path in (BUNDLED / name, SHARED_DATA / name):
        if path.is_dir():
            return path
    pytest.skip(f"{SHARED_DATA / name} is absent: real-data tests need ../shared/data beside the repo")


@pytest.fixture(scope="session")
def tiny_data():
    return make_synthetic(n_users=60, n_items=50, ratings_per_user=(6, 15), seed=1)


@pytest.fixture(scope="session", params=["implicit", "rating"])
def fitted(request, tiny_data):
    return ColdStartRecommender(TINY.replace(objective=request.param)).fit(tiny_data)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Small tensors run fastest on one thread, and a busy 2-core machine runs them many times slower on two."""
    torch.set_num_threads(1)


def as_format_5(meta: dict, **old_fields) -> dict:
    """A current model.json as coldstart's format 5 wrote it: its config with the fields that format 6 dropped
    (`old_fields` override their values) and without the ones it added."""
    config = {k: v for k, v in meta["config"].items()
              if k not in ("learner_options", "user_feature_dropout", "teacher_rank")}
    l2 = meta["config"]["learner_options"].get("l2", 1.0)
    config.update({"adapt": "head+user", "user_bias_scale": None, "proximal_l2": l2, "validation_fraction": 0.0,
                   "task_split": "time", "teacher_min_rating": None, "teacher_init": True,
                   "teacher": None if config["teacher"] == "none" else config["teacher"], **old_fields})
    return {**meta, "format_version": 5, "config": config}
