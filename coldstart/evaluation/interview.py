"""Simulated onboarding (`coldstart interview-study`): held-out new users are asked N items by each strategy,
answer with their true rating when they rated the item and "not seen" otherwise, and are then recommended the rest.

Protocol, per seed: the newest `new_fraction` of users are new (as in the shots protocol); coldstart is fitted on the
others. Each new user's log is split in time: the first POOL_SHARE of it is what the user knows at sign-up and can
answer from; the rest, what they went on to rate, is the query, the same for every strategy (so strategies are
compared on the same users and the same query: asking about an item removes nothing from it). Questions come one at
a time (coldstart's interview adapts to every answer; the other strategies ask a fixed list): after N of them, the
answers (and the "not seen" ones, as the interview itself uses them) are the support, and the catalogue minus the
answered items is ranked. The same fitted model adapts and ranks for every strategy, so the strategies differ only
in what they ask.

Strategies:
    coldstart  the model's own interview (`ColdStartRecommender.interview`, interview.py)
    popular    the items rated most often in training
    liked      the items rated >= 4 most often in training (rated data only)
    random     a seeded random order of the catalogue per user
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np
import pandas as pd

from ..baselines import Popularity
from ..config import Config
from ..io import Dataset
from ..ids import IdMap
from ..interview import Interviewer, answers_support, check_answers
from ..recommender import ColdStartRecommender
from .protocol import Protocol, split_new_users
from .run import Report, _versions, combine_reports, rank_query

STRATEGIES = ("coldstart", "popular", "liked", "random")
POOL_SHARE = 0.5  # the oldest share of a new user's ratings that the user can answer from; the rest is the query
Strategy = Callable[[pd.DataFrame, list[str], int], pd.DataFrame]  # (answers so far, users, n) -> each user's next
#                                                                    n items (user_id, item_id)


def interview_study(data: Dataset, config: Config, questions: tuple[int, ...] = (3, 5, 10),
                    protocol: Protocol | None = None, strategies: tuple[str, ...] | None = None,
                    settings: Interviewer | None = None, seeds: list[int] | None = None,
                    on_progress: Callable[[str], None] | None = None,
                    model: ColdStartRecommender | None = None, on_step: Callable | None = None,
                    page: int = 1) -> Report:
    """Every strategy's interview of the new users, scored after each number of `questions`, once per seed.

    Returns a Report whose `system` is the strategy, `task` "N questions" and `shots` N, with nDCG/Recall/Hit@k
    and `answered`, the share of questions the users could answer; `Report.paired()` compares them with
    "coldstart" over the same users. `model`: an already fitted model (one seed; it must not have seen the new
    users), instead of fitting one on the training users; `on_step` is the fit's progress callback. `page`: the
    questions asked at once, before the next answers are known (1: each answer changes the next question)."""
    protocol = protocol or Protocol()
    if not questions or min(questions) < 1 or page < 1:
        raise ValueError(f"questions: expected positive numbers of questions and a page size >= 1, found "
                         f"{questions} and {page}")
    reports = [_one_seed(data, config.replace(seed=s), questions, replace(protocol, seed=s), strategies, settings,
                         on_progress or (lambda message: None), model, on_step, page)
               for s in (seeds or [config.seed])]
    return combine_reports(reports)


def _one_seed(data: Dataset, config: Config, questions: tuple[int, ...], protocol: Protocol,
              strategies: tuple[str, ...] | None, settings: Interviewer | None, say: Callable[[str], None],
              model: ColdStartRecommender | None, on_step: Callable | None, page: int) -> Report:
    settings = settings or Interviewer()
    threshold = None if data.implicit else protocol.threshold
    train, new = split_new_users(data.ratings, protocol.new_fraction, protocol.seed)
    start = time.perf_counter()
    rec = model or ColdStartRecommender(config).fit(Dataset(train, data.items, data.users, data.name, data.implicit),
                                                on_step=on_step)
    fit_s = time.perf_counter() - start
    names = [s for s in (strategies or STRATEGIES) if not (s == "liked" and data.implicit)]
    unknown = sorted(set(names) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"interview strategies: expected some of {', '.join(STRATEGIES)}, found {unknown}")
    new = new.assign(user_id=new["user_id"].astype(str), item_id=new["item_id"].astype(str))
    position = new.groupby("user_id", sort=False).cumcount()  # rows are in time order within each user
    size = new.groupby("user_id", sort=False)["item_id"].transform("size")
    known, query = new[position < POOL_SHARE * size], new[position >= POOL_SHARE * size]
    users = [str(u) for u in pd.unique(new["user_id"])]
    history = pd.Series(known["rating"].to_numpy(np.float64),
                        index=pd.MultiIndex.from_arrays([known["user_id"], known["item_id"]]))
    catalogue = IdMap.from_values(pd.concat([data.ratings["item_id"]] + (
        [data.items["item_id"]] if data.items is not None else [])).astype(str))
    rows, per_user, timings = [], [], {}
    for name in names:
        say(f"interviewing {len(users)} new users: {name}")
        start = time.perf_counter()
        ask = _strategy(name, rec, train, data.items, data.users, settings, protocol.seed)
        answers = check_answers(None)
        done = 0
        while done < max(questions):
            step = min(page, min(q for q in questions if q > done) - done)  # a page stops at every checkpoint
            asked = ask(answers, users, step)  # user_id, item_id: the next `step` items of each user
            key = pd.MultiIndex.from_arrays([asked["user_id"], asked["item_id"]])
            answers = pd.concat([answers, asked.assign(rating=history.reindex(key).to_numpy())], ignore_index=True)
            done += step
            if done in questions:
                row, user_rows = _score(rec, answers, users, query, catalogue, data.users, settings, threshold,
                                        protocol.k)
                task = f"{done} question{'s' if done > 1 else ''}"
                rows.append({"system": name, "task": task, "shots": done, "seed": protocol.seed, **row})
                per_user.append(user_rows.assign(system=name, task=task, seed=protocol.seed))
        timings[name] = {"fit_s": round(fit_s, 2), "score_s": round(time.perf_counter() - start, 2)}
    tasks = {f"{n} question{'s' if n > 1 else ''}": {"users": len(users), "skipped_users": 0} for n in questions}
    meta = {"dataset": data.name, "protocol": "interview", "questions": list(questions), "page": page,
            **asdict(protocol),
            "interviewer": asdict(settings), "config": config.to_dict(), "train_ratings": len(train),
            "train_users": int(train["user_id"].nunique()), "tasks": tasks, "timings": timings,
            "versions": _versions()}
    users_table = pd.concat(per_user, ignore_index=True)
    users_table = users_table[["system", "task", "seed", *(c for c in users_table if c not in
                                                           ("system", "task", "seed"))]]
    return Report(pd.DataFrame(rows), meta, None, users_table)


# --- strategies ----------------------------------------------------------------------------------------------------
def _strategy(name: str, rec: ColdStartRecommender, train: pd.DataFrame, items: pd.DataFrame | None,
              user_features: pd.DataFrame | None, settings: Interviewer, seed: int) -> Strategy:
    """The strategy `name` as a function of the answers so far."""
    if name == "coldstart":
        def ask(answers: pd.DataFrame, users: list[str], n: int) -> pd.DataFrame:
            q = rec.interview(answers, n=n, users=user_features, settings=settings, user_ids=users)
            return q[["user_id", "item_id"]]
        return ask
    known = pd.Index(rec.items_.ids(np.arange(len(rec.items_))))
    if name == "random":
        rng = np.random.default_rng(seed)
        return _fixed_lists(lambda users: {u: known[rng.permutation(len(known))] for u in users})
    pop = Popularity(min_rating=None if name == "popular" else rec.config.positive_rating).fit(train, items)
    ranked = pd.Index(pop.items_.ids(np.argsort(-pop.counts_, kind="stable")))  # most first; ties: first seen
    return _fixed_lists(lambda users: dict.fromkeys(users, ranked))


def _fixed_lists(make: Callable[[list[str]], dict[str, pd.Index]]) -> Strategy:
    """A non-adaptive strategy: each user's own fixed list (made on the first call), asked in order."""
    lists: dict[str, pd.Index] = {}

    def ask(answers: pd.DataFrame, users: list[str], n: int) -> pd.DataFrame:
        if not lists:
            lists.update(make(users))
        done = answers.groupby("user_id", sort=False).size()
        picked = [(u, item) for u in users for item in lists[u][int(done.get(u, 0)):int(done.get(u, 0)) + n]]
        return pd.DataFrame(picked, columns=["user_id", "item_id"])
    return ask


# --- scoring -------------------------------------------------------------------------------------------------------
def _score(rec: ColdStartRecommender, answers: pd.DataFrame, users: list[str], query: pd.DataFrame,
           catalogue: IdMap, user_features: pd.DataFrame | None, settings: Interviewer,
           threshold: float | None, k: int) -> tuple[dict, pd.DataFrame]:
    """Adapt on the answers and rank the catalogue minus the answered items; metrics over the users' query."""
    support = answers_support(answers, rec.config.objective, rec.rating_stats_["min"], settings.unseen)
    rated = answers[answers["rating"].notna()]
    n_rated = int(rated.groupby("user_id").size().max()) if len(rated) else 0
    recs = rec.recommend(support, k=k + n_rated, exclude_seen=False, users=user_features, user_ids=users)
    answered = pd.MultiIndex.from_arrays([rated["user_id"], rated["item_id"]])
    recs = recs[~pd.MultiIndex.from_arrays([recs["user_id"], recs["item_id"]]).isin(answered)]
    recs = recs.assign(rank=recs.groupby("user_id", sort=False).cumcount() + 1)
    recs = recs[recs["rank"] <= k]
    index = pd.Index(users)
    means, per_user, _ = rank_query(recs, index, query, catalogue, threshold, k)
    share = answers.assign(ok=answers["rating"].notna()).groupby("user_id")["ok"].mean().reindex(index)
    per_user = per_user.assign(answered=share.to_numpy(float))
    row = {**means, "answered": float(share.mean()), "users": len(users),
           "users_with_relevant": int(np.isfinite(per_user[f"ndcg@{k}"]).sum())}
    return row, per_user
