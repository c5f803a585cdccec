"""Users as tasks: a per-user log in CSR form, and support/query sets sampled into padded tensors.

Dimension letters: B users (tasks) in a batch, S support slots, Q query slots. Padded slots have mask False
and item index 0.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp
import torch


@dataclass(frozen=True)
class UserLog:
    """Interactions grouped by user (CSR), each user's rows in time order.

    Attributes:
        indptr: (U + 1,) user u's rows are indptr[u]:indptr[u + 1].
        items: (nnz,) item indices.
        ratings: (nnz,) ratings as float32.
        times: (nnz,) timestamps as float64, or None (a log without times, or one loaded from a model folder).
    """

    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    times: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
                    times: np.ndarray | None = None) -> UserLog:
        """Group interactions by user index; within a user, order by time (else by input order)."""
        order = cls.row_order(users, times)
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, items[order].astype(np.int64), ratings[order].astype(np.float32),
                   None if times is None else np.asarray(times, np.float64)[order])

    @staticmethod
    def row_order(users: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """(nnz,) the input rows in the log's order: by user, then time, then input order."""
        keys = (np.arange(len(users)),) if times is None else (np.arange(len(users)), times)
        return np.lexsort((*keys, users))

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


def interactions(log: UserLog, n_items: int, rows: np.ndarray | None = None) -> sp.csr_matrix:
    """(U, I) float32 CSR with 1 at every logged (user, item), of the log rows marked True in `rows` (nnz,) when
    given; a repeated (user, item) counts once."""
    users = np.repeat(np.arange(log.n_users), log.lengths())  # (nnz,)
    keep = np.ones(len(users), bool) if rows is None else rows
    x = sp.csr_matrix((np.ones(keep.sum(), np.float32), (users[keep], log.items[keep])),
                      shape=(log.n_users, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


@dataclass(frozen=True)
class ItemSet:
    """One side of B users' tasks (their support, or their query) as padded tensors."""

    items: torch.Tensor  # (B, S) int64, 0 in padded slots
    ratings: torch.Tensor  # (B, S) float32
    mask: torch.Tensor  # (B, S) bool, False in padded slots

    def to(self, device: torch.device | str) -> ItemSet:
        return ItemSet(self.items.to(device), self.ratings.to(device), self.mask.to(device))

    def seen(self) -> torch.Tensor:
        """(B, S) the items, -1 in padded slots (an index no item has)."""
        return self.items.masked_fill(~self.mask, -1)


@dataclass
class TaskBatch:
    """Support and query sets of B users as padded tensors."""

    support_items: torch.Tensor  # (B, S) int64
    support_ratings: torch.Tensor  # (B, S) float32
    support_mask: torch.Tensor  # (B, S) bool
    query_items: torch.Tensor  # (B, Q) int64
    query_ratings: torch.Tensor  # (B, Q) float32
    query_mask: torch.Tensor  # (B, Q) bool
    users: torch.Tensor  # (B,) int64 user indices (known users), -1 for new users
    support_end: torch.Tensor | None = None  # (B,) float64 when each support ended; None: at the end of the log

    def to(self, device: torch.device | str) -> TaskBatch:
        return TaskBatch(**{f.name: _map(getattr(self, f.name), lambda t: t.to(device)) for f in fields(self)})

    def __len__(self) -> int:
        return self.support_items.shape[0]

    def rows(self, idx: torch.Tensor) -> TaskBatch:
        """The tasks at `idx` (R,), in that order."""
        return TaskBatch(**{f.name: _map(getattr(self, f.name), lambda t: t[idx]) for f in fields(self)})

    @property
    def support(self) -> ItemSet:
        return ItemSet(self.support_items, self.support_ratings, self.support_mask)

    @property
    def query(self) -> ItemSet:
        return ItemSet(self.query_items, self.query_ratings, self.query_mask)


def _map(value: torch.Tensor | None, fn) -> torch.Tensor | None:
    return None if value is None else fn(value)


def pad_segments(seg: np.ndarray, pos: np.ndarray, values: list[np.ndarray], n_rows: int,
                 dtypes: list[torch.dtype]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Scatter flat values into (n_rows, width) tensors at [seg, pos]; returns the tensors and the mask."""
    width = int(pos.max()) + 1 if len(pos) else 1
    mask = np.zeros((n_rows, width), dtype=bool)
    mask[seg, pos] = True
    out = []
    for v, dtype in zip(values, dtypes):
        grid = np.zeros((n_rows, width), dtype=v.dtype)
        grid[seg, pos] = v
        out.append(torch.as_tensor(grid, dtype=dtype))
    return out, torch.from_numpy(mask)


def segment_positions(lengths: np.ndarray) -> np.ndarray:
    """(sum(lengths),) each element's position 0..n-1 within its segment, for consecutive segments of `lengths`."""
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def user_rows(log: UserLog, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the users (B,), every log row they own: (batch row, position within the user, log row), users in order."""
    lengths = log.lengths()[users]  # (B,)
    seg = np.repeat(np.arange(len(users)), lengths)  # (n,)
    rank = segment_positions(lengths)  # (n,)
    return seg, rank, np.repeat(log.indptr[users], lengths) + rank


def sample_tasks(log: UserLog, users: np.ndarray, rng: np.random.Generator, support_min: int,
                 support_max: int, query_size: int, in_time: bool = False) -> TaskBatch:
    """A random support/query split of each user's interactions, vectorised over users.

    Each user's support size is drawn uniformly from [support_min, min(support_max, n_u - 1)]; the query is up to
    `query_size` of the remaining interactions, drawn at random. The support is a random subset, or with `in_time`
    the user's first interactions (as a new user's are). Users need at least 2 interactions.
    """
    lengths = log.lengths()[users]  # (B,)
    assert (lengths >= 2).all(), "training tasks need users with at least 2 interactions"
    high = np.minimum(support_max, lengths - 1)
    low = np.minimum(support_min, high)
    n_support = rng.integers(low, high + 1)  # (B,)
    seg, offsets, rows = user_rows(log, users)  # (n,) each
    key = rng.random(len(seg))
    if in_time:  # support slots first, in time order; the rest after them, at random
        key = np.where(offsets < n_support[seg], offsets - len(seg), key)
    order = np.lexsort((key, seg))  # random order within each user
    seg, rows = seg[order], rows[order]
    rank = offsets  # after sorting by seg, position within the segment is again 0..n_u-1
    is_support = rank < n_support[seg]
    is_query = ~is_support & (rank < n_support[seg] + query_size)
    batch = _batch_from_rows(log, users, seg, rows, rank, is_support, is_query, n_support)
    if log.times is not None:
        end = np.full(len(users), -np.inf)  # (B,) the time of each user's last support row
        np.maximum.at(end, seg[is_support], log.times[rows[is_support]])
        batch.support_end = torch.as_tensor(end)
    return batch


def first_n_tasks(log: UserLog, users: np.ndarray, n_support: int) -> TaskBatch:
    """Support = each user's first `n_support` interactions in time, query = the rest."""
    seg, rank, rows = user_rows(log, users)
    is_support = rank < n_support
    return _batch_from_rows(log, users, seg, rows, rank, is_support, ~is_support,
                            np.full(len(users), n_support))


def _batch_from_rows(log: UserLog, users: np.ndarray, seg: np.ndarray, rows: np.ndarray, rank: np.ndarray,
                     is_support: np.ndarray, is_query: np.ndarray, n_support: np.ndarray) -> TaskBatch:
    b = len(users)
    (s_items, s_ratings), s_mask = pad_segments(
        seg[is_support], rank[is_support], [log.items[rows[is_support]], log.ratings[rows[is_support]]], b,
        [torch.int64, torch.float32])
    q_rank = rank[is_query] - n_support[seg[is_query]]
    (q_items, q_ratings), q_mask = pad_segments(
        seg[is_query], q_rank, [log.items[rows[is_query]], log.ratings[rows[is_query]]], b,
        [torch.int64, torch.float32])
    return TaskBatch(s_items, s_ratings, s_mask, q_items, q_ratings, q_mask, torch.as_tensor(users))


def support_batch(items: np.ndarray, ratings: np.ndarray, seg: np.ndarray, n_users: int,
                  users: np.ndarray | None = None) -> TaskBatch:
    """A batch of support sets only (empty query) from flat (item, rating, user-row) arrays in order."""
    order = np.argsort(seg, kind="stable")
    seg, items, ratings = seg[order], items[order], ratings[order]
    counts = np.bincount(seg, minlength=n_users)
    rank = segment_positions(counts)
    (s_items, s_ratings), s_mask = pad_segments(seg, rank, [items, ratings], n_users, [torch.int64, torch.float32])
    empty_i = torch.zeros((n_users, 1), dtype=torch.int64)
    users_t = torch.as_tensor(users if users is not None else np.full(n_users, -1), dtype=torch.int64)
    return TaskBatch(s_items, s_ratings, s_mask, empty_i, torch.zeros((n_users, 1)),
                     torch.zeros((n_users, 1), dtype=torch.bool), users_t)
