"""What a new user would get anyway, as inputs of the network: the priors its gate weighs for each user.

Six channels of item scores, each a (B, I) row per user, centred over the catalogue and scaled into [-1, 1] (an
all-zero row, a prior that says nothing for this user, stays 0), from four priors (config `priors`):

    recent   log(1 + liked count) over the newest 3%, 10% and 30% of the log's rows before the task's time
             (three channels: how recent "now" is differs from one log to the next, the gate weighs them)
    alltime  log(1 + liked count) over the whole log before the task's time
    peers    liked shares among the training users who share the user's features (a sum over its feature values)
    ease     EASE fold-in of the user's support (x_u B), B pruned to its `keep` largest weights per row

"Before the task's time": the log is cut into SNAPSHOTS time quantiles; a training task reads the latest snapshot
that ends before its support does (a warm user met as it arrived), a new user the one at the end of the log. A log
without timestamps has one time, the end. Dimension letters: B users, S support slots, I items, T snapshots,
C channels, K weights kept per EASE row, U users, V a token field's values.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .ease import ease_rows, fold_in
from .features import OOV, EncodedFeatures, FeatureEncoder
from .metrics import ranking_metrics
from .tasks import ItemSet, UserLog, interactions

RECENT_SHARES = (0.03, 0.1, 0.3)  # the recent windows, as shares of the log's rows
LAYOUT = ("recent",) * len(RECENT_SHARES) + ("alltime", "peers", "ease")  # the prior of each channel
PEERS = LAYOUT.index("peers")
SNAPSHOTS = 32  # time quantiles of the log a training task's popularity is read at
EASE_KEEP = 128  # weights kept per row of EASE's B (top-128 ranked validation users as the dense B did)
L2_GRID = (1e2, 1e3, 1e4, 1e5, 1e6)  # EASE's ridge weights tried on validation users at fit
NUMERIC_BINS = 5  # quantile bins of a numeric user feature, for the peers
VALID_SHARE, VALID_SHOTS, VALID_K = 0.2, 5, 10  # the newest training users held out to choose l2; their support


class Priors(nn.Module):
    """The priors' tables, as buffers (saved and loaded with the net's weights), and each user's channels."""

    def __init__(self, n_items: int, user_encoder: FeatureEncoder, keep: int = EASE_KEEP):
        super().__init__()
        keep = min(keep, n_items)
        n_pop = len(RECENT_SHARES) + 1
        self.register_buffer("pop", torch.zeros(SNAPSHOTS, n_pop, n_items))  # (T, W + 1, I): recent..., alltime
        self.register_buffer("ends", torch.full((SNAPSHOTS,), float("inf"), dtype=torch.float64))  # (T,)
        self.register_buffer("ease_items", torch.zeros(n_items, keep, dtype=torch.int64))  # (I, K)
        self.register_buffer("ease_weights", torch.zeros(n_items, keep))  # (I, K)
        for j, f in enumerate(user_encoder.token_fields):
            self.register_buffer(f"peer_tokens_{j}", torch.zeros(f.n_tokens, n_items))  # (V, I)
        n_numeric = len(user_encoder.numeric_fields)
        self.register_buffer("peer_edges", torch.zeros(n_numeric, NUMERIC_BINS - 1))  # (F, bins - 1)
        self.register_buffer("peer_numeric", torch.zeros(n_numeric, NUMERIC_BINS, n_items))  # (F, bins, I)
        self.register_buffer("enabled", torch.ones(len(LAYOUT)))  # (C,) 0 for a channel the config leaves out
        self.n_token_fields = len(user_encoder.token_fields)

    def channels(self, feats: EncodedFeatures, support: ItemSet, times: torch.Tensor | None) -> torch.Tensor:
        """(B, C, I) each user's channels, centred and scaled; `times` (B,) when each task's support ended (None, or +inf:
        a new user, met at the end of the log)."""
        pop = self.pop[self.slots(times, support.items.shape[0])]  # (B, W + 1, I)
        out = torch.cat([pop, self.peers(feats).unsqueeze(1), self.ease(support).unsqueeze(1)], dim=1)  # (B, C, I)
        return centre_scale(out) * self.enabled.view(1, -1, 1)

    def slots(self, times: torch.Tensor | None, b: int) -> torch.Tensor:
        """(B,) the snapshot of each task: the latest that ends at or before `times` (0 when none does)."""
        if times is None:
            return torch.full((b,), SNAPSHOTS - 1, device=self.pop.device)
        return (torch.searchsorted(self.ends, times.to(self.ends.dtype), right=True) - 1).clamp(min=0)

    def peers(self, feats: EncodedFeatures) -> torch.Tensor:
        """(B, I) the sum of the liked shares of each of the user's feature values (0 for unknown values)."""
        b = feats.numeric.shape[0]
        out = self.pop.new_zeros((b, self.pop.shape[-1]))  # (B, I)
        for j in range(self.n_token_fields):
            table = getattr(self, f"peer_tokens_{j}")  # (V, I)
            out = out + table[feats.tokens[j]].sum(1)  # (B, T_f, I) -> (B, I); PAD and OOV rows are 0
        if self.peer_numeric.shape[0]:
            bins = torch.searchsorted(self.peer_edges, feats.numeric.T.contiguous(), right=True)  # (F, B)
            known = (feats.numeric != 0).T.unsqueeze(-1)  # (F, B, 1): 0 is a missing value's (the mean)
            rows = torch.stack([self.peer_numeric[f, bins[f]] for f in range(bins.shape[0])])  # (F, B, I)
            out = out + (rows * known).sum(0)
        return out

    def ease(self, support: ItemSet) -> torch.Tensor:
        """(B, I) x_u B for each user's binary support row x_u (pruned B)."""
        b, n_items = support.items.shape[0], self.ease_items.shape[0]
        rows = self.ease_items[support.items]  # (B, S, K)
        weights = self.ease_weights[support.items] * support.mask.unsqueeze(-1)  # (B, S, K)
        out = self.ease_weights.new_zeros((b, n_items))  # (B, I)
        return out.scatter_add(1, rows.reshape(b, -1), weights.reshape(b, -1))


def centre_scale(x: torch.Tensor) -> torch.Tensor:
    """x (..., I) centred and divided by its largest size along its last axis, so within [-1, 1] whatever the
    prior's scale; constant rows become 0. (Not by the standard deviation: EASE's scores are so heavy-tailed that
    their top items lie dozens of deviations out, and a weight the inner loop moves by a step would jump the list.)"""
    centred = x - x.mean(-1, keepdim=True)
    top = centred.abs().amax(-1, keepdim=True)
    return torch.where(top > 1e-6, centred / top.clamp(min=1e-6), torch.zeros_like(centred))


# --- fitting the tables --------------------------------------------------------------------------------------------
def fit_priors(priors: Priors, log: UserLog, times: np.ndarray | None, liked: np.ndarray, user_feats: EncodedFeatures,
               channels: tuple[str, ...], l2: float) -> None:
    """Fill `priors`' tables from the training `log` (rows in the log's order; `times` (nnz,) or None, `liked`
    (nnz,) bool); `l2` is EASE's ridge weight; channels not in `channels` are switched off."""
    n_items = priors.pop.shape[-1]
    with torch.no_grad():
        priors.pop.copy_(torch.as_tensor(popularity_snapshots(log.items, times, liked, n_items)))
        ends = snapshot_ends(times)
        priors.ends.copy_(torch.as_tensor(ends) if ends is not None else torch.full_like(priors.ends, float("inf")))
        liked_x = interactions(log, n_items, liked)  # (U, I)
        for j in range(priors.n_token_fields):
            getattr(priors, f"peer_tokens_{j}").copy_(token_shares(user_feats.tokens[j], liked_x,
                                                                   getattr(priors, f"peer_tokens_{j}").shape[0]))
        if priors.peer_numeric.shape[0]:
            edges, shares = numeric_shares(user_feats.numeric.numpy(), liked_x)
            priors.peer_edges.copy_(torch.as_tensor(edges))
            priors.peer_numeric.copy_(torch.as_tensor(shares))
        if "ease" in channels:
            idx, w = ease_rows(interactions(log, n_items), l2, priors.ease_items.shape[1])
            priors.ease_items.copy_(torch.as_tensor(idx))
            priors.ease_weights.copy_(torch.as_tensor(w))
        priors.enabled.copy_(torch.tensor([float(c in channels) for c in LAYOUT]))


def snapshot_ends(times: np.ndarray | None) -> np.ndarray | None:
    """(T,) the times the snapshots end at (the last one at +inf: the end of the log); None without times."""
    if times is None or len(times) == 0:
        return None
    ends = np.quantile(times, np.arange(1, SNAPSHOTS) / SNAPSHOTS)
    return np.append(ends, np.inf)


def popularity_snapshots(items: np.ndarray, times: np.ndarray | None, liked: np.ndarray, n_items: int,
                         shares: tuple[float, ...] = RECENT_SHARES) -> np.ndarray:
    """(T, W + 1, I) log(1 + liked count) per snapshot: over the newest share of the log's rows before the
    snapshot's end for each of `shares`, and over all of them."""
    order = np.argsort(times, kind="stable") if times is not None else np.arange(len(items))
    items, liked = items[order], liked[order]
    ends = snapshot_ends(times)
    stops = np.full(SNAPSHOTS, len(items)) if ends is None else np.searchsorted(times[order], ends, side="left")
    windows = [max(1, int(round(share * len(items)))) for share in shares]
    out = np.zeros((SNAPSHOTS, len(shares) + 1, n_items), np.float32)
    for t, stop in enumerate(stops):
        for c, start in enumerate([max(0, stop - w) for w in windows] + [0]):
            rows = slice(start, stop)
            out[t, c] = np.log1p(np.bincount(items[rows][liked[rows]], minlength=n_items))
    return out


def token_shares(tokens: torch.Tensor, liked: sp.csr_matrix, n_values: int) -> torch.Tensor:
    """(V, I) for each value of a token field, its users' liked counts over their total (PAD, OOV: 0)."""
    t = tokens.numpy()  # (U, T_f)
    users = np.repeat(np.arange(t.shape[0]), t.shape[1])
    values = t.reshape(-1)
    keep = values > OOV
    has = sp.csr_matrix((np.ones(keep.sum()), (values[keep], users[keep])), shape=(n_values, t.shape[0]))
    return torch.as_tensor(_shares((has @ liked).toarray()), dtype=torch.float32)


def numeric_shares(numeric: np.ndarray, liked: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """For each numeric field (standardised, 0 = missing): its quantile bin edges (F, bins - 1) and each bin's liked
    shares (F, bins, I)."""
    edges = np.zeros((numeric.shape[1], NUMERIC_BINS - 1), np.float32)
    shares = np.zeros((numeric.shape[1], NUMERIC_BINS, liked.shape[1]), np.float32)
    for f in range(numeric.shape[1]):
        known = numeric[:, f] != 0
        if not known.any():
            continue
        edges[f] = np.quantile(numeric[known, f], np.arange(1, NUMERIC_BINS) / NUMERIC_BINS)
        bins = np.searchsorted(edges[f], numeric[:, f], side="right")
        has = sp.csr_matrix((np.ones(known.sum()), (bins[known], np.flatnonzero(known))),
                            shape=(NUMERIC_BINS, numeric.shape[0]))
        shares[f] = _shares((has @ liked).toarray())
    return edges, shares


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts, dtype=np.float64), where=total > 0)


def choose_l2(log: UserLog, first_time: np.ndarray | None, liked: np.ndarray, n_items: int,
              grid: tuple[float, ...] = L2_GRID, seed: int = 0) -> tuple[float, dict[float, float]]:
    """EASE's l2 of `grid` whose fold-in ranks best (mean nDCG@10) for the newest VALID_SHARE of the training users
    (by `first_time` (U,), a seeded draw without times): fit on the others, their first VALID_SHOTS rows the support,
    their later liked rows the query. Returns (the best l2, l2 -> nDCG)."""
    lengths = log.lengths()
    users = np.flatnonzero(lengths > VALID_SHOTS)
    n_valid = int(round(VALID_SHARE * len(users)))
    if n_valid < 5 or len(users) - n_valid < 5:
        return grid[len(grid) // 2], {}
    order = np.argsort(first_time[users], kind="stable") if first_time is not None else \
        np.random.default_rng(seed).permutation(len(users))
    held = users[order[-n_valid:]]
    is_held = np.zeros(log.n_users, bool)
    is_held[held] = True
    row_user = np.repeat(np.arange(log.n_users), lengths)  # (nnz,)
    position = np.arange(len(row_user)) - log.indptr[row_user]  # (nnz,)
    x = interactions(log, n_items, ~is_held[row_user])[~is_held]  # (U_kept, I)
    support = interactions(log, n_items, is_held[row_user] & (position < VALID_SHOTS))[held]  # (V, I)
    query = interactions(log, n_items, is_held[row_user] & (position >= VALID_SHOTS) & liked)[held]  # (V, I)
    scores = {l2: _ndcg(fold_in(x, support, l2), support, query) for l2 in grid}
    return max(scores, key=scores.get), scores


def _ndcg(scores: np.ndarray, support: sp.csr_matrix, query: sp.csr_matrix, k: int = VALID_K) -> float:
    """Mean nDCG@k of the (V, I) `scores`, support items left out, against the `query` items (users without one
    are skipped; 0 when none has one)."""
    scores = np.where(support.toarray() > 0, -np.inf, scores)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (V, k)
    ndcg = ranking_metrics(top, query.tocsr(), k)["ndcg"]  # (V,), NaN without a query item
    return float(np.nanmean(ndcg)) if np.isfinite(ndcg).any() else 0.0
