"""Request bodies -> the frames the recommender takes, and its frames -> response bodies.

Items are named as the command line names them (an id, or a title: coldstart/titles.py). An item the model does not
know, or a title that matches several items, is left out and listed in the response's `ignored`, never an error: a
client sending an id of an item newer than the model must not fail because the id happens to appear in several
titles (the CLI, where a person types, lists the candidates instead). A rating off the model's scale is a 422 naming
the field.

An anonymous new user (ratings without a `user_id`) gets the internal id `anonymous_id(support)`, a hash of the
support it is adapted on: the recommender draws a user's negatives from its id (objectives.user_negatives), so the
same ratings get the same list whether served alone or micro-batched with others, and every time.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from fastapi.exceptions import RequestValidationError

from ..interview import unseen_rating
from ..io.values import SCALE_TOLERANCE, out_of_scale
from ..titles import title_matches
from .schemas import Answer

if TYPE_CHECKING:
    from ..recommender import ColdStartRecommender

Loc = tuple[str | int, ...]


def answers_frame(rec: ColdStartRecommender, user_id: str, answers: Sequence[Answer], loc: Loc
                  ) -> tuple[pd.DataFrame, list[str]]:
    """(`user_id, item_id, rating` rows of the answers naming items the model knows, rating NaN for "not seen";
    the answers' items it does not know, or names of several). `loc` is where the answers are in the body."""
    pairs, ignored = answer_pairs(rec, answers, loc)
    frame = pd.DataFrame({"user_id": [user_id] * len(pairs), "item_id": [item for item, _ in pairs],
                          "rating": np.array([rating for _, rating in pairs], dtype=np.float64)})
    return frame, ignored


def answer_pairs(rec: ColdStartRecommender, answers: Sequence[Answer], loc: Loc
                 ) -> tuple[list[tuple[str, float]], list[str]]:
    """`answers_frame`'s rows as (item id, rating or NaN) pairs, without a frame: a single request's hot path."""
    pairs, ignored = [], []
    for pos, answer in enumerate(answers):
        item = known_item(rec, answer.item_id.strip())
        if item is None:
            ignored.append(answer.item_id)
            continue
        check_rating(rec, answer.rating, (*loc, pos, "rating"))
        pairs.append((item, float(answer.rating) if answer.seen and answer.rating is not None else math.nan))
    return pairs, ignored


def support_of(rec: ColdStartRecommender, pairs: list[tuple[str, float]]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(items, ratings) adaptation sees, as for `coldstart recommend --rate ... --unseen ...`: a "not seen" answer
    (NaN) as `interview.unseen_rating` says (a dislike with the ranking objective, left out with the rating
    objective). On tuples, not a frame: a frame per request costs more than the adaptation's share of it."""
    unseen = unseen_rating(rec.config.objective, float(rec.rating_stats_["min"]))
    kept = [(item, unseen if math.isnan(rating) else rating) for item, rating in pairs
            if not (math.isnan(rating) and unseen is None)]
    return tuple(item for item, _ in kept), tuple(rating for _, rating in kept)


def anonymous_id(items: Sequence[str], ratings: Sequence[float]) -> str:
    """An anonymous user's internal id: a hash of its support (items and ratings, in order)."""
    rows = [[item, float(rating)] for item, rating in zip(items, ratings)]
    return "anon-" + hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def known_item(rec: ColdStartRecommender, item: str) -> str | None:
    """The id of the one item `item` names (an id or a title), else None."""
    found = title_matches(rec, item)
    return found[0] if len(found) == 1 else None


def check_rating(rec: ColdStartRecommender, rating: float | None, loc: Loc) -> None:
    """A 422 for a rating further off the model's scale than `--rate` accepts."""
    low, high = rec.rating_stats_["min"], rec.rating_stats_["max"]
    if rating is not None and high > low and out_of_scale(np.array([rating]), low, high)[0]:
        raise invalid(loc, f"expected a rating on the model's scale {low:g} to {high:g} (give or take "
                           f"{SCALE_TOLERANCE * (high - low):g}), found {rating:g}", rating)


def invalid(loc: Loc, message: str, value: Any) -> RequestValidationError:
    """A 422 in FastAPI's own shape: `{"detail": [{"loc": ["body", ...], "msg": ..., "type": "value_error"}]}`."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", *loc), "msg": message, "input": value}])


def listing(rec: ColdStartRecommender, ids: Sequence[str], scores: Sequence[float] | None = None
            ) -> list[dict[str, Any]]:
    """One user's ranked items as response items: item_id, label (the title, or "") and, given, score."""
    labels = rec.item_label(list(ids)) or [""] * len(ids)
    rows = [{"item_id": i, "label": label} for i, label in zip(ids, labels)]
    if scores is not None:
        for row, value in zip(rows, scores):
            row["score"] = float(value)
    return rows
