"""The priors the gate weighs (coldstart/priors.py): each channel against a plain computation of what it means."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from coldstart import ColdStartRecommender
from coldstart.ease import ease_rows, ease_weights, fold_in
from coldstart.features import FeatureEncoder
from coldstart.priors import (LAYOUT, SNAPSHOTS, Priors, centre_scale, choose_l2, popularity_snapshots,
                              snapshot_ends)
from coldstart.tasks import ItemSet, UserLog
from coldstart.train import sample
from tests.conftest import TINY, support_of


def random_interactions(n_users: int, n_items: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("shape", [(12, 30), (40, 15)], ids=["fewer users (Woodbury)", "more users"])
def test_ease_rows_are_eases_weights_and_keep_the_largest(shape):
    x = random_interactions(*shape)
    dense = ease_weights(x, 3.0)  # (I, I)
    idx, val = ease_rows(x, 3.0, keep=shape[1], block=7)
    rebuilt = np.zeros_like(dense)
    np.put_along_axis(rebuilt, idx, val, 1)
    np.testing.assert_allclose(rebuilt, dense, atol=1e-5)
    idx, val = ease_rows(x, 3.0, keep=4)
    kth = np.sort(np.abs(dense), axis=1)[:, -4]  # each row's 4th largest size
    assert (np.abs(val) >= kth[:, None] - 1e-6).all() and idx.shape == (shape[1], 4)


@pytest.mark.parametrize("shape", [(12, 30), (40, 15)], ids=["fewer users (Woodbury)", "more users"])
def test_validation_fold_in_is_the_support_times_b(shape):
    x, support = random_interactions(*shape), random_interactions(5, shape[1], seed=1)
    np.testing.assert_allclose(fold_in(x, support, 3.0), support.toarray() @ ease_weights(x, 3.0), atol=1e-4)


def test_popularity_is_read_as_of_each_snapshot_and_over_the_recent_window():
    times = np.arange(64, dtype=np.float64)  # one row a second, item = row // 16: items 0, 1, 2, 3 in turn
    items = np.arange(64) // 16
    liked = np.ones(64, bool)
    liked[1] = False  # a row not liked counts nowhere
    pop = popularity_snapshots(items, times, liked, 5, shares=(0.25,))  # (T, 2, I): recent, alltime
    ends = snapshot_ends(times)
    assert ends[-1] == np.inf and pop.shape == (SNAPSHOTS, 2, 5)
    for t in range(SNAPSHOTS):
        before = times < ends[t]
        recent = before & (times >= times[before].max() - 15) if before.any() else before
        for c, rows in enumerate((recent & liked, before & liked)):
            np.testing.assert_allclose(pop[t, c], np.log1p(np.bincount(items[rows], minlength=5)), atol=1e-6)
    assert pop[-1, 0, 3] == pop[-1, 1, 3] and pop[-1, 0, 0] == 0  # the end's window holds only item 3


def test_a_task_reads_the_latest_snapshot_that_ends_before_its_support_does(tiny_data):
    rec = ColdStartRecommender(TINY.replace(epochs=1)).fit(tiny_data)
    priors = rec.net_.priors
    ends = priors.ends
    times = torch.tensor([ends[0].item() - 1.0, ends[3].item(), ends[3].item() + 0.5, float("inf")],
                         dtype=torch.float64)
    assert priors.slots(times, 4).tolist() == [0, 3, 3, SNAPSHOTS - 1]
    assert priors.slots(None, 2).tolist() == [SNAPSHOTS - 1] * 2
    log = rec.log_
    users = np.arange(log.n_users)[log.lengths() >= 2]
    batch = sample(log, users, np.random.default_rng(0), rec.state_.config)
    first = log.times[log.indptr[users]]
    last = log.times[log.indptr[users + 1] - 1]
    end = batch.support_end.numpy()
    assert ((end >= first) & (end <= last)).all()  # each task's time is within its own history
    assert not sample(log, users, np.random.default_rng(0), rec.state_.config.replace(time_aware=False)).support_end


def test_peers_are_the_liked_shares_of_users_with_the_same_features():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "gender": ["F", "F", "M"] * 1})
    users = pd.concat([users, users.assign(user_id=users["user_id"] + "2")])  # each value seen twice
    encoder = FeatureEncoder.fit(users, "user_id")
    ids = users["user_id"].tolist()
    log = UserLog.from_arrays(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), np.full(4, 5.0), len(ids))
    from coldstart.priors import fit_priors
    priors = Priors(3, encoder)
    feats = encoder.transform(users, ids)
    fit_priors(priors, log, None, np.ones(4, bool), feats, ("peers",), 0.0)
    new = encoder.transform(pd.DataFrame({"user_id": ["x", "y", "z"], "gender": ["F", "M", "?"]}), ["x", "y", "z"])
    np.testing.assert_allclose(priors.peers(new).numpy(), [[2 / 3, 1 / 3, 0], [0, 0, 1], [0, 0, 0]], atol=1e-6)
    empty = ItemSet(torch.zeros((3, 1), dtype=torch.int64), torch.zeros((3, 1)), torch.zeros((3, 1), dtype=bool))
    channels = priors.channels(new, empty, None)  # (B, C, I)
    others = [c for c in range(len(LAYOUT)) if LAYOUT[c] != "peers"]
    assert channels[:, others].abs().sum() == 0  # switched off
    assert channels[2].abs().sum() == 0  # an unknown value: no peers, nothing (its weight has nothing to weigh)


def test_centre_scale_centres_scales_into_minus_1_1_and_leaves_a_silent_prior_at_0():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0], [2.0, 2.0, 2.0, 2.0]])
    out = centre_scale(x)
    torch.testing.assert_close(out[0], torch.tensor([-2.0, -1.0, 0.0, 3.0]) / 3.0)
    assert torch.equal(out[1], torch.zeros(4))


def test_choose_l2_picks_the_best_validation_ndcg(tiny_data):
    rec = ColdStartRecommender(TINY.replace(epochs=1)).fit(tiny_data)
    log = rec.log_
    liked = log.ratings >= 4
    first = log.times[log.indptr[:-1]]
    best, scores = choose_l2(log, first, liked, len(rec.items_), grid=(1.0, 100.0, 1e4))
    assert set(scores) == {1.0, 100.0, 1e4} and scores[best] == max(scores.values())
    assert rec.state_.config.prior_l2 in (1e2, 1e3, 1e4, 1e5, 1e6)  # fit settles it from its own grid


def test_a_switched_off_channel_never_changes_a_score_and_a_used_one_does(tiny_data):
    rec = ColdStartRecommender(TINY.replace(epochs=1, priors="recent,ease")).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u9"])
    before = rec.recommend(support, k=8)
    with torch.no_grad():
        rec.net_.priors.peer_tokens_0.normal_()  # peers are off: their tables are read by nothing
        rec.net_.priors.pop[:, -1].normal_()  # and so is alltime
    pd.testing.assert_frame_equal(rec.recommend(support, k=8), before)
    with torch.no_grad():
        rec.net_.priors.ease_weights.mul_(-1.0)
    assert not rec.recommend(support, k=8)["score"].equals(before["score"])


def test_the_gates_weights_are_learned_from_the_start_every_user_shares(tiny_data):
    rec = ColdStartRecommender(TINY.replace(epochs=2)).fit(tiny_data)
    gate = rec.net_.gate
    assert gate[2].weight.abs().sum() > 0  # started at 0: meta-training moved it
    assert not torch.allclose(gate[2].bias, torch.full_like(gate[2].bias, 0.25))


def test_numeric_features_count_as_peers_by_quantile_bin():
    """A many-valued number (age) is cut into quantile bins of the training users: a new user shares the liked items
    of the users in its own bin, and a user without the number gets none."""
    ages = np.arange(40, dtype=float) + 10.0  # 40 distinct ages: a numeric field
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(40)], "age": ages})
    encoder = FeatureEncoder.fit(users, "user_id")
    assert [f.kind for f in encoder.fields] == ["numeric"]
    old = (ages >= 42).astype(np.int64)  # the oldest users like item 1, the rest item 0
    log = UserLog.from_arrays(np.arange(40), old, np.full(40, 5.0), 40)
    from coldstart.priors import fit_priors
    priors = Priors(2, encoder)
    fit_priors(priors, log, None, np.ones(40, bool), encoder.transform(users, users["user_id"].tolist()), ("peers",),
               0.0)
    new = pd.DataFrame({"user_id": ["young", "old", "unknown"], "age": [11.0, 48.0, np.nan]})
    peers = priors.peers(encoder.transform(new, new["user_id"].tolist())).numpy()  # (3, 2)
    np.testing.assert_allclose(peers, [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], atol=1e-6)
