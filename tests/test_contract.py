"""The recommender contract, one suite run over every recommender: the meta-learner (both objectives) and each baseline.

Model-specific invariants live beside the model: test_recommender.py (persistence, known users, chunking, the prior)
and test_baselines.py (each baseline's hand-checkable answer).
"""
from __future__ import annotations

import logging
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart import ColdStartRecommender, NotFittedError
from coldstart.baselines import Blend, EASEFoldIn, FeaturePopularity, ItemMeanOffset, Popularity
from tests.conftest import TINY, als, support_of

RECOMMENDERS = {  # id -> a factory of the unfitted model; the id starts with the model's `name`
    "coldstart-implicit": lambda: ColdStartRecommender(TINY),
    "coldstart-rating": lambda: ColdStartRecommender(TINY.replace(objective="rating")),
    "popularity": Popularity,
    "popularity_liked": lambda: Popularity(min_rating=4.0),
    "item_mean": ItemMeanOffset,
    "als": als,
    "ease": lambda: EASEFoldIn(l2=50.0),
    "popularity_features": FeaturePopularity,
    "recent+ease": lambda: Blend(Popularity(min_rating=4.0, recent_share=0.5), weight=0.03, ease=EASEFoldIn(l2=50.0)),
    "peers+ease": lambda: Blend(FeaturePopularity(), weight=0.03, ease=EASEFoldIn(l2=50.0)),
}
RATING_PREDICTORS = {"coldstart-rating", "item_mean"}


@pytest.fixture(scope="module", params=list(RECOMMENDERS))
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def fitted(kind, tiny_data):
    """Each recommender fitted once for this module (shadows conftest's meta-learner-only `fitted`)."""
    return RECOMMENDERS[kind]().fit(tiny_data)


def learned_state(model):
    """A copy of what fitting learned: the network's tensors, or a baseline's whole pickle."""
    if isinstance(model, ColdStartRecommender):
        return {name: tensor.clone() for name, tensor in model.net_.state_dict().items()}
    return pickle.dumps(model)


def same_state(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    return a == b


def test_fit_returns_self_and_declares_name_and_kind(kind, tiny_data):
    rec = RECOMMENDERS[kind]()
    assert rec.fit(tiny_data) is rec
    assert len(rec.items_) == 50 and rec.name == kind.split("-")[0]
    assert rec.rating_predictor is (kind in RATING_PREDICTORS)


def test_fit_is_deterministic_under_a_seed(kind, fitted, tiny_data):
    support = support_of(tiny_data, ["u1", "u4"])
    again = RECOMMENDERS[kind]().fit(tiny_data)
    pd.testing.assert_frame_equal(again.recommend(support), fitted.recommend(support))


def test_unfitted_recommender_raises(kind, tiny_data):
    support = support_of(tiny_data, ["u1"])
    with pytest.raises(NotFittedError, match="fit"):
        RECOMMENDERS[kind]().recommend(support)
    with pytest.raises(NotFittedError, match="fit"):
        RECOMMENDERS[kind]().predict(support, support)


def test_top_k_is_sorted_unique_and_excludes_support(fitted, tiny_data):
    support = support_of(tiny_data, ["u3", "u1", "u2"])
    recs = fitted.recommend(support, k=7)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    for user, group in recs.groupby("user_id"):
        assert len(group) == 7 and group["item_id"].is_unique
        assert list(group["rank"]) == list(range(1, 8))
        assert (np.diff(group["score"].to_numpy()) <= 0).all()
        assert not set(group["item_id"]) & set(support.loc[support["user_id"] == user, "item_id"])
    assert list(recs["user_id"].unique()) == ["u3", "u1", "u2"]  # order of first appearance
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must be"):
            fitted.recommend(support, k=k)


def test_include_seen_can_return_support_items(fitted, tiny_data):
    support = support_of(tiny_data, ["u5"], n=6)
    recs = fitted.recommend(support, k=50, exclude_seen=False)
    assert len(recs) == 50 and set(support["item_id"]) <= set(recs["item_id"])
    assert len(fitted.recommend(support, k=50)) == 50 - 6
    assert len(fitted.recommend(support, k=500)) == 50 - 6  # k is capped at the catalogue


def ragged_support(data, users) -> pd.DataFrame:
    """Supports of 1, 2, ... ratings: a batch of them is padded, and padding must never count as an item."""
    return pd.concat([support_of(data, [u], n=1 + j % 6) for j, u in enumerate(users)])


def test_batch_equals_the_loop_of_single_users_on_ragged_supports(fitted, tiny_data):
    users = [f"u{u}" for u in range(10)]
    support = ragged_support(tiny_data, users)
    assert support.groupby("user_id").size().nunique() > 1
    batched = fitted.recommend(support, k=5)
    singles = pd.concat([fitted.recommend(support[support["user_id"] == u], k=5) for u in users],
                        ignore_index=True)
    pd.testing.assert_frame_equal(batched[["user_id", "rank", "item_id"]], singles[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(batched["score"], singles["score"], rtol=1e-5, atol=1e-6)


def test_support_items_are_never_recommended_back_in_a_ragged_batch(fitted, tiny_data):
    """In a batch of supports of different sizes, no user ever gets one of its own support items (nor, with a
    padded slot in its row, the catalogue's first item when it rated it: padding is masked, never scattered)."""
    first_item = fitted.items_.ids([0])[0]
    holders = tiny_data.ratings.loc[tiny_data.ratings["item_id"] == first_item, "user_id"].unique()[:3]
    short = pd.DataFrame({"user_id": holders, "item_id": first_item, "rating": 5.0})  # 1-item supports
    support = pd.concat([short, support_of(tiny_data, ["u7", "u8"], n=9)])
    recs = fitted.recommend(support, k=len(fitted.items_))
    for user, group in recs.groupby("user_id"):
        assert not set(group["item_id"]) & set(support.loc[support["user_id"] == user, "item_id"]), user
        assert len(group) == len(fitted.items_) - (support["user_id"] == user).sum()


def test_unknown_support_items_are_dropped_with_a_count(fitted, tiny_data, caplog):
    support = pd.concat([support_of(tiny_data, ["u1"]),
                         pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["nope", "nada"], "rating": [5.0, 4.0]})])
    with caplog.at_level(logging.WARNING):
        recs = fitted.recommend(support, k=5)
    assert "dropped 2 support row(s)" in caplog.text
    pd.testing.assert_frame_equal(recs, fitted.recommend(support_of(tiny_data, ["u1"]), k=5))


def test_user_with_only_unknown_items_still_gets_a_list(fitted):
    recs = fitted.recommend(pd.DataFrame({"user_id": ["x"], "item_id": ["nope"], "rating": [3.0]}), k=4)
    assert len(recs) == 4 and (recs["user_id"] == "x").all() and recs["item_id"].is_unique


def test_predict_returns_every_pair_and_agrees_with_recommend(fitted, tiny_data, caplog):
    support = support_of(tiny_data, ["u1"])
    pairs = pd.DataFrame({"user_id": ["u1", "u1", "zz"], "item_id": ["i3", "missing", "i3"]})
    with caplog.at_level(logging.WARNING):
        preds = fitted.predict(support, pairs)
    assert "1 pair(s) name items the model does not know" in caplog.text
    assert list(preds.columns) == ["user_id", "item_id", "prediction"] and len(preds) == 3
    assert list(preds["user_id"]) == ["u1", "u1", "zz"] and list(preds["item_id"]) == list(pairs["item_id"])
    assert np.isfinite(preds["prediction"][0]) and np.isnan(preds["prediction"][1])
    assert np.isfinite(preds["prediction"][2])  # a user absent from support: scored with an empty support
    recs = fitted.recommend(support, k=50, exclude_seen=False)
    expected = recs.loc[recs["item_id"] == "i3", "score"].item()
    if fitted.rating_predictor:  # ratings are clipped to the training scale
        ratings = tiny_data.ratings["rating"]
        expected = float(np.clip(expected, ratings.min(), ratings.max()))
    assert preds["prediction"][0] == pytest.approx(expected, rel=1e-5)


def test_recommend_and_predict_leave_the_model_unchanged(fitted, tiny_data):
    before = learned_state(fitted)
    support = support_of(tiny_data, ["u1", "u2"])
    fitted.recommend(support, k=5)
    fitted.predict(support, support[["user_id", "item_id"]])
    assert same_state(before, learned_state(fitted))


def test_an_empty_support_frame_gives_an_empty_result_with_the_columns(fitted):
    empty = pd.DataFrame({"user_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object),
                          "rating": pd.Series(dtype=float)})
    recs = fitted.recommend(empty, k=5)
    assert recs.empty and list(recs.columns) == ["user_id", "rank", "item_id", "score"]
