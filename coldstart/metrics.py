"""Pure metric functions shared by every system in the evaluation (DESIGN.md §6).

Three families, all free of state and of logging:

* top-k ranking over the catalogue with binary relevance: `ndcg_at_k`, `recall_at_k`, `hit_rate_at_k` for one
  user (lists of ids), `ranking_metrics` for many users at once (index arrays), and `catalog_coverage`;
* rating error on query items: `mae`, `rmse`;
* MeLU's graded within-query nDCG (`within_query_ndcg`) and its exact expectation under a random ranker
  (`random_within_query_ndcg`), the baseline to print beside it.

Every nDCG here uses the discount 1 / log2(pos + 2) for the 0-based position `pos`. A user without relevant
items (or a query whose ideal DCG is 0) has no defined metric: the functions return NaN; the caller skips and
counts them.

Shapes in comments: U users, K list length (k).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "catalog_coverage",
    "hit_rate_at_k",
    "mae",
    "ndcg_at_k",
    "random_within_query_ndcg",
    "ranking_metrics",
    "recall_at_k",
    "rmse",
    "within_query_ndcg",
]

PAD = -1
"""The padding value of `topk` rows shorter than k (in `ranking_metrics` and `catalog_coverage`)."""


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be a positive integer, got k={k}")


def _discounts(k: int) -> np.ndarray:
    """The positional discounts 1 / log2(pos + 2) for pos = 0 .. k-1."""
    return 1.0 / np.log2(np.arange(k) + 2.0)  # (K,)


def _top_hits(ranked: Sequence, relevant: Collection, k: int) -> np.ndarray:
    """Booleans: is each of the first k ranked items relevant? Validates k and the uniqueness of the top k."""
    _check_k(k)
    top = list(ranked[:k])
    if len(set(top)) != len(top):
        raise ValueError(f"ranked must not repeat an item within its top {k}, got {top}")
    wanted = set(relevant)
    return np.array([item in wanted for item in top], dtype=bool)


def ndcg_at_k(ranked: Sequence, relevant: Collection, k: int) -> float:
    """Binary-relevance nDCG@k of one ranked list.

    DCG sums 1 / log2(pos + 2) over the relevant items among the first k positions; the ideal DCG places
    min(k, len(relevant)) hits at the top. A list shorter than k simply has fewer positions.

    Args:
        ranked: item ids, best first, without repeats.
        relevant: the ids of the relevant items.
        k: the cut-off, at least 1.

    Returns:
        The nDCG in [0, 1], or NaN when `relevant` is empty.
    """
    hits = _top_hits(ranked, relevant, k)
    n_relevant = len(set(relevant))
    if n_relevant == 0:
        return float("nan")
    discounts = _discounts(k)
    dcg = float(discounts[: len(hits)][hits].sum())
    ideal = float(discounts[: min(k, n_relevant)].sum())
    return dcg / ideal


def recall_at_k(ranked: Sequence, relevant: Collection, k: int) -> float:
    """Recall@k of one ranked list: hits in the top k divided by len(relevant).

    This is the standard definition, not the truncated hits / min(k, len(relevant)); a user with more than k
    relevant items therefore cannot reach 1.

    Args:
        ranked: item ids, best first, without repeats.
        relevant: the ids of the relevant items.
        k: the cut-off, at least 1.

    Returns:
        The recall in [0, 1], or NaN when `relevant` is empty.
    """
    hits = _top_hits(ranked, relevant, k)
    n_relevant = len(set(relevant))
    if n_relevant == 0:
        return float("nan")
    return float(hits.sum()) / n_relevant


def hit_rate_at_k(ranked: Sequence, relevant: Collection, k: int) -> float:
    """HitRate@k of one ranked list: 1.0 if any of the first k items is relevant, else 0.0.

    Args:
        ranked: item ids, best first, without repeats.
        relevant: the ids of the relevant items.
        k: the cut-off, at least 1.

    Returns:
        1.0 or 0.0, or NaN when `relevant` is empty.
    """
    hits = _top_hits(ranked, relevant, k)
    if len(set(relevant)) == 0:
        return float("nan")
    return float(hits.any())


def catalog_coverage(recommendation_lists: Iterable[Sequence], n_items: int) -> float:
    """Catalogue coverage: the number of distinct items across all recommendation lists divided by `n_items`.

    Entries equal to -1 (the padding of `topk` index arrays) are ignored, so the rows of a (U, K) array can be
    passed directly.

    Args:
        recommendation_lists: one top-k list of item ids (or indices) per user.
        n_items: the catalogue size, at least 1.

    Returns:
        The coverage in [0, 1] when the lists only hold catalogue items.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got n_items={n_items}")
    distinct = {item for items in recommendation_lists for item in items}
    distinct.discard(PAD)
    return len(distinct) / n_items


def _paired_errors(pred: Any, true: Any) -> np.ndarray:
    """The errors pred - true as a flat float array, after checking that the shapes match."""
    pred_arr = np.asarray(pred, dtype=np.float64)
    true_arr = np.asarray(true, dtype=np.float64)
    if pred_arr.shape != true_arr.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred_arr.shape} and {true_arr.shape}")
    return (pred_arr - true_arr).ravel()


def mae(pred: Any, true: Any) -> float:
    """Mean absolute error between predicted and true ratings.

    Args:
        pred: predicted ratings (array-like).
        true: true ratings, the same shape as `pred`.

    Returns:
        The MAE, or NaN for empty inputs.
    """
    errors = _paired_errors(pred, true)
    return float(np.abs(errors).mean()) if errors.size else float("nan")


def rmse(pred: Any, true: Any) -> float:
    """Root mean squared error between predicted and true ratings.

    Args:
        pred: predicted ratings (array-like).
        true: true ratings, the same shape as `pred`.

    Returns:
        The RMSE, or NaN for empty inputs.
    """
    errors = _paired_errors(pred, true)
    return float(np.sqrt(np.square(errors).mean())) if errors.size else float("nan")


def _query_gains(ratings: np.ndarray) -> np.ndarray:
    """MeLU's graded gains 2^r - 1 of a 1-D array of query ratings."""
    ratings = np.asarray(ratings, dtype=np.float64)
    if ratings.ndim != 1 or np.isnan(ratings).any():
        raise ValueError(f"ratings must be a 1-D array without NaN, got shape {ratings.shape}")
    return np.exp2(ratings) - 1.0


def _ideal_dcg(gains: np.ndarray, k: int) -> float:
    """DCG@k of the gains sorted best first."""
    best = np.sort(gains)[::-1][:k]
    return float(best @ _discounts(len(best)))


def _expected_gains_by_rank(scores: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Gains in descending-score order, each tied group replaced by its mean gain (its expectation)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_gains = scores[order], gains[order]
    starts = np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]])
    group = np.cumsum(starts) - 1
    group_mean = np.bincount(group, weights=sorted_gains) / np.bincount(group)
    return group_mean[group]


def _random_tiebreak_gains_by_rank(
    scores: np.ndarray, gains: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Gains in descending-score order, ties broken by one uniformly random permutation drawn from `rng`."""
    shuffle = rng.permutation(len(scores))
    order = shuffle[np.argsort(-scores[shuffle], kind="stable")]
    return gains[order]


def within_query_ndcg(
    scores: np.ndarray, ratings: np.ndarray, k: int, rng: np.random.Generator | None = None
) -> float:
    """MeLU's within-query nDCG@k of one user: rank the query items by score, graded gain 2^r - 1.

    The query items are ranked by predicted score, highest first; DCG@k sums gain / log2(pos + 2) over the
    first k positions and is normalised by the DCG@k of the same items in their ideal (rating) order.

    Ties in `scores` are handled fairly and without hidden randomness. By default (`rng=None`) the result is
    the exact expected nDCG over uniformly random orders within every tied group: each position a tied group
    occupies receives the mean gain of that group (linearity of expectation), so the value is deterministic.
    With an `rng`, ties are instead broken by one random permutation drawn from it (reproducible when seeded).

    Args:
        scores: predicted scores of the user's query items, shape (n,), without NaN.
        ratings: the true ratings of the same items, shape (n,), without NaN.
        k: the cut-off, at least 1.
        rng: optional generator for a random tie-break instead of the exact expectation.

    Returns:
        The nDCG, or NaN for an empty query or an ideal DCG@k of 0 (every rating 0).
    """
    _check_k(k)
    gains = _query_gains(ratings)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != gains.shape or np.isnan(scores).any():
        raise ValueError(f"scores must have the shape {gains.shape} of ratings, no NaN; got {scores.shape}")
    ideal = _ideal_dcg(gains, k)
    if gains.size == 0 or ideal == 0.0:
        return float("nan")
    if rng is None:
        ranked_gains = _expected_gains_by_rank(scores, gains)
    else:
        ranked_gains = _random_tiebreak_gains_by_rank(scores, gains, rng)
    top = ranked_gains[:k]
    return float(top @ _discounts(len(top))) / ideal


def random_within_query_ndcg(ratings: np.ndarray, k: int) -> float:
    """The exact expected within-query nDCG@k of a uniformly random ranker: the baseline beside MeLU's metric.

    Under a random order every position holds each item with equal probability, so its expected gain is the
    mean gain; E[DCG@k] = mean(2^r - 1) * sum of the discounts of the first min(k, n) positions. Dividing by
    the (fixed) ideal DCG@k gives the expected nDCG. It equals `within_query_ndcg` with all scores tied.

    Args:
        ratings: the true ratings of the user's query items, shape (n,), without NaN.
        k: the cut-off, at least 1.

    Returns:
        The expected nDCG, or NaN for an empty query or an ideal DCG@k of 0.
    """
    _check_k(k)
    gains = _query_gains(ratings)
    ideal = _ideal_dcg(gains, k)
    if gains.size == 0 or ideal == 0.0:
        return float("nan")
    expected_dcg = gains.mean() * _discounts(min(k, gains.size)).sum()
    return float(expected_dcg) / ideal


def _relevant_as_csr(relevant: Any, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, index) pairs of relevant items from a list of arrays, (indptr, indices) or a CSR matrix."""
    if hasattr(relevant, "indptr"):
        relevant = (relevant.indptr, relevant.indices)
    if isinstance(relevant, tuple):
        indptr, indices = (np.asarray(part, dtype=np.int64) for part in relevant)
    else:
        arrays = [np.asarray(items, dtype=np.int64).ravel() for items in relevant]
        indptr = np.concatenate([[0], np.cumsum([len(items) for items in arrays])]).astype(np.int64)
        indices = np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, dtype=np.int64)
    if len(indptr) != n_users + 1:
        raise ValueError(f"relevant must describe {n_users} users (one per topk row), got {len(indptr) - 1}")
    if indices.size and indices.min() < 0:
        raise ValueError("relevant item indices must be non-negative")
    rows = np.repeat(np.arange(n_users), np.diff(indptr))
    return rows, indices


def _prepare_topk(topk: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of `topk` as int64, after checking its shape, padding and that no row repeats."""
    topk = np.asarray(topk, dtype=np.int64)
    if topk.ndim != 2:
        raise ValueError(f"topk must have shape (U, K), got {topk.shape}")
    topk = topk[:, :k]
    if (topk < PAD).any():
        raise ValueError(f"topk must hold item indices or the padding {PAD}, got {topk.min()}")
    ordered = np.sort(topk, axis=1)
    if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != PAD)).any():
        raise ValueError("topk must not repeat an item within a row")
    return topk


def ranking_metrics(topk: np.ndarray, relevant: Any, k: int) -> dict[str, np.ndarray]:
    """nDCG@k, Recall@k and HitRate@k of many users at once, identical to the single-user functions.

    Args:
        topk: item indices, best first, shape (U, K'); rows shorter than k are padded with -1 (a padded
            position is a miss). Only the first k columns are used.
        relevant: the relevant item indices of each user as a list of U integer arrays, a tuple
            (indptr, indices) in CSR layout, or a scipy CSR matrix with U rows.
        k: the cut-off, at least 1.

    Returns:
        Per-user float arrays of shape (U,) under the keys "ndcg", "recall" and "hit_rate"; NaN for users
        without relevant items.
    """
    _check_k(k)
    topk = _prepare_topk(topk, k)  # (U, K)
    n_users = topk.shape[0]
    rows, indices = _relevant_as_csr(relevant, n_users)
    width = int(max(topk.max(initial=0), indices.max(initial=0))) + 1
    relevant_codes = np.unique(rows * width + indices)  # distinct (user, item) pairs
    n_relevant = np.bincount(relevant_codes // width, minlength=n_users)  # (U,)
    top_codes = np.arange(n_users)[:, None] * width + topk  # (U, K)
    hits = np.isin(top_codes, relevant_codes) & (topk != PAD)  # (U, K)
    discounts = _discounts(k)  # (K,)
    dcg = hits.astype(np.float64) @ discounts[: topk.shape[1]]  # (U,)
    ideal = np.concatenate([[np.nan], np.cumsum(discounts)])[np.minimum(n_relevant, k)]  # (U,)
    n_hits = hits.sum(axis=1)  # (U,)
    has_relevant = n_relevant > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "ndcg": dcg / ideal,
            "recall": np.where(has_relevant, n_hits / n_relevant, np.nan),
            "hit_rate": np.where(has_relevant, (n_hits > 0).astype(np.float64), np.nan),
        }
