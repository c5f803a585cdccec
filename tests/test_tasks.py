"""Task sampling: support and query are disjoint parts of each user's log, padded with masks."""
from __future__ import annotations

import numpy as np

from coldstart.tasks import UserLog, first_n_tasks, interactions, sample_tasks, support_batch


def make_log(seed=0, n_users=20):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 12, size=n_users)
    users = np.repeat(np.arange(n_users), lengths)
    items = np.concatenate([rng.choice(100, n, replace=False) for n in lengths])
    times = rng.random(len(users))
    perm = rng.permutation(len(users))
    return UserLog.from_arrays(users[perm], items[perm], items[perm].astype(np.float32), n_users, times[perm]), \
        users, items, times


def user_items(log, u):
    return log.items[log.indptr[u]:log.indptr[u + 1]]


def test_user_log_groups_users_in_time_order():
    log, users, items, times = make_log()
    for u in range(log.n_users):
        mine = users == u
        np.testing.assert_array_equal(user_items(log, u), items[mine][np.argsort(times[mine])])


def test_sampled_tasks_are_disjoint_subsets_of_each_log():
    log, *_ = make_log()
    batch = sample_tasks(log, np.arange(log.n_users), np.random.default_rng(1), 1, 5, 3)
    for u in range(log.n_users):
        s = batch.support_items[u][batch.support_mask[u]].numpy()
        q = batch.query_items[u][batch.query_mask[u]].numpy()
        n = len(user_items(log, u))
        assert 1 <= len(s) <= min(5, n - 1) and 1 <= len(q) <= 3
        assert not set(s) & set(q) and set(s) | set(q) <= set(user_items(log, u))
        np.testing.assert_array_equal(batch.support_ratings[u][batch.support_mask[u]].numpy(), s)  # rating == item


def test_sampling_is_reproducible_and_random():
    log, *_ = make_log()
    a = sample_tasks(log, np.arange(20), np.random.default_rng(5), 1, 5, 3)
    b = sample_tasks(log, np.arange(20), np.random.default_rng(5), 1, 5, 3)
    c = sample_tasks(log, np.arange(20), np.random.default_rng(6), 1, 5, 3)
    assert (a.support_items == b.support_items).all() and (a.query_items == b.query_items).all()
    assert not (a.support_mask.shape == c.support_mask.shape and (a.support_items == c.support_items).all())


def test_first_n_tasks_split_in_time():
    log, *_ = make_log()
    batch = first_n_tasks(log, np.arange(20), 2)
    for u in range(20):
        items = user_items(log, u)
        np.testing.assert_array_equal(batch.support_items[u][batch.support_mask[u]].numpy(), items[:2])
        np.testing.assert_array_equal(batch.query_items[u][batch.query_mask[u]].numpy(), items[2:])


def test_support_batch_pads_users_in_row_order():
    batch = support_batch(np.array([7, 8, 9, 4]), np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 1]), 3)
    assert batch.support_items.tolist() == [[8, 0, 0], [7, 9, 4], [0, 0, 0]]
    assert batch.support_mask.sum(1).tolist() == [1, 3, 0]
    assert batch.support_ratings[1].tolist() == [1.0, 3.0, 4.0]


def test_interactions_count_a_repeated_pair_once_and_keep_only_the_rows_asked_for():
    log = UserLog.from_arrays(np.array([0, 0, 0, 1]), np.array([2, 2, 1, 0]), np.full(4, 5.0, np.float32), 2)
    np.testing.assert_array_equal(interactions(log, 3).toarray(), [[0, 1, 1], [1, 0, 0]])
    rows = np.array([True, False, False, True])  # the log's rows: user 0's (2, 2, 1) then user 1's (0)
    np.testing.assert_array_equal(interactions(log, 3, rows).toarray(), [[0, 0, 1], [1, 0, 0]])
