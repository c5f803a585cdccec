"""The EASE closed form (Steck 2019, "Embarrassingly Shallow Autoencoders"), shared by the `ease` baseline
(`baselines/ease.py`, exact fold-in of new users), the EASE teacher (`teacher.py`) and the priors' pruned EASE
(`priors.py`).

Dimension letters: U users, I items, M columns multiplied at once, V support rows, b rows of a block, K weights
kept per row.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

Product = Callable[[np.ndarray], np.ndarray]  # m -> S m (or S^T m)

DEFAULT_L2 = 500.0
"""The ridge weight lambda of `EASEFoldIn` and of the EASE teacher unless told otherwise."""


def ease_weights(interactions: sp.csr_matrix, l2: float = DEFAULT_L2) -> np.ndarray:
    """(I, I) float32 item-item weights B = I - P / diag(P) with P = (X^T X + l2 I)^-1.

    B_ij = -P_ij / P_jj and B_jj = 0: column j is the ridge regression of item j on all the others, forbidden to use
    itself. A user's scores are x_u B for its binary row x_u.

    Args:
        interactions: (U, I) the binary users x items matrix X.
        l2: the ridge weight lambda (> 0).
    """
    gram = torch.from_numpy((interactions.T @ interactions).toarray().astype(np.float32))  # (I, I)
    gram.diagonal().add_(l2)
    p = torch.cholesky_inverse(torch.linalg.cholesky(gram))  # (I, I): float32 Cholesky, half the memory and time
    del gram  # of a float64 LU inverse, the same weights to 1e-6
    p /= -p.diagonal().clone()  # (I, I), column j divided by -P_jj
    p.fill_diagonal_(0.0)
    return p.numpy()


def training_scores(interactions: sp.csr_matrix, l2: float = DEFAULT_L2) -> tuple[Product, Product]:
    """The products m -> S m and m -> S^T m with EASE's training scores S = X B (U, I), never forming S.

    With fewer users than items, B is not formed either (Woodbury, `woodbury`): since B = I - P diag(P)^-1 and
    X P = K X, S = X - (K X) diag(P)^-1: one (U, I) dense matrix and a (U, U) solve instead of an (I, I) inverse (on
    ml-latest-small 671 x 9,066 instead of 9,066^2).
    """
    x = interactions
    if x.shape[0] >= x.shape[1]:
        weights = ease_weights(x, l2).astype(np.float64)  # (I, I)
        return (lambda m: x @ (weights @ m)), (lambda m: weights.T @ (x.T @ m))
    _, kx, diag_p = woodbury(x, l2)
    kxd = kx / diag_p  # (U, I) = K X diag(P)^-1
    return (lambda m: x @ m - kxd @ m), (lambda m: x.T @ m - kxd.T @ m)


def woodbury(x: sp.csr_matrix, l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P = (X^T X + l2 I)^-1 = (I - X^T K X) / l2 with K = (X X^T + l2 I)^-1 (U, U), for fewer users than items:
    (X dense (U, I), K X (U, I), diag(P) (I,)), float64, with P_jj = (1 - x_j^T (K X)_j) / l2."""
    dense = x.toarray().astype(np.float64)  # (U, I)
    gram = torch.from_numpy(dense @ dense.T + l2 * np.eye(x.shape[0]))  # (U, U)
    kx = torch.cholesky_solve(torch.from_numpy(dense), torch.linalg.cholesky(gram)).numpy()  # (U, I)
    return dense, kx, (1.0 - np.einsum("ui,ui->i", dense, kx)) / l2


def p_rows(x: sp.csr_matrix, l2: float) -> tuple[Callable[[int, int], np.ndarray], np.ndarray]:
    """(rows(start, stop) -> P[start:stop] (b, I), diag(P) (I,)) for P = (X^T X + l2 I)^-1, float64: through
    `woodbury` with fewer users than items (no I x I matrix), else a Cholesky inverse."""
    if x.shape[0] < x.shape[1]:
        dense, kx, diag_p = woodbury(x, l2)

        def rows(start: int, stop: int) -> np.ndarray:
            eye = np.zeros((stop - start, x.shape[1]))
            eye[:, start:stop] = np.eye(stop - start)
            return (eye - dense[:, start:stop].T @ kx) / l2
        return rows, diag_p
    gram = torch.from_numpy((x.T @ x).toarray().astype(np.float64))
    gram.diagonal().add_(l2)
    p = torch.cholesky_inverse(torch.linalg.cholesky(gram)).numpy()  # (I, I)
    return (lambda start, stop: p[start:stop]), np.diag(p).copy()


def ease_rows(x: sp.csr_matrix, l2: float, keep: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """EASE's B = I - P diag(P)^-1 as its `keep` largest weights (by size) per row: (I, K) columns and (I, K)
    weights, rows formed a block at a time (`p_rows`)."""
    n_items = x.shape[1]
    keep = min(keep, n_items)
    rows_of, diag_p = p_rows(x, l2)
    idx = np.zeros((n_items, keep), np.int64)
    val = np.zeros((n_items, keep), np.float32)
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        b = -rows_of(start, stop) / diag_p  # (b, I): -P_ij / P_jj
        b[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = np.argpartition(-np.abs(b), keep - 1, axis=1)[:, :keep]  # (b, K)
        idx[start:stop], val[start:stop] = top, np.take_along_axis(b, top, 1)
    return idx, val


def fold_in(x: sp.csr_matrix, support: sp.csr_matrix, l2: float) -> np.ndarray:
    """(V, I) exact EASE scores s B = s - (s P) diag(P)^-1 of the binary support rows s, without forming B (nor P,
    with fewer users than items: s P = (s - (s X^T) K X) / l2)."""
    s = support.toarray().astype(np.float64)  # (V, I)
    if x.shape[0] < x.shape[1]:
        dense, kx, diag_p = woodbury(x, l2)
        s_p = (s - (s @ dense.T) @ kx) / l2  # (V, I)
    else:
        rows, diag_p = p_rows(x, l2)
        s_p = s @ rows(0, x.shape[1])
    return s - s_p / diag_p
