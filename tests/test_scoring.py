"""scoring.top_k against torch.topk over the whole masked score matrix, for any chunk, k and exclusions; the ranked
frame; and the whole ranked catalogue for many new users at once through the API and the CLI."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from coldstart import IdMap, recommender
from coldstart.scoring import chunk_mask, ranked_frame, top_k
from tests.conftest import support_of


# --- the oracle ------------------------------------------------------------------------------------------------
def padded(exclude: list[list[int]], extra: int = 0) -> torch.Tensor:
    """(B, E) each user's excluded items, -1 in padded slots (plus `extra` all-padding columns)."""
    width = max((len(e) for e in exclude), default=0) + extra
    return torch.tensor([e + [-1] * (width - len(e)) for e in exclude], dtype=torch.long).reshape(len(exclude), width)


def dense_mask(exclude: torch.Tensor, n_items: int) -> torch.Tensor:
    """(B, I) True at each user's excluded items, built one cell at a time."""
    mask = torch.zeros((exclude.shape[0], n_items), dtype=torch.bool)
    for user, items in enumerate(exclude.tolist()):
        for item in items:
            if item >= 0:
                mask[user, item] = True
    return mask


def chunked(scores: torch.Tensor, calls: list[tuple[int, int]] | None = None):
    """A score_fn slicing the (B, I) matrix `scores`, recording each (start, stop) it is asked for."""
    def score_fn(start: int, stop: int) -> torch.Tensor:
        if calls is not None:
            calls.append((start, stop))
        return scores[:, start:stop]
    return score_fn


def check_against_topk(scores: torch.Tensor, exclude: torch.Tensor, k: int, chunk: int) -> None:
    """top_k in chunks == torch.topk of the whole masked matrix (distinct scores: the answer is unique)."""
    n_users, n_items = scores.shape
    calls = []
    top_s, top_i = top_k(chunked(scores, calls), n_users, n_items, k, exclude, chunk)  # (B, k)
    width = min(k, n_items)
    expect_s, expect_i = torch.topk(scores.masked_fill(dense_mask(exclude, n_items), -torch.inf), width, dim=1)
    assert top_s.shape == top_i.shape == (n_users, width)
    finite = torch.isfinite(expect_s)  # (B, k): the user's non-excluded items, best first, then -inf slots
    assert torch.equal(torch.isfinite(top_s), finite)
    assert torch.equal(top_s[finite], expect_s[finite]) and torch.equal(top_i[finite], expect_i[finite])
    assert calls == [(a, min(a + chunk, n_items)) for a in range(0, n_items, chunk)]


def distinct_scores(rng: np.random.Generator, n_users: int, n_items: int) -> torch.Tensor:
    """(B, I) scores all different from each other, so that the top-k (as a set and in order) is unique."""
    return torch.from_numpy(rng.permutation(n_users * n_items).reshape(n_users, n_items) / 7.0 - 3.0)


# --- top_k -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 3, 7])
@pytest.mark.parametrize("k", [1, 2, 5, 8, 19, 20, 25])
def test_top_k_in_tiny_chunks_is_topk_of_the_masked_matrix(chunk, k):
    n_items = 20
    scores = distinct_scores(np.random.default_rng(chunk * 100 + k), 6, n_items)
    boundaries = [b for b in range(0, n_items, chunk)] + [min(b + chunk, n_items) - 1 for b in range(0, n_items, chunk)]
    exclude = padded([[], [0], boundaries[:5], boundaries, list(range(n_items)), [n_items - 1, 3, 3, chunk]], extra=2)
    check_against_topk(scores, exclude, k, chunk)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_top_k_is_topk_of_the_masked_matrix_for_any_shape(data):
    n_users, n_items = data.draw(st.integers(0, 6)), data.draw(st.integers(1, 40))
    chunk, k = data.draw(st.integers(1, n_items + 3)), data.draw(st.integers(1, n_items + 5))
    exclude = padded([data.draw(st.lists(st.integers(0, n_items - 1), max_size=n_items + 2)) for _ in range(n_users)],
                     extra=data.draw(st.integers(0, 2)))
    scores = distinct_scores(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), n_users, n_items)
    check_against_topk(scores, exclude, k, chunk)


def test_top_k_breaks_ties_to_the_lower_item_whatever_the_chunk():
    scores = torch.from_numpy(np.random.default_rng(0).integers(0, 4, (5, 30)).astype(np.float64))  # many ties
    exclude = padded([[0, 1], [], [29], [5, 6, 7], [10]])
    masked = scores.masked_fill(dense_mask(exclude, 30), -torch.inf).numpy()
    order = np.argsort(-masked, axis=1, kind="stable")[:, :12]  # (B, 12): ties to the lower index
    for chunk in (1, 4, 11, 30, 64):
        top_s, top_i = top_k(chunked(scores), 5, 30, 12, exclude, chunk)
        np.testing.assert_array_equal(top_i.numpy(), order)
        np.testing.assert_array_equal(top_s.numpy(), np.take_along_axis(masked, order, axis=1))


def test_top_k_ranks_nan_scores_last_and_without_exclusions():
    scores = torch.tensor([[0.5, float("nan"), 2.0, 1.0]])
    top_s, top_i = top_k(chunked(scores), 1, 4, 4, chunk=3)
    assert top_i[0, :3].tolist() == [2, 3, 0] and top_s[0, 3] == -torch.inf


def test_top_k_of_an_empty_catalogue_or_no_user():
    assert top_k(chunked(torch.zeros((3, 0))), 3, 0, 5)[1].shape == (3, 0)
    top_s, top_i = top_k(chunked(torch.zeros((0, 9))), 0, 9, 5, torch.zeros((0, 0), dtype=torch.long), chunk=2)
    assert top_s.shape == top_i.shape == (0, 5)
    for k, chunk in [(2, 0), (0, 2)]:
        with pytest.raises(ValueError, match="k and chunk must be positive"):
            top_k(chunked(torch.zeros((1, 3))), 1, 3, k, chunk=chunk)


def test_chunk_mask_marks_exactly_the_excluded_items_of_the_chunk():
    exclude = padded([[0, 4, 9], [], [5, 5, -1, 8]], extra=1)
    full = dense_mask(exclude, 10)
    for start, stop in [(0, 10), (0, 4), (4, 5), (5, 9), (9, 10)]:
        assert torch.equal(chunk_mask(exclude, start, stop), full[:, start:stop])


# --- ranked_frame ----------------------------------------------------------------------------------------------
def test_ranked_frame_drops_non_finite_slots_and_keeps_user_order():
    items = IdMap(["a", "b", "c", "d"])
    top_i = np.array([[2, 0, 1], [3, 1, 0], [0, 1, 2]])
    top_s = np.array([[3.0, 2.0, 1.0], [5.0, -np.inf, -np.inf], [-np.inf] * 3], dtype=np.float32)
    frame = ranked_frame(["u2", "u1", "u3"], items, top_i, top_s)
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score"]
    assert frame.values.tolist() == [["u2", 1, "c", 3.0], ["u2", 2, "a", 2.0], ["u2", 3, "b", 1.0], ["u1", 1, "d", 5.0]]
    assert frame["rank"].dtype == np.int64 and frame["score"].dtype == np.float64
    empty = ranked_frame([], items, np.zeros((0, 3), np.int64), np.zeros((0, 3)))
    assert empty.empty and list(empty.columns) == ["user_id", "rank", "item_id", "score"]


# --- the whole catalogue for many new users at once ------------------------------------------------------------
def check_whole_catalogue(recs: pd.DataFrame, support: pd.DataFrame, catalogue: list[str], users: list[str]) -> None:
    """Every user gets every item but its support items exactly once, ranked 1, 2, ... by descending score."""
    assert recs["user_id"].unique().tolist() == users
    for user, group in recs.groupby("user_id", sort=False):
        seen = set(support.loc[support["user_id"] == user, "item_id"])
        assert sorted(group["item_id"]) == sorted(set(catalogue) - seen)
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing and np.isfinite(group["score"]).all()


def test_recommend_ranks_the_whole_catalogue_for_many_users_in_small_chunks(fitted, tiny_data, monkeypatch):
    users = tiny_data.ratings["user_id"].unique().tolist()
    support = support_of(tiny_data, users, n=4)
    catalogue = fitted.items_.to_list()
    whole = fitted.recommend(support, k=len(catalogue), user_ids=["ghost"])  # one chunk: the old code's happy case
    monkeypatch.setattr(recommender, "ITEM_CHUNK_CELLS", 3 * (len(users) + 1))  # chunks of 3 items, k = 17 chunks
    recs = fitted.recommend(support, k=len(catalogue) + 5, user_ids=["ghost"])
    check_whole_catalogue(recs, support, catalogue, users + ["ghost"])
    merged = recs.merge(whole, on=["user_id", "item_id"], suffixes=("", "_whole"))
    assert len(merged) == len(recs) == len(whole)
    np.testing.assert_allclose(merged["score"], merged["score_whole"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fitted", ["implicit"], indirect=True)
def test_cli_recommends_the_whole_catalogue_for_a_file_of_new_users(fitted, tiny_data, tmp_path, monkeypatch):
    from coldstart.cli import app
    users = tiny_data.ratings["user_id"].unique().tolist()
    support = support_of(tiny_data, users, n=3)
    support.to_csv(tmp_path / "support.csv", index=False)
    fitted.save(tmp_path / "model")
    monkeypatch.setattr(recommender, "ITEM_CHUNK_CELLS", 2 * len(users))  # chunks of 2 items
    n_items = len(fitted.items_)
    result = CliRunner().invoke(app, ["recommend", "--model", str(tmp_path / "model"), "--ratings",
                                      str(tmp_path / "support.csv"), "--k", str(n_items), "--quiet"])
    assert result.exit_code == 0, result.output
    recs = pd.read_csv(io.StringIO(result.stdout), dtype={"user_id": str, "item_id": str})
    check_whole_catalogue(recs, support, fitted.items_.to_list(), users)
    assert len(recs) == len(users) * n_items - support.groupby("user_id")["item_id"].nunique().sum()
