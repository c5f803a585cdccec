"""The recommender contract: fit returns self, top-k shape, exclusions, batch = loop, purity, persistence."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart import ColdStartRecommender, ModelFormatError, NotFittedError
from tests.conftest import TINY


def support_of(data, users, n=4):
    """The first n ratings in time of each user, users in the order given."""
    r = data.ratings.sort_values("timestamp")
    return pd.concat([r[r["user_id"] == u].head(n) for u in users])[["user_id", "item_id", "rating"]]


def test_fit_returns_self_and_learned_state(tiny_data):
    rec = ColdStartRecommender(TINY.replace(epochs=1))
    assert rec.fit(tiny_data) is rec
    assert len(rec.items_) == 50 and len(rec.users_) == 60
    assert rec.summary_["tasks"] == 60


def test_unfitted_recommender_raises(tiny_data):
    with pytest.raises(NotFittedError, match="fit"):
        ColdStartRecommender().recommend(support_of(tiny_data, ["u1"]))


def test_top_k_is_sorted_unique_and_excludes_support(fitted, tiny_data):
    support = support_of(tiny_data, ["u1", "u2", "u3"])
    recs = fitted.recommend(support, k=7)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    for user, group in recs.groupby("user_id"):
        assert len(group) == 7 and group["item_id"].is_unique
        assert list(group["rank"]) == list(range(1, 8))
        assert (np.diff(group["score"].to_numpy()) <= 0).all()
        assert not set(group["item_id"]) & set(support.loc[support["user_id"] == user, "item_id"])
    assert list(recs["user_id"].unique()) == list(support["user_id"].unique())  # order of first appearance


def test_include_seen_can_return_support_items(fitted, tiny_data):
    support = support_of(tiny_data, ["u5"], n=6)
    recs = fitted.recommend(support, k=50, exclude_seen=False)
    assert len(recs) == 50 and set(support["item_id"]) <= set(recs["item_id"])
    assert len(fitted.recommend(support, k=50)) == 50 - 6


def test_batch_equals_the_loop_of_single_users(fitted, tiny_data):
    users = [f"u{u}" for u in range(10)]
    support = support_of(tiny_data, users)
    batched = fitted.recommend(support, k=5)
    singles = pd.concat([fitted.recommend(support[support["user_id"] == u], k=5) for u in users],
                        ignore_index=True)
    pd.testing.assert_frame_equal(batched[["user_id", "rank", "item_id"]], singles[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(batched["score"], singles["score"], rtol=1e-5, atol=1e-5)


def test_batching_in_chunks_does_not_change_results(fitted, tiny_data):
    support = support_of(tiny_data, [f"u{u}" for u in range(12)])
    small = ColdStartRecommender(fitted.config.replace(eval_batch_size=5))
    for name in ("items_", "users_", "item_encoder_", "user_encoder_", "item_labels_", "user_feats_", "log_",
                 "rating_stats_", "net_", "device_", "summary_"):
        setattr(small, name, getattr(fitted, name))
    pd.testing.assert_frame_equal(small.recommend(support, k=5), fitted.recommend(support, k=5))


def test_recommend_and_predict_leave_the_model_unchanged(fitted, tiny_data):
    before = {k: v.clone() for k, v in fitted.net_.state_dict().items()}
    support = support_of(tiny_data, ["u1", "u2"])
    fitted.recommend(support, k=5)
    fitted.predict(support, support[["user_id", "item_id"]])
    fitted.recommend_known(["u7"], k=3)
    after = fitted.net_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_adaptation_personalises(fitted, tiny_data):
    a = fitted.recommend(support_of(tiny_data, ["u1"]), k=10, exclude_seen=False)
    b = fitted.recommend(support_of(tiny_data, ["u2"]), k=10, exclude_seen=False)
    assert not np.allclose(a["score"].to_numpy(), b["score"].to_numpy())


def test_save_load_round_trips_identical_recommendations(fitted, tiny_data, tmp_path):
    support = support_of(tiny_data, ["u1", "u9"])
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "weights.safetensors"]
    loaded = ColdStartRecommender.load(path)
    pd.testing.assert_frame_equal(loaded.recommend(support, k=8), fitted.recommend(support, k=8))
    pd.testing.assert_frame_equal(loaded.recommend_known(["u3"]), fitted.recommend_known(["u3"]))
    assert loaded.config == fitted.config
    # saving again over an existing model directory replaces it
    fitted.save(path)
    assert not list(tmp_path.glob(".model*"))


def test_load_rejects_other_format_versions(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="format_version 99"):
        ColdStartRecommender.load(path)
    with pytest.raises(ModelFormatError, match="not a coldstart model directory"):
        ColdStartRecommender.load(tmp_path)


def test_load_rejects_truncated_or_mismatched_weights(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    weights = (path / "weights.safetensors").read_bytes()
    (path / "weights.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ModelFormatError, match="weights.safetensors"):
        ColdStartRecommender.load(path)
    meta = json.loads((path / "model.json").read_text())
    fitted.save(path)
    meta["config"]["hidden"] = [3]
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="do not match"):
        ColdStartRecommender.load(path)


def test_save_refuses_to_overwrite_a_foreign_directory(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFormatError, match="refusing"):
        fitted.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_fit_is_deterministic_under_a_seed(tiny_data):
    support = support_of(tiny_data, ["u1", "u4"])
    a = ColdStartRecommender(TINY.replace(epochs=1)).fit(tiny_data).recommend(support)
    b = ColdStartRecommender(TINY.replace(epochs=1)).fit(tiny_data).recommend(support)
    c = ColdStartRecommender(TINY.replace(epochs=1, seed=1)).fit(tiny_data).recommend(support)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["score"], c["score"])


def test_unknown_support_items_are_dropped_with_a_count(fitted, tiny_data, caplog):
    support = pd.concat([support_of(tiny_data, ["u1"]),
                         pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["nope", "nada"], "rating": [5.0, 4.0]})])
    with caplog.at_level(logging.WARNING):
        recs = fitted.recommend(support, k=5)
    assert "dropped 2 support row(s)" in caplog.text
    pd.testing.assert_frame_equal(recs, fitted.recommend(support_of(tiny_data, ["u1"]), k=5))


def test_user_with_only_unknown_items_gets_the_initialisation(fitted):
    recs = fitted.recommend(pd.DataFrame({"user_id": ["x"], "item_id": ["nope"], "rating": [3.0]}), k=4)
    assert len(recs) == 4 and (recs["user_id"] == "x").all()


def test_recommend_known_user_excludes_their_history(fitted, tiny_data):
    recs = fitted.recommend_known(["u0"], k=10)
    history = set(tiny_data.ratings.loc[tiny_data.ratings["user_id"] == "u0", "item_id"])
    assert len(recs) == 10 and not set(recs["item_id"]) & history
    with pytest.raises(KeyError, match="unknown user"):
        fitted.recommend_known(["nobody"])


def test_predict_returns_every_pair(fitted, tiny_data):
    support = support_of(tiny_data, ["u1"])
    pairs = pd.DataFrame({"user_id": ["u1", "u1", "zz"], "item_id": ["i3", "missing", "i3"]})
    preds = fitted.predict(support, pairs)
    assert list(preds.columns) == ["user_id", "item_id", "prediction"] and len(preds) == 3
    assert np.isfinite(preds["prediction"][0]) and np.isnan(preds["prediction"][1]) and np.isfinite(preds["prediction"][2])
    recs = fitted.recommend(support, k=50, exclude_seen=False)
    expected = recs.loc[recs["item_id"] == "i3", "score"].item()
    if fitted.config.objective == "rating":
        lo, hi = fitted.rating_stats_["min"], fitted.rating_stats_["max"]
        expected = min(max(expected, lo), hi)
    assert preds["prediction"][0] == pytest.approx(expected, rel=1e-5)


def test_rating_objective_predicts_on_the_data_scale(tiny_data):
    rec = ColdStartRecommender(TINY.replace(objective="rating", epochs=3)).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2"])
    preds = rec.predict(support, tiny_data.ratings[["user_id", "item_id"]].head(200))["prediction"]
    assert preds.between(1, 5).all() and preds.std() > 0
    assert abs(preds.mean() - tiny_data.ratings["rating"].mean()) < 1.0
