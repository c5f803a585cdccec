"""Each baseline's own invariant on data with a known answer (the shared contract is in test_contract.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart import IdMap
from coldstart.baselines import ItemMeanOffset, Popularity
from tests.conftest import als, support_of


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


def test_liked_popularity_counts_only_ratings_at_or_above_the_threshold(tiny_data):
    rec = Popularity(min_rating=4.0).fit(tiny_data)
    liked = tiny_data.ratings[tiny_data.ratings["rating"] >= 4.0]["item_id"].value_counts()
    assert rec.name == "popularity_liked" and 0 < liked.sum() < len(tiny_data.ratings)
    items = list(rec.items_.to_list())
    support = pd.DataFrame({"user_id": ["x"], "item_id": [items[0]], "rating": [3.0]})
    preds = rec.predict(support, pd.DataFrame({"user_id": "x", "item_id": items}))
    assert list(preds["prediction"]) == [float(liked.get(i, 0)) for i in items]


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
