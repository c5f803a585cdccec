"""The cold-start evaluation protocol: seeded splits, every system on the same split, one metric implementation.

Two protocols:
    shots  new users = the newest fraction of users by first interaction (random without timestamps); for each N in
           `shots`, support = a new user's first N interactions in time, query = the rest.
    melu   MeLU's four scenarios, when the ratings carry MeLU's `split` column (ml-1m-melu), or built from an item
           date column (`Protocol.item_split`, see `item_split_scenarios`): train on `meta_training`; per scenario
           user (13..100 ratings), 10 random query ratings and the rest as support.
Ranking is over the whole catalogue minus the support items; relevant = query items rated >= threshold.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .baselines import ALSFoldIn, EASEFoldIn, FeaturePopularity, ItemMeanOffset, Popularity
from .compare import COLUMNS as PAIRED_COLUMNS, format_paired, paired_differences
from .config import Config
from .data import Dataset
from .ids import IdMap
from .metrics import (catalog_coverage, mae, random_within_query_ndcg, ranking_metrics, rmse,
                      within_query_ndcg)
from .files import atomic_file
from .recommender import ColdStartRecommender

log = logging.getLogger(__name__)

MELU_SCENARIOS = ("warm_up", "user_cold_testing", "item_cold_testing", "user_and_item_cold_testing")
MELU_PAPER = {"user_cold_testing": {"mae": 0.7854, "wq_ndcg@1": 0.8803, "wq_ndcg@3": 0.8812}}  # MeLU-5, Table 3
MELU_QUERY, MELU_MIN, MELU_MAX = 10, 13, 100
WARM_UP_SHARE = 0.2  # item_split: the newest share of existing users' existing-item ratings, scored as "warm_up"
FINETUNE_STEPS = 5  # SGD steps of the "network+finetune" baseline
LIKED = 4.0  # "popularity_liked" counts ratings >= this


@dataclass(frozen=True)
class Protocol:
    """How new users are split and judged."""

    shots: tuple[int, ...] = (1, 3, 5, 10)
    k: int = 10
    new_fraction: float = 0.2
    threshold: float | None = 4.0  # relevant = query rating >= threshold; None: every query item (implicit data)
    seed: int = 0
    item_split: tuple[str, float] | None = None  # (item column, cutoff): MeLU's scenarios, items >= cutoff are new

    def __post_init__(self) -> None:
        if not self.shots or min(self.shots) < 1:
            raise ValueError(f"--shots: expected positive integers, found {self.shots}")
        if self.k < 1:
            raise ValueError(f"--k: expected a positive integer, found {self.k}")
        if not 0 < self.new_fraction < 1:
            raise ValueError(f"--new-fraction: expected a number in (0, 1), found {self.new_fraction}")


@dataclass
class Task:
    """One evaluation setting: support and query ratings of the new users."""

    name: str  # "1 shot", "5 shots", or a MeLU scenario
    shots: int | None
    support: pd.DataFrame
    query: pd.DataFrame
    skipped: int = 0  # users left out (too few interactions)


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


# --- splits ----------------------------------------------------------------------------------------------------
def time_ordered(ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Ratings grouped by user, each user's rows in time order (a seeded random order without timestamps)."""
    key = ratings["timestamp"] if "timestamp" in ratings else pd.Series(
        np.random.default_rng(seed).random(len(ratings)), index=ratings.index)
    return ratings.assign(_t=key.to_numpy()).sort_values(["user_id", "_t"], kind="stable").drop(columns="_t")


def split_new_users(ratings: pd.DataFrame, new_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, new) ratings: new users are the newest `new_fraction` by first interaction (random without time)."""
    rng = np.random.default_rng(seed)
    users = pd.Index(ratings["user_id"].unique())
    first = (ratings.groupby("user_id")["timestamp"].min().reindex(users).to_numpy() if "timestamp" in ratings
             else np.zeros(len(users)))
    order = np.lexsort((rng.random(len(users)), first))  # oldest first, ties at random
    new = set(users[order[len(users) - round(new_fraction * len(users)):]])
    is_new = ratings["user_id"].isin(new)
    return ratings[~is_new].reset_index(drop=True), time_ordered(ratings[is_new], seed).reset_index(drop=True)


def shot_task(new: pd.DataFrame, shots: int) -> Task:
    """Support = each new user's first `shots` interactions (rows already in time order), query = the rest."""
    rank = new.groupby("user_id", sort=False).cumcount()
    size = new.groupby("user_id", sort=False)["item_id"].transform("size")
    kept = new[size > shots]
    rank = rank[size > shots]
    skipped = new["user_id"].nunique() - kept["user_id"].nunique()
    return Task(f"{shots} shot{'s' if shots > 1 else ''}", shots, kept[rank < shots], kept[rank >= shots], skipped)


def melu_tasks(ratings: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, list[Task]]:
    """MeLU's protocol on ratings with a `split` column: (training ratings, one Task per scenario present)."""
    rng = np.random.default_rng(seed)
    train = ratings[ratings["split"] == "meta_training"].reset_index(drop=True)
    tasks = []
    for scenario in MELU_SCENARIOS:
        rows = ratings[ratings["split"] == scenario]
        size = rows.groupby("user_id")["item_id"].transform("size")
        kept = rows[(size >= MELU_MIN) & (size <= MELU_MAX)]
        if kept.empty:
            continue
        kept = kept.assign(_r=rng.random(len(kept))).sort_values(["user_id", "_r"]).drop(columns="_r")
        is_query = kept.groupby("user_id", sort=False).cumcount() < MELU_QUERY
        skipped = rows["user_id"].nunique() - kept["user_id"].nunique()
        tasks.append(Task(scenario, None, kept[~is_query], kept[is_query], skipped))
    return train, tasks


def item_split_scenarios(ratings: pd.DataFrame, items: pd.DataFrame | None, column: str, cutoff: float,
                         new_fraction: float, seed: int) -> pd.DataFrame:
    """`ratings` with MeLU's `split` column built from an item date column (e.g. the release year).

    New items: `column` >= `cutoff` (a missing value counts as existing). New users: as in `split_new_users`.
    Existing users x existing items are `meta_training`, except the newest WARM_UP_SHARE of those ratings (a seeded
    random share without timestamps), which are `warm_up`; new users x existing items `user_cold_testing`;
    existing users x new items `item_cold_testing`; new users x new items `user_and_item_cold_testing`.
    """
    if items is None or column not in items:
        found = "no item table" if items is None else f"columns {', '.join(map(str, items.columns))}"
        raise ValueError(f"--item-split: expected an item column {column!r}, found {found}")
    values = pd.to_numeric(items[column], errors="coerce")
    new_items = set(items.loc[values >= cutoff, "item_id"].astype(str))
    if not new_items:
        raise ValueError(f"--item-split {column}:{cutoff:g}: expected some items with {column} >= {cutoff:g}, "
                         f"found none (largest: {values.max()})")
    _, new_rows = split_new_users(ratings, new_fraction, seed)
    new_user = ratings["user_id"].isin(set(new_rows["user_id"])).to_numpy()
    new_item = ratings["item_id"].isin(new_items).to_numpy()
    warm = ~new_user & ~new_item
    when = (ratings["timestamp"].to_numpy(np.float64) if "timestamp" in ratings
            else np.random.default_rng(seed).random(len(ratings)))
    late = np.zeros(len(ratings), dtype=bool)
    order = np.flatnonzero(warm)[np.argsort(when[warm], kind="stable")]  # existing x existing, oldest first
    late[order[len(order) - round(WARM_UP_SHARE * len(order)):]] = True
    split = np.select([warm & ~late, warm & late, new_user & ~new_item, ~new_user & new_item],
                      ["meta_training", "warm_up", "user_cold_testing", "item_cold_testing"],
                      "user_and_item_cold_testing")
    return ratings.assign(split=split)


# --- systems ---------------------------------------------------------------------------------------------------
def default_systems(config: Config, on_step: Callable | None = None, learners: list[str] | None = None
                    ) -> list[System]:
    """coldstart, then the baselines: popularity (of all ratings, of liked ratings on rated data, and among users
    with the same features when there are user features), item mean + user offset, ALS fold-in, EASE fold-in (its
    l2 tuned on users carved from the training users), the same network trained without meta-learning (no
    adaptation), and that network fine-tuned on each support set.

    With `learners`, coldstart is fitted once per learner: the first is "coldstart", the others
    "coldstart:NAME"."""
    names = learners or [config.learner]

    def meta(train: Dataset) -> dict:
        return {("coldstart" if j == 0 else f"coldstart:{name}"):
                ColdStartRecommender(config.replace(learner=name)).fit(train, on_step=on_step)
                for j, name in enumerate(names)}

    def network(train: Dataset) -> dict:
        plain = ColdStartRecommender(config.replace(inner_steps=0)).fit(train, on_step=on_step)
        return {"network": plain, "network+finetune": plain.with_adaptation(FINETUNE_STEPS, config.step_size())}

    def simple(train: Dataset) -> dict:
        liked = [] if train.implicit else [Popularity(min_rating=LIKED)]
        by_features = [FeaturePopularity(min_rating=None if train.implicit else LIKED)] if train.users is not None \
            else []
        models = {m.name: m.fit(train) for m in (Popularity(), *liked, *by_features, ItemMeanOffset(),
                                                  ALSFoldIn(seed=config.seed))}
        return {**models, "ease": EASEFoldIn.tuned(train, seed=config.seed)}  # l2 chosen on training users only

    return [meta, simple, network]


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
    topk = np.full((len(users), k), -1, dtype=np.int64)
    topk[users.get_indexer(recs["user_id"]), recs["rank"].to_numpy() - 1] = catalogue.index(recs["item_id"])
    query = task.query
    rel = query if protocol.threshold is None else query[query["rating"] >= protocol.threshold]
    by_user = rel.groupby("user_id")["item_id"].agg(list)
    relevant = [catalogue.index(pd.Series(by_user.get(u, []), dtype=object)) for u in users]
    ranking = ranking_metrics(topk, relevant, k)
    row = {f"ndcg@{k}": np.nanmean(ranking["ndcg"]), f"recall@{k}": np.nanmean(ranking["recall"]),
           f"hit@{k}": np.nanmean(ranking["hit_rate"]), f"coverage@{k}": catalog_coverage(topk, len(catalogue)),
           "users": len(users), "users_with_relevant": int(np.isfinite(ranking["ndcg"]).sum())}
    per_user = pd.DataFrame({"user_id": users, f"ndcg@{k}": ranking["ndcg"], f"recall@{k}": ranking["recall"],
                             f"hit@{k}": ranking["hit_rate"]})
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


def summarise(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Per (task, system), in order of appearance: the mean of every numeric column over seeds, and their standard
    deviation (None for a single seed)."""
    numeric = [c for c in rows.columns if c not in ("system", "task", "shots", "seed")]
    grouped = rows.groupby(["task", "system"], sort=False)[numeric]
    several = "seed" in rows and rows["seed"].nunique() > 1
    return grouped.mean().reset_index(), grouped.std(ddof=1).reset_index() if several else None


def _versions() -> dict:
    import implicit
    import torch

    from . import __version__
    return {"coldstart": __version__, "torch": torch.__version__, "pandas": pd.__version__,
            "numpy": np.__version__, "implicit": implicit.__version__}


# --- report files ----------------------------------------------------------------------------------------------
RANKING_PREFIXES = ("ndcg@", "recall@", "hit@", "coverage@")


def format_table(report: Report) -> str:
    """One block per task: systems as rows, metrics as columns (what the terminal shows)."""
    rows, sd = summarise(report.rows)
    metrics = [c for c in rows.columns if c.startswith(RANKING_PREFIXES) or c in ("mae", "rmse")
               or (c.startswith("wq_ndcg") and not c.endswith("_random"))]
    blocks = []
    for task, group in rows.groupby("task", sort=False):
        table = group.set_index("system")[metrics]
        if sd is not None:  # "mean ± sd" over seeds
            spread = sd[sd["task"] == task].set_index("system")[metrics]
            table = table.combine(spread, lambda m, s: pd.Series(
                [f"{a:.4f} ± {b:.4f}" if np.isfinite(a) else "-" for a, b in zip(m, s)], index=m.index))
        random_ref = "  ".join(f"{c}: {group[c + '_random'].iloc[0]:.4f}" for c in metrics if c.startswith("wq_"))
        info = report.meta.get("tasks", {}).get(task, {})
        head = f"== {task}: {info.get('users', '?')} users ({info.get('skipped_users', 0)} skipped); " \
               f"random ranker within query {random_ref}"
        if sd is not None:
            head += f"\n   mean ± sd over seeds {', '.join(map(str, report.meta.get('seeds', [])))}"
        paper = report.meta.get("melu_paper", {}).get(task)
        if paper:
            head += "\n   MeLU-5 (paper): " + "  ".join(f"{k} {v}" for k, v in paper.items())
        blocks.append(head + "\n" + table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    paired = format_paired(report.paired())
    return "\n\n".join(blocks + ([paired.rstrip("\n")] if paired else [])) + "\n"


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """report.csv, paired.csv, report.json, report.png (and split.csv.gz, users.csv.gz when given) under `out_dir`,
    each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paired = report.paired()
    records = {"meta": report.meta, "rows": json.loads(report.rows.to_json(orient="records")),
               "paired": json.loads(paired.to_json(orient="records"))}
    written = [atomic_file(out_dir / "report.csv", lambda p: report.rows.to_csv(p, index=False)),
               atomic_file(out_dir / "paired.csv", lambda p: paired.to_csv(p, index=False)),
               atomic_file(out_dir / "report.json", lambda p: Path(p).write_text(json.dumps(records, indent=1))),
               atomic_file(out_dir / "report.png", lambda p: plot_report(report, p))]
    if report.users is not None:
        written.append(atomic_file(out_dir / "users.csv.gz", lambda p: report.users.to_csv(
            p, index=False, compression="gzip")))
    if report.split is not None:
        written.append(atomic_file(out_dir / "split.csv.gz", lambda p: report.split.to_csv(p, index=False,
                                                                                       compression="gzip")))
    return written


def plot_report(report: Report, path: str | Path) -> None:
    """Each ranking metric against the task (number of shots, or MeLU scenario), one line per system."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, sd = summarise(report.rows)
    metrics = [c for c in rows.columns if c.startswith(RANKING_PREFIXES)]
    tasks = list(dict.fromkeys(rows["task"]))
    all_shots = report.rows["shots"].notna().all()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for system, group in rows.groupby("system", sort=False):
            values = group.set_index("task").reindex(tasks)[metric].to_numpy()
            err = None if sd is None else sd[sd["system"] == system].set_index("task").reindex(tasks)[metric]
            ax.errorbar(range(len(tasks)), values, yerr=None if err is None else err.to_numpy(), marker="o",
                        capsize=3, label=system)
        ax.set_xticks(range(len(tasks)), [t.replace(" shots", "").replace(" shot", "") for t in tasks],
                      rotation=0 if all_shots else 20)
        ax.set_xlabel("shots (support size)" if all_shots else "scenario")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{report.meta.get('dataset', '')}: new users, ranking over the whole catalogue")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def split_rows(train: pd.DataFrame, tasks: list[Task]) -> pd.DataFrame:
    """The split as a table: training users, and every task's support and query rows."""
    parts = [pd.DataFrame({"task": "", "part": "train", "user_id": train["user_id"].unique(), "item_id": ""})]
    for t in tasks:
        for part, df in (("support", t.support), ("query", t.query)):
            parts.append(pd.DataFrame({"task": t.name, "part": part, "user_id": df["user_id"].to_numpy(),
                                       "item_id": df["item_id"].to_numpy()}))
    return pd.concat(parts, ignore_index=True)
