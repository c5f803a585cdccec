"""What a user's model is asked to get right: the loss of one item set (a support or a query), built in one place.

Dimension letters: B users, S slots of an item set, E items a user has already seen, M negative items, I items.

Both objectives map (the net, per-user parameters, an item set) to a (B,) loss: `support_loss`, which the inner loop
descends in training and at recommend time alike, and `query_loss`, which the outer loop descends:

    implicit  each liked item against the negatives and the user's disliked items (sampled softmax,
              logQ-corrected so that it estimates the full softmax over the catalogue); each disliked item by
              -log(1 - p), its unlikelihood against the negatives. In a support set, a rating below the middle of
              the scale is a dislike (a 1-star rating counts against its item, a 5-star one for it); in a query,
              the liked items are those rated >= positive_rating, the items a user is to be recommended.
    rating    squared error of the predicted rating (MeLU).

Negatives are drawn uniformly: fresh for each meta-batch (shared by its users) in training, and per user from a
hash of the user's id at recommend time, so that a user's recommendations never depend on who else is in the batch.
When the catalogue has no more items than `n_negatives`, every item is a negative and nothing is sampled.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import ColdStartNet, Params
from .tasks import ItemSet, UserLog

_FILL = -1e4  # the logit of a masked slot: exp() of it is 0 beside any real score
PRIOR_SHRINKAGE = 10.0  # pseudo-ratings that pull a rarely rated item's starting offset towards the global mean


@dataclass(frozen=True)
class Negatives:
    """Negative items for a batch of users: (M,) shared, or (B, M) per user, and the logQ correction log(I / M)."""

    items: torch.Tensor
    log_correction: float = 0.0

    def to(self, device: torch.device | str) -> Negatives:
        return Negatives(self.items.to(device), self.log_correction)


def shared_negatives(n_items: int, n_negatives: int, rng: np.random.Generator) -> Negatives:
    """(M,) distinct items drawn uniformly, shared by a meta-batch; the whole catalogue when M >= I."""
    if n_negatives >= n_items:
        return Negatives(torch.arange(n_items))
    items = torch.as_tensor(np.sort(rng.choice(n_items, n_negatives, replace=False)))
    return Negatives(items, math.log(n_items / n_negatives))


def user_negatives(user_ids: list[str], n_items: int, n_negatives: int, seed: int) -> Negatives:
    """(B, M) items drawn uniformly (with replacement) for each user from a hash of (seed, user id): the same
    user always gets the same draw, whatever batch it is in. The whole catalogue (M,) when M >= I."""
    if n_negatives >= n_items:
        return Negatives(torch.arange(n_items))
    keys = np.array([zlib.crc32(f"{seed}:{u}".encode()) for u in user_ids], dtype=np.uint64)  # (B,)
    counter = keys[:, None] * np.uint64(n_negatives) + np.arange(n_negatives, dtype=np.uint64)  # (B, M)
    items = (_splitmix64(counter) % np.uint64(n_items)).astype(np.int64)
    return Negatives(torch.from_numpy(items), math.log(n_items / n_negatives))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mix (splitmix64's finaliser): consecutive counters give unrelated values."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def own_negatives(seen: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """(B, M) whether each negative, (M,) shared or (B, M) per user, is one of the user's own `seen` (B, E) items."""
    neg_items = negatives if negatives.dim() == 2 else negatives.unsqueeze(0)  # (B|1, M)
    return (seen.unsqueeze(-1) == neg_items.unsqueeze(1)).any(1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean of `values` (B, S) over the True slots of `mask`; 0 for users with none."""
    mask = mask.float()
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class Objective:
    """The per-user loss of a support set (what adaptation descends) and of a query set (what the adapted model is
    judged by), and the item bias a model starts from."""

    name: str = ""

    def support_loss(self, net: ColdStartNet, params: Params, proj: torch.Tensor, support: ItemSet,
                     negatives: Negatives, seen: torch.Tensor) -> torch.Tensor:
        """(B,) each user's loss on its support. `seen` (B, E) are the user's own items (-1 pads), never negatives."""
        raise NotImplementedError

    def query_loss(self, net: ColdStartNet, params: Params, proj: torch.Tensor, query: ItemSet,
                   negatives: Negatives, seen: torch.Tensor) -> torch.Tensor:
        """(B,) each user's loss on its query (the meta-objective)."""
        raise NotImplementedError

    def prior_bias(self, log: UserLog, n_items: int, mean_rating: float, recent: np.ndarray) -> np.ndarray:
        """(I,) the item bias of the baseline the model starts from; `recent` (nnz,) marks the log rows of the
        newest part of the log (every row without timestamps)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"name": self.name}


@dataclass(frozen=True)
class Implicit(Objective):
    """Rank the whole catalogue: sampled softmax over liked items, unlikelihood of disliked ones.

    In a support set, a rating below `dislike_below` counts against its item and any other for it (having watched
    a film at all says something about a user's taste; a 1-star rating says the opposite about that film). The
    query asks for the items the user went on to like (rating >= `positive_rating`); the rest of it counts against.

    Args:
        positive_rating: query ratings >= this are liked; None: every interaction is liked (data without ratings).
        dislike_below: support ratings < this count against an item; None: none do.
    """

    positive_rating: float | None = 4.0
    dislike_below: float | None = None
    name = "implicit"

    def support_loss(self, net: ColdStartNet, params: Params, proj: torch.Tensor, support: ItemSet,
                     negatives: Negatives, seen: torch.Tensor) -> torch.Tensor:
        liked = support.mask if self.dislike_below is None else support.mask & (support.ratings >= self.dislike_below)
        return self.loss(net, params, proj, support, liked, negatives, seen)

    def query_loss(self, net: ColdStartNet, params: Params, proj: torch.Tensor, query: ItemSet,
                   negatives: Negatives, seen: torch.Tensor) -> torch.Tensor:
        liked = query.mask if self.positive_rating is None else query.mask & (query.ratings >= self.positive_rating)
        return self.loss(net, params, proj, query, liked, negatives, seen)

    @staticmethod
    def loss(net: ColdStartNet, params: Params, proj: torch.Tensor, target: ItemSet, liked: torch.Tensor,
             negatives: Negatives, seen: torch.Tensor) -> torch.Tensor:
        """(B,) mean over the slots of `target`: -log p(item) for the `liked` (B, S) ones, against the negatives
        and the user's other slots; -log(1 - p(item)) for the rest, against the negatives."""
        disliked = target.mask & ~liked  # (B, S)
        pos = net.scores(params, proj, target.items)  # (B, S)
        neg = net.scores(params, proj, negatives.items) + negatives.log_correction  # (B, M)
        own = own_negatives(seen, negatives.items)  # (B, M)
        # a finite fill keeps the gradient finite for a user who has seen every negative (then nothing is unliked)
        neg = neg.masked_fill(own, _FILL)  # (B, M)
        neg_lse = torch.logsumexp(neg, dim=1)  # (B,)
        rivals = torch.cat([neg, pos.masked_fill(~disliked, _FILL)], dim=1)  # (B, M + S): negatives, disliked
        denominator = torch.logsumexp(rivals, dim=1, keepdim=True).expand_as(pos)  # (B, S)
        liked_loss = torch.logsumexp(torch.stack([denominator, pos], -1), -1) - pos  # (B, S) -log p(liked)
        disliked_loss = F.softplus(pos - neg_lse.unsqueeze(1))  # (B, S) -log(1 - p(disliked item))
        disliked_loss = disliked_loss * (~own).any(1, keepdim=True)  # (B, S)
        return masked_mean(torch.where(liked, liked_loss, disliked_loss), target.mask)

    def prior_bias(self, log: UserLog, n_items: int, mean_rating: float, recent: np.ndarray) -> np.ndarray:
        """Centred log(1 + number of interactions in the newest part of the log): what is popular now."""
        log_pop = np.log1p(np.bincount(log.items[recent], minlength=n_items).astype(np.float64))
        return log_pop - log_pop.mean()

    def to_dict(self) -> dict:
        return {"name": self.name, "positive_rating": self.positive_rating, "dislike_below": self.dislike_below}


@dataclass(frozen=True)
class Rating(Objective):
    """Predict ratings: squared error (MeLU's regression), the same on the support and the query."""

    name = "rating"

    def support_loss(self, net: ColdStartNet, params: Params, proj: torch.Tensor, support: ItemSet,
                     negatives: Negatives, seen: torch.Tensor) -> torch.Tensor:
        pred = net.scores(params, proj, support.items)  # (B, S)
        return masked_mean((pred - support.ratings) ** 2, support.mask)

    query_loss = support_loss

    def prior_bias(self, log: UserLog, n_items: int, mean_rating: float, recent: np.ndarray) -> np.ndarray:
        """The item's mean rating offset over the whole log, shrunk towards 0 by PRIOR_SHRINKAGE pseudo-ratings."""
        counts = np.bincount(log.items, minlength=n_items).astype(np.float64)
        sums = np.bincount(log.items, weights=log.ratings - mean_rating, minlength=n_items)
        return sums / (counts + PRIOR_SHRINKAGE)


def make_objective(name: str, positive_rating: float | None, dislike_below: float | None = None,
                   log: UserLog | None = None) -> Objective:
    """The objective `name`. For "implicit", with the training `log`: a positive_rating that no rating reaches means
    every interaction is liked (data without ratings), and an unset dislike_below is the middle of the rating scale
    (nothing counts against an item when all ratings are equal)."""
    if name == "rating":
        return Rating()
    if log is not None:
        low, high = (float(log.ratings.min()), float(log.ratings.max())) if len(log.ratings) else (1.0, 1.0)
        if positive_rating is not None and not high >= positive_rating:
            positive_rating = None
        if dislike_below is None and high > low:
            dislike_below = (low + high) / 2
    return Implicit(positive_rating, dislike_below)


def objective_from_dict(values: dict) -> Objective:
    """The inverse of `Objective.to_dict`."""
    return make_objective(values["name"], values.get("positive_rating"), values.get("dislike_below"))
