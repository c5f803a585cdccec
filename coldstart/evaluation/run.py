"""Every system fitted on the same training split and scored on every task, once per seed, into one Report."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from ..baselines import ALSFoldIn, Blend, EASEFoldIn, FeaturePopularity, ItemMeanOffset, Popularity
from ..config import Config
from ..io import Dataset
from ..ids import IdMap
from ..metrics import (catalog_coverage, mae, random_within_query_ndcg, ranking_metrics, rmse,
                       within_query_ndcg)
from ..recommender import ColdStartRecommender
from .compare import COLUMNS as PAIRED_COLUMNS, paired_differences
from .protocol import (MELU_MAX, MELU_MIN, MELU_PAPER, MELU_SCENARIOS, Protocol, Task, item_split_scenarios,
                       melu_tasks, shot_task, split_new_users)
from .report import split_rows

log = logging.getLogger(__name__)



@dataclass
class Report:
    rows: pd.DataFrame  # one row per (system, task)
    meta: dict = field(default_factory=dict)  # protocol, config, split sizes, timings, versions
    split: pd.DataFrame | None = None  # who was trained on, and every task's support / query rows
    users: pd.DataFrame | None = None  # one row per (system, task, seed, new user): the per-user metrics

    def paired(self, reference: str = "coldstart") -> pd.DataFrame:
        """`reference` minus every other system on the same users, per task and metric (see compare.py)."""
        if self.users is None:
            return pd.DataFrame(columns=PAIRED_COLUMNS)
        k = self.meta.get("k", 10)
        metrics = [f"ndcg@{k}", f"recall@{k}", f"hit@{k}"] + (["mae"] if "ae_sum" in self.users else [])
        return paired_differences(self.users, metrics, reference)


System = Callable[[Dataset], dict]  # train data -> {name: fitted model}


# --- systems ---------------------------------------------------------------------------------------------------
ABLATIONS = {"coldstart:no-time": {"time_aware": False}, "coldstart:no-priors": {"priors": "none"}}
"""coldstart without a part, each paired against the full model in the report (`--ablations`); without meta-learning
it is the "network" system, always there."""


def default_systems(config: Config, on_step: Callable | None = None, learners: list[str] | None = None,
                    teachers: list[str] | None = None, finetune_steps: int = 5, ablations: bool = False
                    ) -> list[System]:
    """coldstart, then the baselines: popularity (of all ratings, of liked ratings on rated data, of liked ratings
    over a recent window of the log when it has timestamps, and among users with the same features when there are
    user features), item mean + user offset, ALS fold-in, EASE fold-in, EASE blended with each popularity prior
    ("recent+ease", "peers+ease"), the same network trained without meta-learning (no adaptation), and that network
    fine-tuned on each support set. EASE's l2, the recent window and the blends' weights are chosen on validation
    users carved from the training users (`baselines/validation.py`), never the new users; the blends share the
    plain "ease" system's fitted weights.

    With `learners`, coldstart is fitted once per learner: the first is "coldstart", the others
    "coldstart:NAME". With `teachers` ("als", "ease" or "none"), the first learner is fitted once per teacher too:
    "coldstart" with the first, "coldstart:teacher=NAME" with the others.

    With `ablations`, coldstart is also fitted without each part of ABLATIONS (time-aware episodes, the priors).

    "network+finetune" takes `finetune_steps` SGD steps; "liked" is `config.positive_rating` throughout."""
    names = learners or [config.learner]
    teacher_names = teachers or []
    if teacher_names:
        config = config.replace(teacher=teacher_names[0])  # "none" is Config's no teacher

    def meta(system: str, learner: str, teacher: str | None, **changes) -> System:  # one system per fit: each
        cfg = config.replace(learner=learner, teacher=teacher, **changes)  #                      timed alone
        return lambda train: {system: ColdStartRecommender(cfg).fit(train, on_step=on_step)}

    def network(train: Dataset) -> dict:
        plain = ColdStartRecommender(config.replace(inner_steps=0)).fit(train, on_step=on_step)
        return {"network": plain, "network+finetune": ColdStartRecommender.sharing_weights(plain, finetune_steps)}

    def simple(train: Dataset) -> dict:  # `train` holds no new user: every `tuned` choice is made on training users
        like = None if train.implicit else config.positive_rating
        liked = [] if like is None else [Popularity(min_rating=like).fit(train)]
        recent = [Popularity.tuned(train, min_rating=like, seed=config.seed)] if "timestamp" in train.ratings else []
        by_features = [FeaturePopularity(min_rating=like).fit(train)] if train.users is not None else []
        ease = EASEFoldIn.tuned(train, seed=config.seed)
        blends = [Blend.tuned(train, prior, ease, seed=config.seed) for prior in (*recent, *by_features)]
        models = (Popularity().fit(train), *liked, *recent, *by_features, ItemMeanOffset().fit(train),
                  ALSFoldIn(seed=config.seed).fit(train), ease, *blends)
        return {m.name: m for m in models}

    per_learner = [meta("coldstart" if j == 0 else f"coldstart:{name}", name, config.teacher)
                   for j, name in enumerate(names)]
    per_teacher = [meta(f"coldstart:teacher={name}", names[0], name) for name in teacher_names[1:]]
    parts = [meta(name, names[0], config.teacher, **changes) for name, changes in ABLATIONS.items()
             if ablations and config.prior_channels()]
    return [*per_learner, *per_teacher, *parts, simple, network]


# --- metrics ---------------------------------------------------------------------------------------------------
def score_task(model, task: Task, catalogue: IdMap, protocol: Protocol, user_features: pd.DataFrame | None = None
               ) -> tuple[dict, pd.DataFrame]:
    """Every metric of one fitted model on one task: (means over users, one row per user). `user_features` holds
    the new users' features (a new user gives them when signing up).

    The per-user table holds the ranking metrics (NaN for a user without relevant items) and, for a model that
    predicts ratings, `ae_sum` / `n_rated` (summed absolute error over the user's query ratings, and their count).
    """
    k = protocol.k
    users = pd.Index(task.query["user_id"].unique())
    recs = model.recommend(task.support, k=k, exclude_seen=True, users=user_features)
    query = task.query
    means, per_user, topk = rank_query(recs, users, query, catalogue, protocol.threshold, k)
    row = {**means, f"coverage@{k}": catalog_coverage(topk, len(catalogue)), "users": len(users),
           "users_with_relevant": int(np.isfinite(per_user[f"ndcg@{k}"]).sum())}
    preds = model.predict(task.support, query[["user_id", "item_id"]], users=user_features)["prediction"].to_numpy()
    ratings = query["rating"].to_numpy()
    if model.rating_predictor:
        ok = np.isfinite(preds)
        row.update(mae=mae(preds[ok], ratings[ok]), rmse=rmse(preds[ok], ratings[ok]))
        errors = pd.DataFrame({"user_id": query["user_id"].to_numpy()[ok], "ae": np.abs(preds[ok] - ratings[ok])})
        by_user = errors.groupby("user_id")["ae"].agg(["sum", "size"]).reindex(users, fill_value=0)
        per_user = per_user.assign(ae_sum=by_user["sum"].to_numpy(float), n_rated=by_user["size"].to_numpy(int))
    row.update(_within_query(query["user_id"].to_numpy(), np.nan_to_num(preds, nan=-np.inf), ratings))
    return row, per_user


def rank_query(recs: pd.DataFrame, users: pd.Index, query: pd.DataFrame, catalogue: IdMap,
               threshold: float | None, k: int) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """nDCG@k, Recall@k and HitRate@k of the top-k lists `recs` (`user_id, rank, item_id`) of `users` against their
    `query` items rated >= `threshold` (every query item with None): (the means over the users with relevant items,
    one row per user, NaN without relevant items; the (U, k) top-k item indices, -1 where a list is short)."""
    topk = np.full((len(users), k), -1, dtype=np.int64)
    topk[users.get_indexer(recs["user_id"]), recs["rank"].to_numpy() - 1] = catalogue.index(recs["item_id"])
    rel = query if threshold is None else query[query["rating"] >= threshold]
    by_user = rel.groupby("user_id")["item_id"].agg(list)
    relevant = [catalogue.index(pd.Series(by_user.get(u, []), dtype=object)) for u in users]
    ranking = ranking_metrics(topk, relevant, k)
    means = {f"ndcg@{k}": np.nanmean(ranking["ndcg"]), f"recall@{k}": np.nanmean(ranking["recall"]),
             f"hit@{k}": np.nanmean(ranking["hit_rate"])}
    per_user = pd.DataFrame({"user_id": users, f"ndcg@{k}": ranking["ndcg"], f"recall@{k}": ranking["recall"],
                             f"hit@{k}": ranking["hit_rate"]})
    return means, per_user, topk


def _within_query(users: np.ndarray, scores: np.ndarray, ratings: np.ndarray) -> dict:
    """MeLU's nDCG@1/@3 within each user's query items (gain 2^r - 1), and a random ranker's expectation."""
    out = {}
    groups = pd.Series(np.arange(len(users))).groupby(users).indices.values()
    for k in (1, 3):
        out[f"wq_ndcg@{k}"] = np.nanmean([within_query_ndcg(scores[g], ratings[g], k) for g in groups])
        out[f"wq_ndcg@{k}_random"] = np.nanmean([random_within_query_ndcg(ratings[g], k) for g in groups])
    return out


# --- the run ---------------------------------------------------------------------------------------------------
def run_evaluation(data: Dataset, config: Config, protocol: Protocol, systems: list[System] | None = None,
                   on_progress: Callable[[str], None] | None = None) -> Report:
    """Split `data`, fit every system on the training part, score each on every task."""
    say = on_progress or (lambda message: None)
    ratings = data.ratings
    if protocol.threshold is not None and data.implicit:
        protocol = replace(protocol, threshold=None)
    if protocol.item_split is not None:
        ratings = item_split_scenarios(ratings, data.items, *protocol.item_split, protocol.new_fraction,
                                       protocol.seed)
    melu = "split" in ratings and ratings["split"].isin(MELU_SCENARIOS).any()
    if melu:
        train, tasks = melu_tasks(ratings, protocol.seed)
    else:
        train, new = split_new_users(ratings, protocol.new_fraction, protocol.seed)
        tasks = [shot_task(new, n) for n in protocol.shots]
    if all(t.query.empty for t in tasks):
        rule = (f"{MELU_MIN}-{MELU_MAX} ratings in a scenario" if melu
                else f"more than {min(protocol.shots)} interactions")
        raise ValueError(f"{data.name}: no new user to evaluate; every task needs users with {rule}")
    catalogue = IdMap.from_values(pd.concat([ratings["item_id"]] + ([data.items["item_id"]] if data.items is not None
                                                                     else [])))
    train_data = Dataset(train, data.items, data.users, data.name, data.implicit)
    rows, per_user, timings = [], [], {}
    for system in systems or default_systems(config):
        start = time.perf_counter()
        models = system(train_data)
        fit_seconds = time.perf_counter() - start
        for name, model in models.items():
            say(f"scoring {name}")
            start = time.perf_counter()
            for task in tasks:
                row, users = score_task(model, task, catalogue, protocol, data.users)
                rows.append({"system": name, "task": task.name, "shots": task.shots, "seed": config.seed, **row})
                per_user.append(users.assign(system=name, task=task.name, seed=config.seed))
            timings[name] = {"fit_s": round(fit_seconds, 2), "score_s": round(time.perf_counter() - start, 2)}
        say(f"fitted and scored {', '.join(models)} in {time.perf_counter() - start + fit_seconds:.1f}s")
    meta = {"dataset": data.name, "protocol": "melu" if melu else "shots", **asdict(protocol),
            "config": config.to_dict(), "train_ratings": len(train), "train_users": int(train["user_id"].nunique()),
            "tasks": {t.name: {"users": int(t.query["user_id"].nunique()), "support_ratings": len(t.support),
                               "query_ratings": len(t.query), "skipped_users": t.skipped} for t in tasks},
            "timings": timings, "versions": _versions()}
    if melu and protocol.item_split is None:  # the paper's figures are for its own split of MovieLens-1M
        meta["melu_paper"] = MELU_PAPER
    users = pd.concat(per_user, ignore_index=True)
    users = users[["system", "task", "seed", *(c for c in users.columns if c not in ("system", "task", "seed"))]]
    return Report(pd.DataFrame(rows), meta, split_rows(train, tasks), users)


def run_seeds(data: Dataset, config: Config, protocol: Protocol, seeds: list[int],
              systems: Callable[[Config], list[System]] | None = None,
              on_progress: Callable[[str], None] | None = None) -> Report:
    """The whole protocol once per seed (the split's and every model's), in one report with a `seed` column.

    Args:
        systems: builds the systems for a config of one seed (default: `default_systems`).
    """
    say = on_progress or (lambda message: None)
    reports = []
    for seed in seeds:
        say(f"seed {seed}")
        cfg = config.replace(seed=seed)
        reports.append(run_evaluation(data, cfg, replace(protocol, seed=seed),
                                      systems(cfg) if systems else None, on_progress))
    return combine_reports(reports)


def combine_reports(reports: list[Report]) -> Report:
    """One report from runs of the same protocol under different seeds: rows and splits stacked (with `seed`),
    meta of the first run plus every run's seed, split sizes and timings."""
    first = reports[0]
    meta = {**first.meta, "seeds": [r.meta["seed"] for r in reports],
            "runs": [{k: r.meta[k] for k in ("seed", "train_ratings", "train_users", "tasks", "timings")}
                     for r in reports]}
    splits = [r.split.assign(seed=r.meta["seed"]) for r in reports if r.split is not None]
    users = [r.users for r in reports if r.users is not None]
    return Report(pd.concat([r.rows for r in reports], ignore_index=True), meta,
                  pd.concat(splits, ignore_index=True) if splits else None,
                  pd.concat(users, ignore_index=True) if users else None)


def _versions() -> dict:
    import implicit
    import torch

    from .. import __version__
    return {"coldstart": __version__, "torch": torch.__version__, "pandas": pd.__version__,
            "numpy": np.__version__, "implicit": implicit.__version__}
