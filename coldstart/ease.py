"""The EASE closed form (Steck 2019, "Embarrassingly Shallow Autoencoders"), shared by the `ease` baseline
(`baselines/ease.py`, exact fold-in of new users) and the EASE teacher (`teacher.py`).

Dimension letters: U users, I items.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

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
    gram = (interactions.T @ interactions).toarray().astype(np.float64)  # (I, I)
    gram[np.diag_indices_from(gram)] += l2
    p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)  # (I, I)
    p /= -p.diagonal().copy()  # (I, I), column j divided by -P_jj
    np.fill_diagonal(p, 0.0)
    return p.astype(np.float32)
