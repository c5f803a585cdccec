"""Tests of coldstart.metrics against values worked out by hand."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from coldstart.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    mae,
    ndcg_at_k,
    random_within_query_ndcg,
    ranking_metrics,
    recall_at_k,
    rmse,
    within_query_ndcg,
)

LOG2_3 = math.log2(3)  # the discount of position 1 (0-based) is 1 / log2(3)


# --- binary nDCG@k ------------------------------------------------------------------------------------------


def test_ndcg_perfect_ranking_is_one():
    # relevant items a, b at positions 0, 1: DCG = 1 + 1/log2(3) = IDCG.
    assert ndcg_at_k(["a", "b", "c"], {"a", "b"}, 3) == pytest.approx(1.0)


def test_ndcg_single_hit_at_rank_two_among_three_relevant():
    # hit "b" at position 1: DCG = 1/log2(3);
    # IDCG = min(3, 3) = 3 hits = 1 + 1/log2(3) + 1/log2(4) = 1 + 1/log2(3) + 1/2.
    expected = (1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2)
    assert ndcg_at_k(["x", "b", "y"], {"b", "c", "d"}, 3) == pytest.approx(expected)


def test_ndcg_fewer_relevant_than_k():
    # hits at positions 1 and 4: DCG = 1/log2(3) + 1/log2(6); only 2 relevant, so IDCG = 1 + 1/log2(3).
    expected = (1 / LOG2_3 + 1 / math.log2(6)) / (1 + 1 / LOG2_3)
    assert ndcg_at_k([10, 11, 12, 13, 14], [11, 14], 5) == pytest.approx(expected)


def test_ndcg_k_larger_than_list():
    # the list has 2 positions; hit at position 1: DCG = 1/log2(3); IDCG = min(5, 2) = 2 hits = 1 + 1/log2(3).
    expected = (1 / LOG2_3) / (1 + 1 / LOG2_3)
    assert ndcg_at_k(["a", "b"], {"b", "z"}, 5) == pytest.approx(expected)


def test_ndcg_only_top_k_counts():
    # the relevant item sits at position 2, outside the top 2: DCG = 0.
    assert ndcg_at_k(["a", "b", "c"], {"c"}, 2) == 0.0


def test_metrics_are_nan_without_relevant_items():
    assert math.isnan(ndcg_at_k(["a", "b"], set(), 2))
    assert math.isnan(recall_at_k(["a", "b"], [], 2))
    assert math.isnan(hit_rate_at_k(["a", "b"], (), 2))


def test_invalid_k_and_repeats_are_rejected():
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError, match="repeat"):
        recall_at_k(["a", "a"], {"a"}, 2)


# --- recall, hit rate, coverage -----------------------------------------------------------------------------


def test_recall_uses_all_relevant_items_as_denominator():
    # 2 hits (a, c) in the top 3, 4 relevant items: 2 / 4 (not 2 / min(3, 4)).
    assert recall_at_k(["a", "b", "c", "d"], {"a", "c", "d", "e"}, 3) == pytest.approx(0.5)
    # top 1 holds 1 of 2 relevant items: 1 / 2.
    assert recall_at_k([7, 8], [7, 9], 1) == pytest.approx(0.5)


def test_hit_rate():
    assert hit_rate_at_k(["a", "b", "c"], {"c"}, 3) == 1.0
    assert hit_rate_at_k(["a", "b", "c"], {"c"}, 2) == 0.0


def test_catalog_coverage():
    # distinct items {1, 2, 3, 5} over a catalogue of 10: 4 / 10.
    assert catalog_coverage([[1, 2], [2, 3], [5, 1]], 10) == pytest.approx(0.4)
    # the -1 padding of topk arrays is not an item: distinct {0, 4} of 8 = 2 / 8.
    assert catalog_coverage(np.array([[0, 4], [4, -1]]), 8) == pytest.approx(0.25)
    assert catalog_coverage([], 5) == 0.0
    with pytest.raises(ValueError, match="n_items"):
        catalog_coverage([[1]], 0)


# --- rating error -------------------------------------------------------------------------------------------


def test_mae_and_rmse():
    pred, true = [3.0, 4.0, 1.0], [4.0, 4.0, 3.0]
    # errors -1, 0, -2: MAE = (1 + 0 + 2) / 3 = 1; RMSE = sqrt((1 + 0 + 4) / 3) = sqrt(5/3).
    assert mae(pred, true) == pytest.approx(1.0)
    assert rmse(pred, true) == pytest.approx(math.sqrt(5 / 3))


def test_mae_and_rmse_empty_and_mismatched():
    assert math.isnan(mae([], []))
    assert math.isnan(rmse(np.array([]), np.array([])))
    with pytest.raises(ValueError, match="same shape"):
        mae([1.0, 2.0], [1.0])


# --- MeLU's within-query nDCG -------------------------------------------------------------------------------


def test_within_query_ndcg_graded_by_hand():
    ratings = np.array([5, 3, 4])
    scores = np.array([0.1, 0.9, 0.5])
    # gains 2^r - 1 = [31, 7, 15]; by score the order is item 1, item 2, item 0 -> gains 7, 15, 31.
    # DCG@3 = 7/1 + 15/log2(3) + 31/2;  ideal order 31, 15, 7 -> IDCG@3 = 31/1 + 15/log2(3) + 7/2.
    expected3 = (7 + 15 / LOG2_3 + 31 / 2) / (31 + 15 / LOG2_3 + 7 / 2)
    assert within_query_ndcg(scores, ratings, 3) == pytest.approx(expected3)
    # DCG@1 = 7; IDCG@1 = 31.
    assert within_query_ndcg(scores, ratings, 1) == pytest.approx(7 / 31)
    # k beyond the query length uses all 3 positions.
    assert within_query_ndcg(scores, ratings, 10) == pytest.approx(expected3)


def test_within_query_ndcg_perfect_order_is_one():
    assert within_query_ndcg(np.array([3.0, 2.0, 1.0]), np.array([5, 4, 1]), 2) == pytest.approx(1.0)


def test_within_query_ndcg_ties_use_the_expected_gain():
    ratings = np.array([5, 3, 4])
    scores = np.array([0.5, 0.5, 0.1])
    # items 0 and 1 tie for positions 0-1: each of those positions gets the mean gain (31 + 7) / 2 = 19;
    # item 2 (gain 15) is last.
    # @1: 19 / 31.  @3: (19 + 19/log2(3) + 15/2) / (31 + 15/log2(3) + 7/2).
    assert within_query_ndcg(scores, ratings, 1) == pytest.approx(19 / 31)
    expected3 = (19 + 19 / LOG2_3 + 15 / 2) / (31 + 15 / LOG2_3 + 7 / 2)
    assert within_query_ndcg(scores, ratings, 3) == pytest.approx(expected3)
    # the same as averaging the two tie orders explicitly.
    orders = [np.array([3.0, 2.0, 1.0]), np.array([2.0, 3.0, 1.0])]
    explicit = np.mean([within_query_ndcg(order, ratings, 3) for order in orders])
    assert within_query_ndcg(scores, ratings, 3) == pytest.approx(explicit)


def test_within_query_ndcg_does_not_depend_on_input_order_under_ties():
    ratings = np.array([5, 3, 4, 1])
    scores = np.array([0.5, 0.5, 0.5, 0.2])
    permutation = np.array([2, 3, 0, 1])
    assert within_query_ndcg(scores, ratings, 2) == pytest.approx(
        within_query_ndcg(scores[permutation], ratings[permutation], 2)
    )


def test_within_query_ndcg_seeded_random_tiebreak():
    ratings = np.array([5, 3, 4])
    scores = np.array([0.5, 0.5, 0.1])
    # @1 one tie order puts gain 31 first (31/31 = 1), the other gain 7 (7/31).
    rng = np.random.default_rng(3)
    draws = [within_query_ndcg(scores, ratings, 1, rng) for _ in range(10000)]
    assert set(np.round(draws, 12)) == {1.0, round(7 / 31, 12)}
    # each order has probability 1/2, so the mean is 19/31;
    # its standard error is (1 - 7/31)/2 / sqrt(10000) < 0.004.
    assert np.mean(draws) == pytest.approx(19 / 31, abs=0.02)
    first = within_query_ndcg(scores, ratings, 1, np.random.default_rng(7))
    assert within_query_ndcg(scores, ratings, 1, np.random.default_rng(7)) == first


def test_within_query_ndcg_nan_cases():
    assert math.isnan(within_query_ndcg(np.array([]), np.array([]), 3))
    # every rating 0 -> every gain 2^0 - 1 = 0 -> ideal DCG 0.
    assert math.isnan(within_query_ndcg(np.array([0.3, 0.1]), np.array([0, 0]), 1))
    assert math.isnan(random_within_query_ndcg(np.array([]), 3))
    assert math.isnan(random_within_query_ndcg(np.array([0, 0]), 2))
    with pytest.raises(ValueError, match="scores"):
        within_query_ndcg(np.array([0.1]), np.array([3, 4]), 1)


def test_random_within_query_ndcg_by_hand():
    ratings = np.array([5, 3, 4])
    # mean gain (31 + 7 + 15) / 3 = 53/3.  @1: (53/3) / 31.  @2: (53/3)(1 + 1/log2(3)) / (31 + 15/log2(3)).
    assert random_within_query_ndcg(ratings, 1) == pytest.approx((53 / 3) / 31)
    expected2 = (53 / 3) * (1 + 1 / LOG2_3) / (31 + 15 / LOG2_3)
    assert random_within_query_ndcg(ratings, 2) == pytest.approx(expected2)
    # with every score tied, the exact tie handling gives the random ranker.
    assert within_query_ndcg(np.zeros(3), ratings, 2) == pytest.approx(expected2)


def test_random_within_query_ndcg_equals_brute_force_over_all_orders():
    ratings = np.array([5, 2, 4, 1])
    for k in (1, 2, 3, 4, 6):
        # scores that realise each of the 4! = 24 orders exactly once.
        values = [within_query_ndcg(-np.array(order, dtype=float), ratings, k)
                  for order in itertools.permutations(range(4))]
        assert random_within_query_ndcg(ratings, k) == pytest.approx(np.mean(values), rel=1e-12)


def test_random_within_query_ndcg_matches_monte_carlo():
    rng = np.random.default_rng(0)
    ratings = np.array([5, 3, 4, 1, 2, 5, 4, 3, 2, 1])
    for k in (1, 3):
        draws = [within_query_ndcg(rng.random(ratings.size), ratings, k) for _ in range(20000)]
        assert random_within_query_ndcg(ratings, k) == pytest.approx(np.mean(draws), abs=0.01)


# --- vectorised ranking metrics -----------------------------------------------------------------------------


def _random_case(rng: np.random.Generator, n_users: int, n_items: int, width: int):
    """Top-k rows (with -1 padding at the end of short rows) and relevant sets, some of them empty."""
    topk = np.full((n_users, width), -1, dtype=np.int64)
    relevant = []
    for user in range(n_users):
        length = rng.integers(0, width + 1)
        topk[user, :length] = rng.choice(n_items, size=length, replace=False)
        relevant.append(rng.choice(n_items, size=rng.integers(0, 8), replace=False))
    return topk, relevant


def test_ranking_metrics_equals_the_single_user_loop():
    rng = np.random.default_rng(42)
    topk, relevant = _random_case(rng, n_users=200, n_items=25, width=8)
    for k in (1, 3, 8, 12):
        batch = ranking_metrics(topk, relevant, k)
        for name, single in (("ndcg", ndcg_at_k), ("recall", recall_at_k), ("hit_rate", hit_rate_at_k)):
            pairs = zip(topk, relevant, strict=True)
            loop = [single(row[row >= 0].tolist(), rel.tolist(), k) for row, rel in pairs]
            np.testing.assert_allclose(batch[name], loop, rtol=1e-12, equal_nan=True)
    assert np.isnan(batch["ndcg"]).sum() == sum(len(rel) == 0 for rel in relevant)


def test_ranking_metrics_accepts_csr_layouts():
    rng = np.random.default_rng(1)
    topk, relevant = _random_case(rng, n_users=30, n_items=12, width=5)
    indptr = np.concatenate([[0], np.cumsum([len(rel) for rel in relevant])])
    indices = np.concatenate(relevant)
    from_list = ranking_metrics(topk, relevant, 5)
    from_tuple = ranking_metrics(topk, (indptr, indices), 5)
    scipy_sparse = pytest.importorskip("scipy.sparse")
    matrix = scipy_sparse.csr_matrix((np.ones(indices.size), indices, indptr), shape=(30, 12))
    from_matrix = ranking_metrics(topk, matrix, 5)
    for name in ("ndcg", "recall", "hit_rate"):
        np.testing.assert_array_equal(from_tuple[name], from_list[name])
        np.testing.assert_array_equal(from_matrix[name], from_list[name])


def test_ranking_metrics_by_hand():
    topk = np.array([[4, 2, 7], [1, -1, -1], [0, 3, 5]])
    relevant = [np.array([2, 9, 11]), np.array([1]), np.array([], dtype=np.int64)]
    result = ranking_metrics(topk, relevant, 3)
    # user 0: hit at position 1 among 3 relevant -> (1/log2(3)) / (1 + 1/log2(3) + 1/2); recall 1/3; hit 1.
    # user 1: hit at position 0, one relevant -> nDCG 1, recall 1, hit 1.   user 2: no relevant -> NaN.
    np.testing.assert_allclose(result["ndcg"], [(1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2), 1.0, np.nan])
    np.testing.assert_allclose(result["recall"], [1 / 3, 1.0, np.nan])
    np.testing.assert_allclose(result["hit_rate"], [1.0, 1.0, np.nan])


def test_ranking_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="repeat"):
        ranking_metrics(np.array([[1, 1]]), [np.array([1])], 2)
    with pytest.raises(ValueError, match="users"):
        ranking_metrics(np.array([[1, 2]]), [np.array([1]), np.array([2])], 2)
    with pytest.raises(ValueError, match="shape"):
        ranking_metrics(np.array([1, 2]), [np.array([1])], 2)
