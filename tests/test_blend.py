"""`Blend` (EASE + a weighted popularity prior) and the tuned baselines in the evaluation's report; the contract every
baseline keeps is in test_contract.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart import Config
from coldstart.baselines import Blend, EASEFoldIn, FeaturePopularity, Popularity
from coldstart.evaluation import Protocol, default_systems, run_evaluation
from coldstart.evaluation.protocol import split_new_users
from coldstart.io import Dataset
from tests.conftest import TINY, oracle_validation_ndcg, support_of

PRIORS = {"recent": lambda: Popularity(min_rating=4.0, recent_share=0.5), "peers": FeaturePopularity}


def simple_systems(data: Dataset) -> dict:
    """The baselines `default_systems` fits (its "simple" system: the one before the network's)."""
    return default_systems(TINY)[-2](data)


@pytest.mark.parametrize("prior", list(PRIORS))
def test_weight_zero_is_ease(prior, tiny_data):
    blend = Blend(PRIORS[prior](), weight=0.0, ease=EASEFoldIn(l2=50.0)).fit(tiny_data)
    ease = EASEFoldIn(l2=50.0).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2", "u3"])
    pd.testing.assert_frame_equal(blend.recommend(support, k=50, users=tiny_data.users), ease.recommend(support, k=50))


@pytest.mark.parametrize("prior", list(PRIORS))
def test_a_very_large_weight_is_the_priors_ranking(prior, tiny_data):
    """The blend's list, read with the prior's scores, is the prior's own best list: the same items up to the prior's
    ties (which EASE breaks in the blend and the catalogue order in the prior)."""
    blend = Blend(PRIORS[prior](), weight=1e9, ease=EASEFoldIn(l2=50.0)).fit(tiny_data)
    alone = PRIORS[prior]().fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2", "u3"])
    users = tiny_data.users
    mixed, own = blend.recommend(support, k=20, users=users), alone.recommend(support, k=20, users=users)
    read = alone.predict(support, mixed[["user_id", "item_id"]], users=users)["prediction"]
    np.testing.assert_allclose(read, own["score"], rtol=1e-9)
    assert not mixed["item_id"].equals(EASEFoldIn(l2=50.0).fit(tiny_data).recommend(support, k=20)["item_id"])


def test_scores_are_ease_plus_weight_times_the_priors_share_of_the_users_best(tiny_data):
    blend = Blend(FeaturePopularity(), weight=0.7, ease=EASEFoldIn(l2=50.0)).fit(tiny_data)
    ease, peers = EASEFoldIn(l2=50.0).fit(tiny_data), FeaturePopularity().fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u4"])
    users = pd.DataFrame({"user_id": ["u1", "u4"], "age_band": ["band0", "band3"]})
    pairs = pd.DataFrame({"user_id": np.repeat(["u1", "u4"], 50), "item_id": blend.items_.to_list() * 2})
    prior = peers.predict(support, pairs, users=users)["prediction"].to_numpy().reshape(2, 50)  # (B, I)
    share = (prior / prior.max(1, keepdims=True)).ravel()  # (B * I,)
    expected = ease.predict(support, pairs)["prediction"].to_numpy() + 0.7 * share
    np.testing.assert_allclose(blend.predict(support, pairs, users=users)["prediction"], expected, rtol=1e-9)
    assert not np.allclose(prior[0], prior[1])  # the two users' peers differ


@pytest.mark.parametrize("prior", list(PRIORS))
def test_tuned_picks_the_weight_with_the_best_validation_ndcg_and_shares_the_given_ease(prior, tiny_data):
    ratings, users = tiny_data.ratings, tiny_data.users
    ease = EASEFoldIn(l2=50.0).fit(tiny_data)
    grid = (0.0, 0.01, 0.03, 0.3, 1e4)
    blend = Blend.tuned(tiny_data, PRIORS[prior](), ease, grid=grid)
    assert list(blend.tuning_) == list(grid) and len(set(blend.tuning_.values())) > 2
    for weight, ndcg in blend.tuning_.items():  # brute force: every weight fit from scratch, user by user
        make = lambda: Blend(PRIORS[prior](), weight, EASEFoldIn(l2=50.0))  # noqa: E731
        assert ndcg == pytest.approx(oracle_validation_ndcg(ratings, make, users=users))
    assert blend.weight == max(blend.tuning_, key=blend.tuning_.get) not in (0.0, 1e4)
    assert blend.ease_ is ease  # one EASE fit serves "ease" and the blends
    support = support_of(tiny_data, ["u1", "u4"])  # the prior refit on all the users, with its own settings
    pd.testing.assert_frame_equal(blend.prior_.recommend(support, k=50, users=users),
                                  PRIORS[prior]().fit(tiny_data).recommend(support, k=50, users=users))


def test_tuned_without_ease_tunes_its_l2_too(tiny_data):
    blend = Blend.tuned(tiny_data, PRIORS["recent"](), grid=(0.0, 0.03))
    assert blend.ease_.l2 == EASEFoldIn.tuned(tiny_data).l2 and hasattr(blend.ease_, "tuning_")


def test_the_report_has_the_tuned_baselines_and_peers_only_with_user_features(tiny_data):
    models = simple_systems(tiny_data)
    assert {"popularity_recent", "popularity_features", "ease", "recent+ease", "peers+ease"} <= set(models)
    assert all(hasattr(models[name], "tuning_") for name in ("popularity_recent", "ease", "recent+ease", "peers+ease"))
    assert models["recent+ease"].ease_ is models["peers+ease"].ease_ is models["ease"]
    assert models["recent+ease"].prior_.recent_share == models["popularity_recent"].recent_share
    featureless = simple_systems(Dataset(tiny_data.ratings, tiny_data.items, None, tiny_data.name))
    assert "recent+ease" in featureless and not {"peers+ease", "popularity_features"} & set(featureless)
    untimed = simple_systems(Dataset(tiny_data.ratings.drop(columns="timestamp"), tiny_data.items, tiny_data.users))
    assert "peers+ease" in untimed and not {"recent+ease", "popularity_recent"} & set(untimed)


def test_the_evaluations_new_users_are_never_read_by_the_tuned_baselines(tiny_data):
    """The new users' ratings and features poisoned: every choice made on validation users stays the same."""
    new_users = set(split_new_users(tiny_data.ratings, 0.2, TINY.seed)[1]["user_id"])
    ratings, users = tiny_data.ratings.copy(), tiny_data.users.copy()
    poison = ratings["user_id"].isin(new_users)
    ratings.loc[poison, "rating"] = 5.0 - ratings.loc[poison, "rating"] + 1.0  # liked <-> disliked
    ratings.loc[poison, "item_id"] = "poison"  # and one item for all: any count it entered would differ
    users.loc[users["user_id"].isin(new_users), "age_band"] = "poison"
    tuned = ("popularity_recent", "ease", "recent+ease", "peers+ease")
    choices = []
    for data in (tiny_data, Dataset(ratings, tiny_data.items, users, tiny_data.name)):
        fitted = {}

        def system(train: Dataset) -> dict:
            fitted.update(simple_systems(train))
            return {"popularity": fitted["popularity"]}

        run_evaluation(data, Config(seed=TINY.seed), Protocol(shots=(3,), seed=TINY.seed), systems=[system])
        choices.append({name: fitted[name].tuning_ for name in tuned})
    assert choices[0] == choices[1] and all(np.isfinite(list(t.values())).all() for t in choices[0].values())


def test_a_negative_weight_or_parts_of_different_catalogues_are_refused(tiny_data):
    with pytest.raises(ValueError, match="Blend.weight must be >= 0, found -1"):
        Blend(FeaturePopularity(), weight=-1).fit(tiny_data)
    ease = EASEFoldIn(l2=50.0).fit(tiny_data)
    with pytest.raises(ValueError, match="different catalogues"):
        Blend.of(ease, Popularity().fit(tiny_data.ratings.iloc[::-1]), 0.1)  # same items, another order
