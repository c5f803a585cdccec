"""Top-k over the whole catalogue: scored chunk by chunk, excluded items masked, memory bounded by the chunk.

Dimension letters: B users, I items in the catalogue, C items per chunk, E excluded items per user, k list length.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

ScoreFn = Callable[[int, int], torch.Tensor]  # (start, stop) -> (B, stop - start) scores of those items


def top_k(score_fn: ScoreFn, n_users: int, n_items: int, k: int, exclude: torch.Tensor | None = None,
          chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, k) best scores and their item indices, best first; excluded items never appear (-inf when a user has
    fewer than k items left).

    Args:
        score_fn: scores of a slice of the catalogue for every user.
        exclude: (B, E) item indices to leave out of each user's list, -1 in padded slots.
        chunk: items scored at once (peak memory is about B x chunk x the scorer's width).
    """
    k = min(k, n_items)
    best_s = best_i = None
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        scores = score_fn(start, stop)  # (B, C)
        if exclude is not None:
            scores = scores.masked_fill(chunk_mask(exclude, start, stop), float("-inf"))
        s, i = torch.topk(scores, min(k, stop - start), dim=1)  # (B, <=k)
        i = i + start
        if best_s is not None:
            s, order = torch.topk(torch.cat([best_s, s], 1), k, dim=1)
            i = torch.cat([best_i, i], 1).gather(1, order)
        best_s, best_i = s, i
    if best_s is None:
        empty = torch.empty((n_users, 0))
        return empty, empty.long()
    return best_s, best_i


def chunk_mask(exclude: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """(B, stop - start) True where the item start + j is among the user's `exclude` (padding -1 never is)."""
    width = stop - start
    inside = (exclude >= start) & (exclude < stop)  # (B, E)
    column = torch.where(inside, exclude - start, width)  # (B, E): outside / padded -> a spare column
    mask = torch.zeros((exclude.shape[0], width + 1), dtype=torch.bool, device=exclude.device)
    return mask.scatter(1, column, True)[:, :width]
