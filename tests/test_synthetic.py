"""The synthetic generator: sizes, no repeated (user, item), time order, skewed popularity, planted taste, and the
Parquet writer read back by the project's own readers."""
from __future__ import annotations

import numpy as np
import pytest

import coldstart.synthetic as synthetic
from coldstart import load_dataset, make_synthetic
from coldstart.synthetic import synthetic_log, write_synthetic


@pytest.mark.parametrize("exact", [True, False])
def test_every_user_rates_distinct_items_in_time_order(exact, monkeypatch):
    if not exact:
        monkeypatch.setattr(synthetic, "EXACT_CELLS", 0)  # the large-catalogue path on a small catalogue
    log = synthetic_log(n_users=400, n_items=300, ratings_per_user=(5, 30), seed=3)
    counts = np.bincount(log.user, minlength=400)
    assert counts.max() <= 30 and counts.min() >= (5 if exact else 1)
    assert np.median(counts) > 12  # the oversampled path loses few draws to repeats
    pairs = log.user.astype(np.int64) * 300 + log.item
    assert len(np.unique(pairs)) == len(pairs)
    assert (np.diff(log.user) >= 0).all()
    same_user = np.diff(log.user) == 0
    assert (np.diff(log.timestamp)[same_user] >= 0).all()
    assert set(np.unique(log.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_popularity_is_skewed_and_the_groups_taste_shows_in_the_ratings():
    log = synthetic_log(n_users=2000, n_items=500, seed=0)
    per_item = np.sort(np.bincount(log.item, minlength=500))[::-1]
    assert per_item[:50].sum() > 2 * per_item[-250:].sum()  # a power law's head (uniform: 10% vs 50%)
    # users of one hint (mostly one group) agree with each other on genres more than with other groups
    mean = np.zeros((4, 8))
    for h in range(4):
        rows = log.hint[log.user] == h
        mean[h] = [log.rating[rows & (log.genre[log.item] == g)].mean() for g in range(8)]
    assert np.ptp(mean, axis=0).max() > 0.5


def test_make_synthetic_is_seeded_and_write_synthetic_reads_back(tmp_path):
    a, b = make_synthetic(seed=4), make_synthetic(seed=4)
    assert a.ratings.equals(b.ratings) and not a.ratings.equals(make_synthetic(seed=5).ratings)
    folder = write_synthetic(tmp_path / "syn", n_users=300, n_items=200, seed=4)
    data = load_dataset(folder / "ratings.parquet", items=folder / "items.parquet", users=folder / "users.parquet")
    expected = a.ratings.sort_values(["user_id", "timestamp", "item_id"]).reset_index(drop=True)
    got = data.ratings[expected.columns].sort_values(["user_id", "timestamp", "item_id"]).reset_index(drop=True)
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    np.testing.assert_array_equal(got["rating"], expected["rating"])
    assert data.items["genres"].tolist() == a.items["genres"].tolist()
