"""The teacher prior: a warm collaborative model (implicit's ALS, or EASE) fitted on the training log guides
meta-training. Its item factors start the item-id embeddings, and its scores of each training user (it saw the
user's whole history; the adapted student sees only the support) are distilled into the outer loss.

Dimension letters: U training users, I items, F teacher factors, D embedding width, B users of a meta-batch,
N items scored per user.

Only `fit` uses a teacher: it is never saved (a loaded model has none and never needs one), and adaptation at
recommend time never calls it. Both teachers end as factors, scores = user_factors @ item_factors.T: ALS's own, or
for EASE the best rank-F approximation of its training score matrix X B (its top singular vectors, found without
forming the U x I matrix).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .ease import training_scores
from .model import ColdStartNet, Params
from .objectives import _FILL, Negatives, own_negatives
from .tasks import TaskBatch, UserLog, interactions

@dataclass(frozen=True)
class Teacher:
    """A fitted teacher as factors; row u of `user_factors` is the training user of index u."""

    user_factors: torch.Tensor  # (U, F)
    item_factors: torch.Tensor  # (I, F)

    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B, N) the scores of training users `users` (B,) for `items`, (N,) shared or (B, N) each user's own."""
        user = self.user_factors[users]  # (B, F)
        if items.dim() == 1:
            return user @ self.item_factors[items].T  # (B, N)
        return torch.einsum("bf,bnf->bn", user, self.item_factors[items])  # (B, N)

    def to(self, device: torch.device | str) -> Teacher:
        return Teacher(self.user_factors.to(device), self.item_factors.to(device))


def fit_teacher(name: str, log: UserLog, n_items: int, seed: int, rank: int = 64) -> Teacher:
    """The teacher `name` ("als" or "ease") fitted on the binary users x items matrix of `log`; EASE keeps `rank`
    factors."""
    x = interactions(log, n_items)  # (U, I)
    return fit_als(x, seed) if name == "als" else fit_ease(x, seed, rank)


def fit_als(x: sp.csr_matrix, seed: int) -> Teacher:
    """implicit's ALS with the `als` baseline's hyperparameters (ALSFoldIn's defaults), one thread (deterministic)."""
    import implicit.als  # only a fit with a teacher needs implicit
    import threadpoolctl

    from .baselines.als import ALSFoldIn
    hp = ALSFoldIn()
    with threadpoolctl.threadpool_limits(1, "blas"):
        model = implicit.als.AlternatingLeastSquares(
            factors=hp.factors, regularization=hp.regularization, alpha=1.0 + hp.alpha, iterations=hp.iterations,
            calculate_training_loss=False, num_threads=1, random_state=seed, use_gpu=False)
        model.fit(x, show_progress=False)
    return Teacher(torch.as_tensor(np.asarray(model.user_factors), dtype=torch.float32),
                   torch.as_tensor(np.asarray(model.item_factors), dtype=torch.float32))


def fit_ease(x: sp.csr_matrix, seed: int, rank: int = 64) -> Teacher:
    """EASE's weights B (the `ease` baseline's default l2), kept as the top-`rank` right singular vectors V of the
    training scores S = X B: item factors V (I, F), user factors S V (U, F)."""
    times, times_t = training_scores(x)  # S m, S^T m
    v = top_right_singular_vectors(times, times_t, x.shape[1], min(rank, *x.shape),
                                   np.random.default_rng(seed))  # (I, F)
    user = times(v)  # (U, F)
    return Teacher(torch.as_tensor(user, dtype=torch.float32), torch.as_tensor(v, dtype=torch.float32))


def top_right_singular_vectors(times, times_t, n_cols: int, rank: int, rng: np.random.Generator,
                               oversample: int = 10, power: int = 4) -> np.ndarray:
    """(n_cols, rank) the top right singular vectors of a matrix S given only as products: `times(m)` = S m and
    `times_t(m)` = S^T m (randomised subspace iteration, Halko et al. 2011)."""
    v = np.linalg.qr(rng.standard_normal((n_cols, min(rank + oversample, n_cols))))[0]  # (I, F + p)
    for _ in range(power):
        v = np.linalg.qr(times_t(times(v)))[0]  # (I, F + p): S^T S v, orthonormalised
    _, _, vt = np.linalg.svd(times(v), full_matrices=False)  # S v = U' diag(s) vt
    return v @ vt[:rank].T  # (I, F)


def item_init(teacher: Teacher, dim: int, scale: float = 0.1) -> torch.Tensor:
    """(I, min(D, F)) the teacher's item factors mapped to the embedding width: their top principal directions
    (uncentred, so item-item dot products are kept as well as D dimensions can), rescaled to the standard
    deviation `scale` of a fresh embedding."""
    factors = teacher.item_factors.double()  # (I, F)
    _, _, vt = torch.linalg.svd(factors, full_matrices=False)  # vt (F, F)
    mapped = factors @ vt[: min(dim, vt.shape[0])].T  # (I, min(D, F))
    return (mapped * (scale / mapped.std().clamp(min=1e-12))).float()


def start_item_ids(net: ColdStartNet, teacher: Teacher) -> None:
    """Overwrite the first columns of the item-id embedding with `item_init` (the rest keep their random start)."""
    init = item_init(teacher, net.item_ids.weight.shape[1])  # (I, min(D, F))
    with torch.no_grad():
        net.item_ids.weight[:, : init.shape[1]] = init.to(net.item_ids.weight.device)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """(B,) KL(p_teacher || p_student) over each user's `mask`ed (B, N) items: p_teacher = softmax(teacher score /
    temperature), p_student = softmax(student score). 0 when the student's scores are the teacher's over the
    temperature plus any per-user constant, positive otherwise."""
    log_t = F.log_softmax((teacher / temperature).masked_fill(~mask, _FILL), dim=1)  # (B, N)
    log_s = F.log_softmax(student.masked_fill(~mask, _FILL), dim=1)  # (B, N)
    return (log_t.exp() * (log_t - log_s)).masked_fill(~mask, 0.0).sum(1)


def batch_distillation(teacher: Teacher, net: ColdStartNet, params: Params, proj: torch.Tensor, batch: TaskBatch,
                       negatives: Negatives, temperature: float) -> torch.Tensor:
    """(B,) the distillation term of a meta-batch's adapted users (`params`): over the negatives other than each
    user's own support and query items, and over its query items."""
    seen = torch.cat([batch.support.seen(), batch.query.seen()], dim=1)  # (B, S + Q)
    own = own_negatives(seen, negatives.items)  # (B, M)
    mask = torch.cat([~own, batch.query.mask], dim=1)  # (B, M + Q)
    student = torch.cat([net.scores(params, proj, negatives.items),
                         net.scores(params, proj, batch.query.items)], dim=1)  # (B, M + Q)
    taught = torch.cat([teacher.scores(batch.users, negatives.items),
                        teacher.scores(batch.users, batch.query.items)], dim=1)  # (B, M + Q)
    return distillation_loss(student, taught, mask, temperature)
