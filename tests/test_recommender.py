"""ColdStartRecommender beyond the shared contract (test_contract.py): learned state, adaptation, chunking, persistence,
known users, the rating scale and the prior."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart import ColdStartRecommender, ModelFormatError, TrainingDiverged
from coldstart.frames import check_frame, parse_support
from coldstart.objectives import user_negatives
from coldstart.fitted import initial_state
from tests.conftest import TINY, support_of


def test_fit_learns_the_vocabularies_and_one_task_per_user_and_epoch(fitted):
    assert len(fitted.items_) == 50 and len(fitted.users_) == 60
    assert fitted.summary_["tasks"] == 60 * fitted.config.epochs


def test_batching_in_chunks_does_not_change_results(fitted, tiny_data):
    support = support_of(tiny_data, [f"u{u}" for u in range(12)])
    small = ColdStartRecommender(fitted.config.replace(eval_batch_size=5))
    small.state_ = replace(fitted.state_, config=small.config)
    pd.testing.assert_frame_equal(small.recommend(support, k=5), fitted.recommend(support, k=5))
    pairs = tiny_data.ratings[["user_id", "item_id"]].head(120)
    pd.testing.assert_frame_equal(small.predict(support, pairs), fitted.predict(support, pairs))


def test_recommend_adapts_each_user_on_its_support(fitted, tiny_data):
    """recommend's scores are those of the adapted parameters: the same model with adaptation switched off
    (inner_steps 0) scores differently, and adapting lowers every user's own support loss."""
    support = support_of(tiny_data, [f"u{u}" for u in range(6)], n=5)
    adapted = fitted.recommend(support, k=50, exclude_seen=False)
    frozen = ColdStartRecommender.sharing_weights(fitted, 0).recommend(support, k=50, exclude_seen=False)
    merged = adapted.merge(frozen, on=["user_id", "item_id"], suffixes=("", "_frozen"))
    assert len(merged) == len(adapted) and not np.allclose(merged["score"], merged["score_frozen"], atol=1e-4)
    state = fitted.state_
    user_ids, batch = parse_support(support, state.items)
    feats = state.user_encoder.empty(len(user_ids))
    (rows, params, proj), = fitted._adapted(user_ids, batch, feats)
    (_, start, _), = ColdStartRecommender.sharing_weights(fitted, 0)._adapted(user_ids, batch, feats)
    negatives = user_negatives(user_ids, len(state.items), state.config.n_negatives, state.config.seed)
    loss = lambda p: state.objective.support_loss(state.net, p, proj, batch.support, negatives, batch.support.seen())  # noqa
    with torch.no_grad():
        assert (loss(params) < loss(start)).all()


def test_new_users_features_change_their_recommendations(tiny_data):
    """recommend(users=...) passes a new user's features to the model: the same support with different features
    gives different scores, and no features at all differs from both."""
    rec = ColdStartRecommender(TINY.replace(epochs=3)).fit(tiny_data)
    support = support_of(tiny_data, ["u1"], n=3)
    table = tiny_data.users.set_index("user_id")
    other = table.index[table["age_band"] != table.loc["u1", "age_band"]][0]
    runs = []
    for source in ("u1", other):
        features = table.loc[[source]].reset_index().assign(user_id="u1")
        runs.append(rec.recommend(support, k=50, exclude_seen=False, users=features).set_index("item_id")["score"])
    runs.append(rec.recommend(support, k=50, exclude_seen=False).set_index("item_id")["score"])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not np.allclose(runs[a].sort_index(), runs[b].sort_index(), atol=1e-5), (a, b)


def test_adaptation_personalises(fitted, tiny_data):
    a = fitted.recommend(support_of(tiny_data, ["u1"]), k=10, exclude_seen=False)
    b = fitted.recommend(support_of(tiny_data, ["u2"]), k=10, exclude_seen=False)
    assert not np.allclose(a["score"].to_numpy(), b["score"].to_numpy())


def test_save_refuses_to_overwrite_a_foreign_directory(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFormatError, match="refusing"):
        fitted.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("fitted", ["implicit"], indirect=True)
def test_another_seed_gives_other_scores(fitted, tiny_data):
    support = support_of(tiny_data, ["u1", "u4"])
    other = ColdStartRecommender(fitted.config.replace(seed=1)).fit(tiny_data)
    assert not np.allclose(fitted.recommend(support)["score"], other.recommend(support)["score"])


def test_recommend_known_user_excludes_their_history_and_leaves_the_model_unchanged(fitted, tiny_data):
    before = {name: tensor.clone() for name, tensor in fitted.net_.state_dict().items()}
    recs = fitted.recommend_known(["u0"], k=10)
    assert all(torch.equal(before[name], tensor) for name, tensor in fitted.net_.state_dict().items())
    history = set(tiny_data.ratings.loc[tiny_data.ratings["user_id"] == "u0", "item_id"])
    assert len(recs) == 10 and not set(recs["item_id"]) & history
    with pytest.raises(KeyError, match="unknown user"):
        fitted.recommend_known(["nobody"])


def test_rating_objective_predicts_on_the_data_scale(tiny_data):
    rec = ColdStartRecommender(TINY.replace(objective="rating", epochs=3)).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2"])
    preds = rec.predict(support, tiny_data.ratings[["user_id", "item_id"]].head(200))["prediction"]
    assert preds.between(1, 5).all() and preds.std() > 0
    assert abs(preds.mean() - tiny_data.ratings["rating"].mean()) < 1.0


def test_training_starts_at_the_baseline(tiny_data):
    """Before meta-training, the network ranks every item by log popularity over the newest prior_recent_share of
    the log ("implicit", without the priors' channels, which start at weight 1), and predicts exactly what item
    mean + shrunk user offset does ("rating", whose gate starts the priors at weight 0): the output layer starts at
    zero."""
    from coldstart.baselines import ItemMeanOffset
    ratings = tiny_data.ratings
    shuffled = replace(tiny_data, ratings=ratings.sample(frac=1.0, random_state=0))  # rows not in the log's order
    for share in (1.0, 0.5, 0.2):
        times = ratings["timestamp"]
        counts = ratings.loc[times >= times.quantile(1 - share), "item_id"].value_counts()
        rec = ColdStartRecommender(TINY.replace(inner_steps=0, prior_recent_share=share, priors="none"))
        initialise(rec, shuffled)  # fit, up to the first meta-step
        scores = rec.recommend(support_of(tiny_data, ["u1"]), k=50, exclude_seen=False).set_index("item_id")["score"]
        shift = (scores - np.log1p(counts).reindex(scores.index).fillna(0.0)).to_numpy()
        np.testing.assert_allclose(shift, shift[0], atol=1e-5)  # equal up to a constant: the same ranking

    rec = ColdStartRecommender(TINY.replace(objective="rating", inner_steps=0))
    initialise(rec, tiny_data)
    baseline = ItemMeanOffset().fit(ratings, tiny_data.items)
    support = support_of(tiny_data, ["u1", "u2"])
    pairs = ratings[["user_id", "item_id"]].head(300)
    got, want = (m.predict(support, pairs)["prediction"].to_numpy() for m in (rec, baseline))
    assert np.ptp(want) > 0.5  # the user offsets and item offsets both matter here
    np.testing.assert_allclose(got, want, atol=1e-4)



def initialise(rec, data) -> None:
    """Everything fit does before the first meta-step."""
    rec.state_ = initial_state(rec.config, check_frame(data.ratings, "ratings"), data.items, data.users)


def test_a_diverging_fit_keeps_the_last_good_epoch(tiny_data):
    """A step size that wrecks the model stops training (TrainingDiverged): the recommender keeps the weights of
    the last epoch whose loss stayed finite (here the start), usable, and the summary says what happened."""
    cfg = TINY.replace(meta_lr=50.0, epochs=3)
    start = ColdStartRecommender(cfg)
    initialise(start, tiny_data)
    fitted = ColdStartRecommender(cfg)
    with pytest.raises(TrainingDiverged, match="became nan .*kept the weights of epoch 0"):
        fitted.fit(tiny_data)
    assert "became nan" in fitted.summary_["diverged"] and fitted.summary_["epoch_query_loss"] == []
    for (name, a), b in zip(start.net_.state_dict().items(), fitted.net_.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert np.isfinite(fitted.recommend(support_of(tiny_data, ["u1"]))["score"]).all()




def test_support_ratings_far_off_the_training_scale_are_errors(fitted, tiny_data):
    support = pd.DataFrame({"user_id": ["new", "new"], "item_id": tiny_data.ratings["item_id"].iloc[:2].tolist(),
                            "rating": [4.0, 500.0]})
    low, high = fitted.rating_stats_["min"], fitted.rating_stats_["max"]
    if high > low:  # a model of explicit ratings; implicit data has the one-value scale 1 to 1 and checks nothing
        with pytest.raises(ValueError, match=r"support: row 1 \(user 'new', item '\w+'\), column 'rating': "
                                             r"expected a rating on the model's "
                                             r"scale 1 to 5 \(give or take 1\), found 500.0"):
            fitted.recommend(support)
        with pytest.raises(ValueError, match="found 500.0"):
            fitted.predict(support, support[["user_id", "item_id"]])
    assert len(fitted.recommend(support.assign(rating=[4.0, 5.0]), k=3)) == 3
