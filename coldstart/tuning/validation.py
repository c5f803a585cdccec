"""The validation split every trial fits on and is scored on, carved out of the training users only.

The evaluation's new users (the newest `new_fraction` by first interaction, split as `coldstart evaluate --seed S`
splits them; on MeLU's layout, every scenario but `meta_training`) are dropped first and never read; of the remaining
users, the newest `new_fraction` become validation new users, and every trial fits on the rest. (Without timestamps
the split is random per seed, so `evaluate` under another seed holds out other users, some of whom tuning has seen.)
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..config import Config
from ..evaluation import Protocol, Task, score_task, shot_task, split_new_users
from ..evaluation.protocol import MELU_SCENARIOS
from ..ids import IdMap
from ..io import Dataset
from ..recommender import ColdStartRecommender


@dataclass(frozen=True)
class Validation:
    """What every trial fits on and is scored on; the evaluation's new users are in neither."""

    fit: Dataset  # the training users less the validation users
    valid: pd.DataFrame  # the validation users' ratings, each user's in time order
    tasks: list[Task]  # the validation users, one task per shot count
    catalogue: IdMap  # the items ranked: of the fit and validation ratings, and of the item table
    protocol: Protocol


def validation_split(data: Dataset, shots: tuple[int, ...] = (1, 3, 5, 10), new_fraction: float = 0.2,
                     seed: int = 0) -> Validation:
    """Drop the evaluation's new users (`split_new_users(ratings, new_fraction, seed)`, as `coldstart evaluate`
    splits them; on data with MeLU's `split` column, every row but `meta_training`), then hold out the newest
    `new_fraction` of the rest as validation new users.

    Raises:
        ValueError: no validation user has more than min(shots) interactions.
    """
    protocol = Protocol(shots=tuple(shots), new_fraction=new_fraction, seed=seed,
                        threshold=None if data.implicit else Protocol.threshold)
    ratings = data.ratings
    if "split" in ratings and ratings["split"].isin(MELU_SCENARIOS).any():  # evaluate runs MeLU's protocol
        train = ratings[ratings["split"] == "meta_training"].reset_index(drop=True)
    else:
        train, _test = split_new_users(ratings, new_fraction, seed)  # the test users: never looked at again
    fit, valid = split_new_users(train, new_fraction, seed)
    tasks = [shot_task(valid, n) for n in protocol.shots]
    if all(t.query.empty for t in tasks):
        raise ValueError(f"{data.name}: no validation user to score; each needs more than {min(shots)} "
                         f"interactions ({valid['user_id'].nunique()} validation users)")
    known = set(train["user_id"])
    users = None if data.users is None else data.users[data.users["user_id"].isin(known)].reset_index(drop=True)
    items = [train["item_id"]] + ([data.items["item_id"]] if data.items is not None else [])
    return Validation(Dataset(fit, data.items, users, data.name, data.implicit), valid, tasks,
                      IdMap.from_values(pd.concat(items)), protocol)


def validate(config: Config, validation: Validation) -> list[float]:
    """Fit `config` on the validation split's training users; its nDCG@k on each task (shot count)."""
    model = ColdStartRecommender(config).fit(validation.fit)
    k = validation.protocol.k
    return [float(score_task(model, task, validation.catalogue, validation.protocol, validation.fit.users)[0][
        f"ndcg@{k}"]) for task in validation.tasks]
