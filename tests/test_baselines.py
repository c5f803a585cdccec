"""The recommender contract over every baseline, plus each baseline's own invariant on data with a known answer."""
from __future__ import annotations

import logging
import pickle

import numpy as np
import pandas as pd
import pytest

from coldstart import IdMap, NotFittedError
from coldstart.baselines import ALSFoldIn, ItemMeanOffset, Popularity


def als(**params) -> ALSFoldIn:
    """A small ALS; one thread, since implicit's thread start-up dwarfs these fits (results do not depend on it)."""
    return ALSFoldIn(**{"factors": 8, "iterations": 10, "seed": 0, "num_threads": 1, **params})


FACTORIES = {"popularity": Popularity, "item_mean": ItemMeanOffset, "als": als}


def support_of(data, users, n=4):
    """The first n ratings in time of each user, users in the order given."""
    r = data.ratings.sort_values("timestamp", kind="stable")
    return pd.concat([r[r["user_id"] == u].head(n) for u in users])[["user_id", "item_id", "rating"]]


@pytest.fixture(scope="module", params=list(FACTORIES))
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def fitted(kind, tiny_data):
    return FACTORIES[kind]().fit(tiny_data)


# --- the contract ----------------------------------------------------------------------------------------------
def test_fit_returns_self_and_declares_name_and_kind(kind, tiny_data):
    rec = FACTORIES[kind]()
    assert rec.fit(tiny_data) is rec
    assert len(rec.items_) == 50 and rec.name == kind
    assert rec.rating_predictor is (kind == "item_mean")


def test_unfitted_baseline_raises(kind, tiny_data):
    support = support_of(tiny_data, ["u1"])
    with pytest.raises(NotFittedError, match="fit"):
        FACTORIES[kind]().recommend(support)
    with pytest.raises(NotFittedError, match="fit"):
        FACTORIES[kind]().predict(support, support)


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
    with pytest.raises(ValueError, match="k must be"):
        fitted.recommend(support, k=0)


def test_include_seen_can_return_support_items(fitted, tiny_data):
    support = support_of(tiny_data, ["u5"], n=6)
    recs = fitted.recommend(support, k=50, exclude_seen=False)
    assert len(recs) == 50 and set(support["item_id"]) <= set(recs["item_id"])
    assert len(fitted.recommend(support, k=50)) == 50 - 6
    assert len(fitted.recommend(support, k=500)) == 50 - 6  # k is capped at the catalogue


def test_batch_equals_the_loop_of_single_users(fitted, tiny_data):
    users = [f"u{u}" for u in range(10)]
    support = support_of(tiny_data, users)
    batched = fitted.recommend(support, k=5)
    singles = pd.concat([fitted.recommend(support[support["user_id"] == u], k=5) for u in users],
                        ignore_index=True)
    pd.testing.assert_frame_equal(batched[["user_id", "rank", "item_id"]], singles[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(batched["score"], singles["score"], rtol=1e-5, atol=1e-6)


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


def test_fit_is_deterministic(kind, tiny_data):
    support = support_of(tiny_data, ["u1", "u4"])
    a = FACTORIES[kind]().fit(tiny_data).recommend(support)
    b = FACTORIES[kind]().fit(tiny_data).recommend(support)
    pd.testing.assert_frame_equal(a, b)


def test_recommend_and_predict_leave_the_model_unchanged(fitted, tiny_data):
    before = pickle.dumps(fitted)
    support = support_of(tiny_data, ["u1", "u2"])
    fitted.recommend(support, k=5)
    fitted.predict(support, support[["user_id", "item_id"]])
    assert pickle.dumps(fitted) == before


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
    if fitted.rating_predictor:
        expected = float(np.clip(expected, *fitted.rating_range_))
    assert preds["prediction"][0] == pytest.approx(expected, rel=1e-5, abs=1e-6)


# --- Popularity ------------------------------------------------------------------------------------------------
def test_popularity_ranks_items_by_training_count(tiny_data):
    rec = Popularity().fit(tiny_data)
    counts = tiny_data.ratings["item_id"].value_counts()
    first_seen = list(dict.fromkeys(tiny_data.ratings["item_id"].tolist() + tiny_data.items["item_id"].tolist()))
    expected = sorted(first_seen, key=lambda i: (-counts.get(i, 0), first_seen.index(i)))
    support = pd.DataFrame({"user_id": ["a"], "item_id": [expected[0]], "rating": [1.0]})
    recs = rec.recommend(support, k=50, exclude_seen=False)
    assert list(recs["item_id"]) == expected
    assert list(recs["score"]) == [float(counts.get(i, 0)) for i in expected]
    assert list(rec.recommend(support, k=49)["item_id"]) == expected[1:]
    preds = rec.predict(support, pd.DataFrame({"user_id": ["a", "b"], "item_id": expected[:2]}))
    assert list(preds["prediction"]) == [counts[expected[0]], counts[expected[1]]]


# --- ItemMeanOffset --------------------------------------------------------------------------------------------
TOY = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c", "c"], "item_id": ["i1", "i2", "i1", "i3", "i2", "i3"],
                    "rating": [5.0, 3.0, 4.0, 1.0, 2.0, 2.0]})  # mu = 17/6


def test_item_mean_offset_matches_a_hand_computation():
    rec = ItemMeanOffset(shrinkage=2.0, item_shrinkage=1.0).fit(TOY)
    mu = 17 / 6
    b_i = {"i1": (5 + 4 - 2 * mu) / 3, "i2": (3 + 2 - 2 * mu) / 3, "i3": (1 + 2 - 2 * mu) / 3}  # 10/9, -2/9, -8/9
    support = pd.DataFrame({"user_id": ["new", "new"], "item_id": ["i1", "i3"], "rating": [5.0, 3.0]})
    b_u = ((5 - mu - b_i["i1"]) + (3 - mu - b_i["i3"])) / (2 + 2)  # 19/36
    preds = rec.predict(support, pd.DataFrame({"user_id": ["new", "new", "other"], "item_id": ["i2", "i1", "i3"]}))
    np.testing.assert_allclose(preds["prediction"], [mu + b_i["i2"] + b_u, mu + b_i["i1"] + b_u, mu + b_i["i3"]])
    assert preds["prediction"][0] == pytest.approx(113 / 36)


def test_item_mean_offset_ranks_by_item_offset_and_clips_predictions():
    rec = ItemMeanOffset(shrinkage=0.0, item_shrinkage=0.0).fit(TOY)
    support = pd.DataFrame({"user_id": ["fan"], "item_id": ["i3"], "rating": [5.0]})  # b_u = 5 - mu + 4/3 = 3.5
    recs = rec.recommend(support, k=3, exclude_seen=False)
    assert list(recs["item_id"]) == ["i1", "i2", "i3"]  # b_i = 5/3, -1/3, -4/3
    np.testing.assert_allclose(recs["score"], [8.0, 6.0, 5.0])  # unclipped mu + b_i + b_u
    preds = rec.predict(support, pd.DataFrame({"user_id": ["fan"] * 3, "item_id": ["i1", "i2", "i3"]}))
    np.testing.assert_allclose(preds["prediction"], [5.0, 5.0, 5.0])  # clipped to the training range 1..5
    with pytest.raises(ValueError, match="shrinkage must be >= 0"):
        ItemMeanOffset(shrinkage=-1.0).fit(TOY)


# --- ALSFoldIn -------------------------------------------------------------------------------------------------
def planted_groups(n_users=80, n_items=40, per_user=8, seed=0):
    """Two taste groups: even users interact with items 0..19 only, odd users with items 20..39 only."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    rows = [(f"u{u}", f"i{(u % 2) * half + i}") for u in range(n_users)
            for i in rng.choice(half, size=per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(rating=1.0)


def test_als_fold_in_recovers_the_taste_group_of_new_users():
    rec = als(factors=2, iterations=15).fit(planted_groups())  # the planted rank
    group_a, group_b = [f"i{i}" for i in range(20)], [f"i{i}" for i in range(20, 40)]
    support = pd.DataFrame({"user_id": ["new_a"] * 4 + ["new_b"] * 4,
                            "item_id": group_a[:4] + group_b[:4]})  # one batch: rows must not get mixed up
    recs = rec.recommend(support, k=10)
    assert recs.loc[recs["user_id"] == "new_a", "item_id"].isin(group_a).mean() >= 0.9
    assert recs.loc[recs["user_id"] == "new_b", "item_id"].isin(group_b).mean() >= 0.9
    for user, own, other in (("new_a", group_a[4:], group_b[4:]), ("new_b", group_b[4:], group_a[4:])):
        pairs = pd.DataFrame({"user_id": user, "item_id": own + other})
        scores = rec.predict(support, pairs)["prediction"].to_numpy()
        assert scores[:16].mean() > scores[16:].mean() + 0.1


def test_als_fold_in_solves_the_confidence_weighted_least_squares(tiny_data):
    rec = als(regularization=0.05, alpha=3.0).fit(tiny_data)
    support = support_of(tiny_data, ["u7"], n=5)
    y = rec.model_.item_factors.astype(np.float64)  # (I, F)
    ys = y[rec.items_.index(support["item_id"])]  # (S, F)
    # confidence 1 + alpha on support items, 1 elsewhere, preference 1 on support items
    a = y.T @ y + 0.05 * np.eye(8) + 3.0 * ys.T @ ys
    x = np.linalg.solve(a, 4.0 * ys.sum(axis=0))  # (F,)
    preds = rec.predict(support, pd.DataFrame({"user_id": "u7", "item_id": rec.items_.to_list()}))
    np.testing.assert_allclose(preds["prediction"], y @ x, rtol=1e-3, atol=1e-5)


def test_als_fold_in_of_a_training_history_matches_the_trained_user(tiny_data):
    rec = als(iterations=15).fit(tiny_data)
    user = "u11"
    history = tiny_data.ratings[tiny_data.ratings["user_id"] == user]
    folded = rec.recommend(history, k=10)["item_id"]
    row = IdMap.from_values(tiny_data.ratings["user_id"]).index([user])[0]  # fit's user order
    trained = rec.model_.user_factors[row] @ rec.model_.item_factors.T  # (I,)
    trained[rec.items_.index(history["item_id"])] = -np.inf
    expected = rec.items_.ids(np.argsort(-trained, kind="stable")[:10])
    assert len(set(folded) & set(expected)) >= 8


def test_als_user_without_known_support_gets_the_popularity_order(tiny_data):
    rec = als().fit(tiny_data)
    stranger = pd.DataFrame({"user_id": ["x"], "item_id": ["nope"], "rating": [4.0]})
    recs = rec.recommend(stranger, k=6)
    popular = Popularity().fit(tiny_data).recommend(stranger, k=6)
    assert list(recs["item_id"]) == list(popular["item_id"]) and (recs["score"] == 0).all()


def test_als_seed_changes_the_factors(tiny_data):
    support = support_of(tiny_data, ["u1", "u4"])
    a = als().fit(tiny_data).recommend(support)
    b = als(seed=1).fit(tiny_data).recommend(support)
    assert not np.allclose(a["score"], b["score"])
