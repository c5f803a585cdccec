"""The one top-k and the one output frame, for coldstart and the baselines alike.

`top_k` scores the catalogue chunk by chunk (memory bounded by the chunk), masks each user's excluded items and keeps
a running best k; `ranked_frame` turns (B, k) lists into the long `user_id, rank, item_id, score` frame.

Dimension letters: B users, I items in the catalogue, C items per chunk, E excluded items per user, k list length.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .ids import IdMap

ScoreFn = Callable[[int, int], torch.Tensor]  # (start, stop) -> (B, stop - start) scores of those items


def top_k(score_fn: ScoreFn, n_users: int, n_items: int, k: int, exclude: torch.Tensor | None = None,
          chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, min(k, I)) best scores and their item indices, best first, ties to the lower index.

    Excluded items (and NaN scores) score -inf, so a user with fewer than k other items ends its list in -inf slots,
    which `ranked_frame` drops. Given the same scores, the result does not depend on `chunk`.

    Args:
        score_fn: scores of a slice of the catalogue for every user.
        n_users: B, the rows `score_fn` returns.
        n_items: I, the catalogue size.
        k: list length (capped at I).
        exclude: (B, E) item indices to leave out of each user's list, -1 in padded slots.
        chunk: items scored at once (peak memory is about B x chunk x the scorer's width).
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be positive integers, found k={k}, chunk={chunk}")
    k = min(k, n_items)
    best_s, best_i = torch.empty((n_users, 0)), torch.empty((n_users, 0), dtype=torch.long)  # (B, 0)
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        scores = _masked(score_fn(start, stop), exclude, start, stop)  # (B, C)
        s, i = _head(scores, k)  # (B, min(k, C))
        i = i + start
        best_s, best_i = (s, i) if start == 0 else _merge(best_s, best_i, s, i, k)  # (B, <=k)
    return best_s, best_i


def _masked(scores: torch.Tensor, exclude: torch.Tensor | None, start: int, stop: int) -> torch.Tensor:
    """(B, C) the chunk's scores with the excluded items and NaN scores set to -inf."""
    drop = scores.isnan()  # (B, C)
    if exclude is not None:
        drop |= chunk_mask(exclude, start, stop)
    return scores.masked_fill(drop, float("-inf"))


def _head(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, min(k, C)) the best scores of each row and their columns, best first, ties to the lower column.

    `torch.topk` leaves ties unordered, so it only finds each row's k-th best score; the columns above it, then the
    lowest columns equal to it, make the k, sorted stably (a full sort of the chunk costs 3-30x more)."""
    k = min(k, scores.shape[1])
    kth = torch.topk(scores, k, dim=1).values[:, -1:]  # (B, 1)
    above, tied = scores > kth, scores == kth  # (B, C) each
    take = above | (tied & (tied.cumsum(1) <= k - above.sum(1, keepdim=True)))  # (B, C), k True per row
    cols = take.nonzero()[:, 1].view(-1, k)  # (B, k) ascending
    s, order = torch.sort(scores.gather(1, cols), dim=1, descending=True, stable=True)  # (B, k)
    return s, cols.gather(1, order)


def _merge(best_s: torch.Tensor, best_i: torch.Tensor, s: torch.Tensor, i: torch.Tensor, k: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, <=k) the k best of two lists; on a tie the first list wins (it holds the earlier, lower items)."""
    s, order = _head(torch.cat([best_s, s], 1), k)  # (B, <=k)
    return s, torch.cat([best_i, i], 1).gather(1, order)


def chunk_mask(exclude: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """(B, stop - start) True where the item start + j is among the user's `exclude` (padding -1 never is)."""
    width = stop - start
    inside = (exclude >= start) & (exclude < stop)  # (B, E)
    column = torch.where(inside, exclude - start, width)  # (B, E): outside / padded -> a spare column
    mask = torch.zeros((exclude.shape[0], width + 1), dtype=torch.bool, device=exclude.device)  # (B, C + 1)
    return mask.scatter(1, column, True)[:, :width]


def ranked_frame(user_ids: Sequence[str], items: IdMap, top_items: np.ndarray, top_scores: np.ndarray
                 ) -> pd.DataFrame:
    """The long `user_id, rank, item_id, score` frame of (B, k) top lists, users in the order of `user_ids`.

    Slots with a non-finite score (excluded, or nothing left to rank) are dropped; ranks count the slots, so they
    stay 1, 2, ... as long as such slots only trail a list (as `top_k` leaves them).

    Args:
        user_ids: the B users' ids, row b of the lists is `user_ids[b]`.
        items: the catalogue, translating item indices to ids.
        top_items: (B, k) item indices, best first.
        top_scores: (B, k) their scores.
    """
    top_scores = np.asarray(top_scores)
    keep = np.isfinite(top_scores)  # (B, k)
    row, slot = np.nonzero(keep)  # (n,) each, row-major: user by user, best first
    return pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object)[row], "rank": slot + 1,
                         "item_id": items.ids(np.asarray(top_items)[keep]),
                         "score": top_scores[keep].astype(np.float64)})
