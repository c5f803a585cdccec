"""Each baseline's own invariant on data with a known answer (the shared contract is in test_contract.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart import IdMap
from coldstart.baselines import Blend, EASEFoldIn, FeaturePopularity, ItemMeanOffset, Popularity
from tests.conftest import als, oracle_validation_ndcg, support_of


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


# --- EASEFoldIn ------------------------------------------------------------------------------------------------
def random_log(n_users=30, n_items=12, density=0.3, seed=0):
    """A random binary log and its (users x items) matrix, rows and columns in the log's first-seen order."""
    x = (np.random.default_rng(seed).random((n_users, n_items)) < density).astype(float)
    x[0] = 1.0  # user 0 rates every item, so first-seen item order is i0, i1, ...
    users, items = np.nonzero(x)
    return pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items]}), x


def test_ease_weights_are_the_column_wise_ridge_regressions_without_self_weight():
    log, x = random_log()
    rec = EASEFoldIn(l2=3.0).fit(log)
    assert rec.items_.to_list() == [f"i{i}" for i in range(12)]
    n = x.shape[1]
    p = np.linalg.solve(x.T @ x + 3.0 * np.eye(n), np.eye(n))
    np.testing.assert_allclose(rec.weights_, np.eye(n) - p / np.diag(p), atol=1e-5)
    for j in range(n):  # column j: ridge regression of item j on all the other items
        others = np.delete(np.arange(n), j)
        b = np.linalg.solve(x[:, others].T @ x[:, others] + 3.0 * np.eye(n - 1), x[:, others].T @ x[:, j])
        np.testing.assert_allclose(rec.weights_[others, j], b, atol=1e-5)
        assert rec.weights_[j, j] == 0.0
    support = pd.DataFrame({"user_id": "new", "item_id": ["i2", "i5", "i7"]})
    preds = rec.predict(support, pd.DataFrame({"user_id": "new", "item_id": rec.items_.to_list()}))
    np.testing.assert_allclose(preds["prediction"], rec.weights_[[2, 5, 7]].sum(axis=0), atol=2e-6)


def test_ease_ranks_the_item_co_consumed_with_the_support_item_first():
    pairs = [(f"a{u}", item) for u in range(10) for item in ("bread", "butter")]  # always together
    crowd = [(f"b{u}", item) for u in range(40) for item in ("hit", f"x{u % 20}", f"x{(u + 7) % 20}")]
    log = pd.DataFrame(pairs + crowd, columns=["user_id", "item_id"])
    support = pd.DataFrame({"user_id": ["new"], "item_id": ["bread"]})
    assert EASEFoldIn(l2=5.0).fit(log).recommend(support, k=1)["item_id"].iloc[0] == "butter"
    assert Popularity().fit(log).recommend(support, k=1)["item_id"].iloc[0] == "hit"  # 4x the interactions


def test_ease_user_without_known_support_gets_the_popularity_order(tiny_data):
    rec = EASEFoldIn(l2=50.0).fit(tiny_data)
    stranger = pd.DataFrame({"user_id": ["x"], "item_id": ["nope"], "rating": [4.0]})
    recs = rec.recommend(stranger, k=50)
    popular = Popularity().fit(tiny_data).recommend(stranger, k=50)
    assert list(recs["item_id"]) == list(popular["item_id"])
    assert recs["score"].max() <= 1e-6
    preds = rec.predict(stranger, pd.DataFrame({"user_id": ["absent", "x"], "item_id": popular["item_id"][:2]}))
    np.testing.assert_allclose(preds["prediction"], recs["score"][:2])


def test_ease_validates_l2_and_the_catalogue_size(tiny_data):
    with pytest.raises(ValueError, match="l2 must be > 0"):
        EASEFoldIn(l2=0.0).fit(tiny_data)
    with pytest.raises(ValueError, match="50 items exceed max_items=40"):
        EASEFoldIn(max_items=40).fit(tiny_data)


def test_ease_tuned_scores_each_l2_on_newest_users_of_the_training_log_then_refits_on_all(tiny_data):
    ratings = tiny_data.ratings
    rec = EASEFoldIn.tuned(ratings, grid=(5.0, 50.0, 500.0))
    assert list(rec.tuning_) == [5.0, 50.0, 500.0]
    for l2, ndcg in rec.tuning_.items():
        assert ndcg == pytest.approx(oracle_validation_ndcg(ratings, lambda: EASEFoldIn(l2=l2)))
    assert rec.l2 == max(rec.tuning_, key=rec.tuning_.get) and len(set(rec.tuning_.values())) > 1
    np.testing.assert_array_equal(rec.weights_, EASEFoldIn(l2=rec.l2).fit(ratings).weights_)  # all users


def test_ease_tuned_draws_validation_users_by_seed_without_timestamps(tiny_data):
    ratings = tiny_data.ratings.drop(columns="timestamp")
    a, b = (EASEFoldIn.tuned(ratings, grid=(5.0, 50.0), seed=s).tuning_ for s in (0, 0))
    assert a == b and a != EASEFoldIn.tuned(ratings, grid=(5.0, 50.0), seed=1).tuning_
    with pytest.raises(ValueError, match="shots >= 1"):
        EASEFoldIn.tuned(ratings, shots=0)


# --- FeaturePopularity -----------------------------------------------------------------------------------------
def gendered_log():
    """Women love A; men love B and rate A badly (so A has the most ratings, B the most liked ones)."""
    women = [(f"w{u}", "A", 5.0) for u in range(10)] + [(f"w{u}", "C", 3.0) for u in range(10)]
    men = [(f"m{u}", item, rating) for u in range(15) for item, rating in (("B", 5.0), ("A", 1.0))]
    log = pd.DataFrame(women + men, columns=["user_id", "item_id", "rating"])
    users = pd.DataFrame({"user_id": [f"w{u}" for u in range(10)] + [f"m{u}" for u in range(15)],
                          "gender": ["F"] * 10 + ["M"] * 15})
    return log, users


def test_feature_popularity_recommends_what_users_with_the_same_features_liked():
    log, users = gendered_log()
    rec = FeaturePopularity().fit(log, users=users)
    support = pd.DataFrame({"user_id": ["she", "he", "anon", "other"], "item_id": "C"})
    new = pd.DataFrame({"user_id": ["she", "he", "other"], "gender": ["F", "M", "X"]})  # "anon" has no row
    firsts = rec.recommend(support, k=1, users=new).set_index("user_id")["item_id"]
    assert firsts.to_dict() == {"she": "A", "he": "B", "anon": "B", "other": "B"}  # B: the most liked overall
    preds = rec.predict(support, pd.DataFrame({"user_id": ["she", "he"], "item_id": ["A", "A"]}), users=new)
    np.testing.assert_allclose(preds["prediction"], [1.0, 0.0], atol=1e-6)  # share of the value's liked ratings
    every = FeaturePopularity(min_rating=None).fit(log, users=users)  # men's ratings of A count too
    assert every.recommend(support, k=1, users=new).set_index("user_id")["item_id"]["he"] == "A"


def test_feature_popularity_bins_many_valued_numbers_and_reads_codes_as_categories():
    n = 40
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n)], "age": np.arange(20, 20 + n),
                          "code": [1, 2] * (n // 2), "zip": [f"{10000 + u}" for u in range(n)]})
    log = pd.DataFrame({"user_id": users["user_id"], "item_id": np.where(users["age"] < 40, "young", "old")})
    log = pd.concat([log, pd.DataFrame({"user_id": users["user_id"][users["code"] == 2], "item_id": "two"})])
    rec = FeaturePopularity().fit(log, users=users)  # an implicit log: every interaction counts
    assert list(rec.columns_) == ["age", "code"] and len(rec.columns_["age"]) == 4 and rec.columns_["code"] is None
    new = pd.DataFrame({"user_id": ["kid", "elder", "coder"], "age": [25.5, 70.0, None], "code": [1.0, 1.0, 2.0]})
    support = pd.DataFrame({"user_id": ["kid", "elder", "coder"], "item_id": "nothing"})
    firsts = rec.recommend(support, k=1, users=new).set_index("user_id")["item_id"]
    assert firsts.to_dict() == {"kid": "young", "elder": "old", "coder": "two"}


def test_feature_popularity_scores_are_the_liked_shares_of_each_value(tiny_data):
    rec = FeaturePopularity().fit(tiny_data)  # the Dataset's users table: age_band
    liked = tiny_data.ratings[tiny_data.ratings["rating"] >= 4].merge(tiny_data.users, on="user_id")
    share = liked[liked["age_band"] == "band0"]["item_id"].value_counts(normalize=True)
    items = rec.items_.to_list()
    new = pd.DataFrame({"user_id": ["x"], "age_band": ["band0"]})
    preds = rec.predict(support_of(tiny_data, ["u1"]), pd.DataFrame({"user_id": "x", "item_id": items}), users=new)
    np.testing.assert_allclose(preds["prediction"], [share.get(i, 0.0) for i in items], atol=1.1e-6)
    stranger = pd.DataFrame({"user_id": ["y"], "item_id": ["nope"]})
    popular = list(Popularity(min_rating=4.0).fit(tiny_data).recommend(stranger, k=50)["item_id"])
    assert list(rec.recommend(stranger, k=50)["item_id"]) == popular  # no features: liked popularity
    blind = FeaturePopularity().fit(tiny_data.ratings, items=tiny_data.items)  # no users table at fit
    assert blind.columns_ == {} and list(blind.recommend(stranger, k=50, users=new)["item_id"]) == popular


# --- EASEFoldIn, FeaturePopularity, Blend: exclusion, k, batches -----------------------------------------------
@pytest.mark.parametrize("make", [lambda: EASEFoldIn(l2=20.0), FeaturePopularity,
                                  lambda: Blend(FeaturePopularity(), 0.03, EASEFoldIn(l2=20.0))],
                         ids=["ease", "features", "peers+ease"])
def test_batch_of_ragged_supports_equals_each_user_alone_and_respects_k_and_exclusion(make, tiny_data):
    rec = make().fit(tiny_data)
    support = pd.concat([support_of(tiny_data, [u], n=n) for u, n in (("u3", 2), ("u8", 7), ("u5", 4))])
    users = tiny_data.users
    batch = rec.recommend(support, k=7, users=users)
    singles = pd.concat([rec.recommend(support[support["user_id"] == u], k=7, users=users)
                         for u in ("u3", "u8", "u5")], ignore_index=True)
    pd.testing.assert_frame_equal(batch, singles)
    assert (batch.groupby("user_id").size() == 7).all()
    seen = set(zip(support["user_id"], support["item_id"]))
    assert not any(pair in seen for pair in zip(batch["user_id"], batch["item_id"]))
    everything = rec.recommend(support, k=50, exclude_seen=False, users=users)
    assert seen <= set(zip(everything["user_id"], everything["item_id"]))
    pairs = pd.DataFrame({"user_id": ["u8", "u3", "u5", "u8"], "item_id": ["i1", "i2", "i3", "i4"]})
    together = rec.predict(support, pairs, users=users)["prediction"].to_numpy()
    alone = [rec.predict(support[support["user_id"] == u], pairs.iloc[[j]], users=users)["prediction"][0]
             for j, u in enumerate(pairs["user_id"])]
    np.testing.assert_allclose(together, alone)
    scores = dict(zip(zip(everything["user_id"], everything["item_id"]), everything["score"]))
    np.testing.assert_allclose(together, [scores[p] for p in zip(pairs["user_id"], pairs["item_id"])], rtol=1e-6)


def test_recent_popularity_counts_only_the_newest_share_of_the_log():
    """Item "old" was popular long ago, "new" lately: popularity_recent puts "new" first, popularity "old"."""
    ratings = pd.DataFrame({"user_id": [f"u{i}" for i in range(10)],
                            "item_id": ["old"] * 6 + ["new"] * 3 + ["other"],
                            "rating": 5.0, "timestamp": [1, 2, 3, 4, 5, 6, 8, 9, 10, 7]})
    recent = Popularity(recent_share=0.4).fit(ratings)  # the newest 4 rows: new, new, new, other
    assert recent.name == "popularity_recent" and Popularity().fit(ratings).name == "popularity"
    support = pd.DataFrame({"user_id": ["x"], "item_id": ["zzz"], "rating": [5.0]})
    assert recent.recommend(support, k=3, exclude_seen=False)["item_id"].tolist()[:2] == ["new", "other"]
    assert Popularity().fit(ratings).recommend(support, k=1)["item_id"].tolist() == ["old"]
    untimed = Popularity(recent_share=0.4).fit(ratings.drop(columns="timestamp"))  # no timestamps: the whole log
    assert untimed.recommend(support, k=1)["item_id"].tolist() == ["old"]
    with pytest.raises(ValueError, match="recent_share"):
        Popularity(recent_share=0.0).fit(ratings)


def test_recent_popularity_tuned_scores_each_window_on_newest_users_then_refits_on_all(tiny_data):
    ratings = tiny_data.ratings
    grid = (0.1, 0.25, 0.5, 1.0)
    rec = Popularity.tuned(ratings, min_rating=4.0, grid=grid)
    assert list(rec.tuning_) == list(grid) and len(set(rec.tuning_.values())) > 1
    for share, ndcg in rec.tuning_.items():
        assert ndcg == pytest.approx(oracle_validation_ndcg(ratings, lambda: Popularity(4.0, share)))
    assert rec.recent_share == max(rec.tuning_, key=rec.tuning_.get) < 1.0
    whole_log = Popularity.tuned(ratings, min_rating=4.0, grid=(1.0,))
    assert rec.name == whole_log.name == "popularity_recent"  # whatever share wins
    np.testing.assert_array_equal(rec.counts_, Popularity(4.0, rec.recent_share).fit(ratings).counts_)  # all users
