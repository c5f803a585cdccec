"""The EASE closed form (Steck 2019, "Embarrassingly Shallow Autoencoders"), shared by the `ease` baseline
(`baselines/ease.py`, exact fold-in of new users) and the EASE teacher (`teacher.py`).

Dimension letters: U users, I items, M columns multiplied at once.
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

    With fewer users than items, B is not formed either (Woodbury): X P = K X with K = (X X^T + l2 I)^-1 (U, U),
    P_jj = (1 - x_j^T (K X)_j) / l2, and since B = I - P diag(P)^-1, S = X - (K X) diag(P)^-1: one (U, I) dense
    matrix and a (U, U) solve instead of an (I, I) inverse (on ml-latest-small 671 x 9,066 instead of 9,066^2).
    """
    x = interactions
    if x.shape[0] >= x.shape[1]:
        weights = ease_weights(x, l2).astype(np.float64)  # (I, I)
        return (lambda m: x @ (weights @ m)), (lambda m: weights.T @ (x.T @ m))
    dense = x.toarray().astype(np.float64)  # (U, I)
    kx = np.linalg.solve(dense @ dense.T + l2 * np.eye(x.shape[0]), dense)  # (U, I) = K X
    diag_p = (1.0 - np.einsum("ui,ui->i", dense, kx)) / l2  # (I,)
    kxd = kx / diag_p  # (U, I) = K X diag(P)^-1
    return (lambda m: x @ m - kxd @ m), (lambda m: x.T @ m - kxd.T @ m)
