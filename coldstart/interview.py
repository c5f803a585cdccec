"""The onboarding interview: which items to ask a new user to rate next, given the answers so far.

Dimension letters: B users, I items in the catalogue, C candidate items per user, M negatives, n questions.

MeLU's evidence candidates, made adaptive. Each user's model is first adapted on the answers so far (as
`recommend` adapts it); asking user u about item i then scores

    log p_u(i)  +  evidence * log ||g_u(i)||

    p_u(i)    how likely u can answer: the adapted model's softmax over the catalogue (the model is trained to
              rank what a user goes on to rate, popular items included), MeLU's popularity term made personal
    g_u(i)    how far an answer would move u's model (MeLU's gradient term): the gradient of the support loss of
              the one item (rated at the top of the scale), with respect to the parameters the inner loop adapts,
              at u's adapted point

On validation users of ML-100K the gradient term did not help (evidence 0.5, 1 and 2 were level with 0, paired over
users; docs/experiments.md), so it is off by default (evidence = 0) and 20x cheaper; it stays an option.

The n questions of one call are picked greedily, each candidate's score lowered by `diversity` times its largest
cosine similarity (of item vectors) to the items already picked. Items already answered, or answered "not seen",
are never asked again. A "not seen" answer (a missing rating) is itself evidence: with the ranking objective it
adapts the model as a dislike of the item (the user did not go and watch it); with the rating objective it is
left out of adaptation (it says nothing of a rating).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .frames import check_frame
from .model import ColdStartNet, Params
from .objectives import _FILL, Objective, own_negatives, user_negatives
from .tasks import ItemSet

NEW_USER = "new-user"  # the user id of an interview without answers


@dataclass(frozen=True)
class Interviewer:
    """How questions are chosen (the defaults were chosen on validation users, see docs/experiments.md).

    Attributes:
        evidence: weight of log ||g_u(i)|| beside log p_u(i); 0 (the default) asks the items the user most likely
            knows.
        diversity: how much a candidate's score drops per unit of cosine similarity to a picked item (within one
            call's n questions; 1 was level with 0 on validation pages of 5 and 10 questions, 3 cost accuracy).
        candidates: the C items of highest p_u(i) whose evidence gradient is computed (the rest are not asked).
        unseen: "dislike" (a "not seen" answer adapts as a dislike, ranking objective only) or "ignore".
    """

    evidence: float = 0.0
    diversity: float = 1.0
    candidates: int = 100
    unseen: str = "dislike"

    def __post_init__(self) -> None:
        if self.unseen not in ("dislike", "ignore"):
            raise ValueError(f"unseen: expected 'dislike' or 'ignore', found {self.unseen!r}")
        if self.candidates < 1 or self.evidence < 0 or self.diversity < 0:
            raise ValueError(f"expected candidates >= 1, evidence >= 0 and diversity >= 0, found {self}")


# --- answers ---------------------------------------------------------------------------------------------------
def check_answers(answers: pd.DataFrame | None) -> pd.DataFrame:
    """Answers as a checked frame (`user_id`, `item_id`, `rating`; a missing rating means "not seen"); None or an
    empty frame: one brand-new user, NEW_USER, without answers (a frame with only its asked-nothing row)."""
    if answers is None:
        return pd.DataFrame({"user_id": pd.Series([], dtype=object), "item_id": pd.Series([], dtype=object),
                             "rating": pd.Series([], dtype=float)})
    if "rating" not in answers:
        answers = answers.assign(rating=np.nan)
    rating = pd.to_numeric(answers["rating"], errors="coerce")
    bad = rating.isna() & answers["rating"].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"answers: row {row}, column 'rating': expected a number, or missing for \"not seen\", "
                         f"found {answers['rating'].iloc[row]!r}")
    seen = check_frame(answers.assign(rating=rating.fillna(0.0)), "answers")
    return seen.assign(rating=rating.to_numpy(np.float64))


def answers_support(answers: pd.DataFrame, objective: str, dislike_rating: float, unseen: str = "dislike"
                    ) -> pd.DataFrame:
    """The support rows adaptation sees: the rated answers, plus each "not seen" answer as `unseen_rating`'s
    (left out where that is None)."""
    value = unseen_rating(objective, dislike_rating, unseen)
    if value is not None:
        return answers.assign(rating=answers["rating"].fillna(value))
    return answers[~answers["rating"].isna()]


def unseen_rating(objective: str, dislike_rating: float, unseen: str = "dislike") -> float | None:
    """The rating a "not seen" answer adapts as: `dislike_rating` with the ranking objective and unseen="dislike",
    else None (the answer is left out of the support)."""
    return dislike_rating if objective == "implicit" and unseen == "dislike" else None


# --- the scores of asking ----------------------------------------------------------------------------------------
def candidate_evidence(net: ColdStartNet, objective: Objective, params: Params, proj: torch.Tensor,
                       negatives: torch.Tensor, log_correction: float, candidates: torch.Tensor,
                       support: ItemSet, names: list[str], top_rating: float) -> torch.Tensor:
    """(B, C) the norm of the support-loss gradient of each candidate item alone (rated `top_rating`), with respect
    to the adapted parameters `names`, at each user's `params` (leading dimension B); `negatives` (B, M) or (M,).

    In closed form from two backward passes, not one per (user, candidate) pair. With s_c the candidate's score
    and L = logsumexp of the user's negatives (its own items masked, as in objectives.Implicit), the one-item
    loss log(e^L_c + e^s_c) - s_c has the gradient w_c (dL_c - ds_c), w_c = sigmoid(L_c - s_c), where L_c and dL_c
    leave the candidate out of the negatives: dL_c = (dL - pi_c ds_c) / (1 - pi_c), pi_c its softmax weight among
    them. With the rating objective the gradient is 2 (s_c - top_rating) ds_c. Each ds_c comes from one backward
    pass over (user, candidate) pairs as virtual users (a user's loss depends only on its own slice)."""
    b, c = candidates.shape
    owner = torch.arange(b, device=proj.device).repeat_interleave(c)  # (B C,) each pair's user
    with torch.enable_grad():
        pairs = {k: v[owner].detach().requires_grad_(k in names) for k, v in params.items()}  # (B C, ...)
        score = net.scores(pairs, proj, candidates.reshape(-1, 1)).squeeze(1)  # (B C,)
        d_score = _flat(torch.autograd.grad(score.sum(), [pairs[n] for n in names]))  # (B C, P)
    score = score.detach()
    if objective.name != "implicit":
        return (2 * (score - top_rating).abs() * d_score.norm(dim=1)).reshape(b, c)
    neg_items = negatives if negatives.dim() == 2 else negatives.unsqueeze(0).expand(b, -1)  # (B, M)
    with torch.enable_grad():
        local = {k: v.detach().requires_grad_(k in names) for k, v in params.items()}  # (B, ...)
        neg = net.scores(local, proj, neg_items) + log_correction  # (B, M)
        own = own_negatives(support.seen(), neg_items)  # (B, M)
        lse = torch.logsumexp(neg.masked_fill(own, _FILL), dim=1)  # (B,)
        d_lse = _flat(torch.autograd.grad(lse.sum(), [local[n] for n in names]))  # (B, P)
    weight = torch.exp(neg.detach().masked_fill(own, _FILL) - lse.detach().unsqueeze(1))  # (B, M) softmax
    same = neg_items.unsqueeze(1) == candidates.unsqueeze(2)  # (B, C, M)
    pi = (same * weight.unsqueeze(1)).sum(-1).reshape(-1).clamp(max=1 - 1e-6)  # (B C,)
    lse_c = lse.detach()[owner] + torch.log1p(-pi)  # (B C,)
    d_lse_c = (d_lse[owner] - pi.unsqueeze(1) * d_score) / (1 - pi).unsqueeze(1)  # (B C, P)
    grad = torch.sigmoid(lse_c - score).unsqueeze(1) * (d_lse_c - d_score)  # (B C, P)
    return grad.norm(dim=1).reshape(b, c)


def _flat(grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(R, P) per-row gradients of several tensors (each (R, ...)) side by side."""
    return torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)


def pick_diverse(scores: torch.Tensor, candidates: torch.Tensor, item_vecs: torch.Tensor, n: int,
                 diversity: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n) items and their scores, picked greedily from each user's `candidates` (B, C) by `scores` (B, C)
    (-inf: never), each pick lowering the others by `diversity` x their largest cosine similarity to it."""
    unit = F.normalize(item_vecs[candidates], dim=-1)  # (B, C, D)
    scores = scores.clone()
    closest = torch.full_like(scores, -1.0)  # (B, C) largest similarity to an item picked so far
    picked, picked_scores = [], []
    rows = torch.arange(scores.shape[0], device=scores.device)
    for _ in range(min(n, scores.shape[1])):
        adjusted = scores - diversity * closest.clamp(min=0.0)  # (B, C)
        best = adjusted.argmax(1)  # (B,)
        picked.append(candidates[rows, best])
        picked_scores.append(adjusted[rows, best])
        scores[rows, best] = -torch.inf
        similarity = (unit * unit[rows, best].unsqueeze(1)).sum(-1)  # (B, C)
        closest = torch.maximum(closest, similarity)
    return torch.stack(picked, 1), torch.stack(picked_scores, 1)


def question_scores(net: ColdStartNet, objective: Objective, params: Params, proj: torch.Tensor,
                    support: ItemSet, asked: torch.Tensor, user_ids: list[str], settings: Interviewer,
                    n_negatives: int, seed: int, top_rating: float) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, C) candidate items, (B, C) their scores of asking), -inf for items already asked (`asked` (B, I))."""
    with torch.no_grad():
        log_p = torch.log_softmax(net.scores(params, proj, None), dim=1).masked_fill(asked, -torch.inf)  # (B, I)
    c = min(settings.candidates, log_p.shape[1])
    top, candidates = log_p.topk(c, dim=1)  # (B, C)
    if settings.evidence == 0:
        return candidates, top
    neg = user_negatives(user_ids, proj.shape[0], n_negatives, seed)
    grad = candidate_evidence(net, objective, params, proj, neg.items.to(proj.device), neg.log_correction,
                              candidates, support, net.local_names(), top_rating)  # (B, C)
    return candidates, top + settings.evidence * torch.log(grad.clamp(min=1e-12))
