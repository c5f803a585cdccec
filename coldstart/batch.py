"""Scoring inside batch engines (Spark, Ray Data, Dask, ...): pandas in, pandas out, the model loaded once per process.

An engine's only job is to put all of a user's support rows in one call. Which other users share the call does not
matter: each user is adapted on its own support against negatives drawn from a hash of its id, so any grouping of
users into calls gives the rows one in-process `ColdStartRecommender.recommend` gives (scores equal up to float
rounding, ~1e-7, from the batched matmuls). A user's rows keep no order in an engine's shuffle: when a user rates
an item twice and the last rating must win (the `frames` policy), drop the duplicates before the engine.

`spark_recommend` and `ray_recommend` do the grouping; they import nothing from their engine at module import.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .persist import META
from .recommender import ColdStartRecommender
from .streaming import whole_users

RECOMMEND_SCHEMA = "user_id string, rank int, item_id string, score double"  # recommend's columns, as Spark DDL
PREDICT_SCHEMA = "user_id string, item_id string, prediction double"  # predict's columns, as Spark DDL
RECOMMEND_COLUMNS = ("user_id", "rank", "item_id", "score")
PREDICT_COLUMNS = ("user_id", "item_id", "prediction")

_MODELS: dict[Path, tuple[str, ColdStartRecommender]] = {}  # resolved model dir -> (model.json digest, model)
_LOCK = threading.Lock()

ModelDir = str | Path | Callable[[], str | Path]  # a folder, or a function that finds it in the worker


def load_cached(model_dir: ModelDir) -> ColdStartRecommender:
    """The model at `model_dir`, loaded once per process and loaded again when the folder holds another model.

    `model_dir` is a folder, or a function called here that returns it: `functools.partial(SparkFiles.get, "model")`
    finds a folder shipped with `SparkContext.addFile(folder, recursive=True)` on each executor. The check costs one
    read of model.json per call: it records the SHA-256 of every other file, so its own digest names the whole model,
    and `save` replaces it last.
    """
    path = Path(model_dir() if callable(model_dir) else model_dir).resolve()
    stamp = _digest(path / META)  # read before loading: a save in between only costs one more load later
    with _LOCK:
        cached = _MODELS.get(path)
        if cached is None or cached[0] != stamp:
            _MODELS[path] = (stamp, ColdStartRecommender.load(path))
        return _MODELS[path][1]


def _digest(file: Path) -> str:
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return ""  # no model.json: `load` raises the ModelFormatError that says so


def recommend_frame(support: pd.DataFrame, model_dir: ModelDir, k: int = 10, exclude_seen: bool = True,
                    users: pd.DataFrame | None = None, threads: int | None = 1) -> pd.DataFrame:
    """`ColdStartRecommender.recommend` of the model at `model_dir` (cached per process) on these users.

    Args:
        support: every support row (`user_id`, `item_id`, optional `rating`) of the users in this call.
        users: their features (`user_id` + the feature columns the model was trained with), if any.
        threads: torch's CPU threads in this process; None leaves torch's setting alone.
    Returns:
        Columns `user_id, rank, item_id, score`; no rows for an empty `support`.
    """
    rec = _prepared(model_dir, threads)
    if support.empty:
        return _empty(RECOMMEND_COLUMNS)
    return rec.recommend(support, k=k, exclude_seen=exclude_seen, users=users)


def predict_frame(support: pd.DataFrame, pairs: pd.DataFrame, model_dir: ModelDir,
                  users: pd.DataFrame | None = None, threads: int | None = 1) -> pd.DataFrame:
    """`ColdStartRecommender.predict` of the model at `model_dir` (cached per process): columns
    `user_id, item_id, prediction`, one row per pair. A user's support rows and pairs must be in the same call."""
    rec = _prepared(model_dir, threads)
    if pairs.empty:
        return _empty(PREDICT_COLUMNS)
    return rec.predict(support, pairs, users=users)


def _prepared(model_dir: ModelDir, threads: int | None) -> ColdStartRecommender:
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return load_cached(model_dir)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    types = {"rank": "int64", "score": "float64", "prediction": "float64"}
    return pd.DataFrame({c: pd.Series(dtype=types.get(c, object)) for c in columns})


@dataclass(frozen=True)
class RecommendBatch:
    """`recommend_frame` with its settings bound, for an engine to ship to its workers (Ray Data's callable class).

    `user_columns` name support columns that carry each user's features (the same on all its rows).
    """

    model_dir: ModelDir
    k: int = 10
    exclude_seen: bool = True
    user_columns: tuple[str, ...] = ()
    threads: int | None = 1

    def __call__(self, support: pd.DataFrame) -> pd.DataFrame:
        """Top-k of the users in `support`, which holds all of their rows."""
        users = support[["user_id", *self.user_columns]].drop_duplicates("user_id") if self.user_columns else None
        return recommend_frame(support, self.model_dir, self.k, self.exclude_seen, users, self.threads)

    def stream(self, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Spark `mapInPandas`: the batches of one partition, sorted by user_id, to their users' top-k."""
        for support in whole_users(batches):
            yield self(support)


def spark_recommend(support: Any, model_dir: ModelDir, k: int = 10, exclude_seen: bool = True,
                    user_columns: Iterable[str] = (), partitions: int | None = None, threads: int | None = 1) -> Any:
    """Top-k for every user of a Spark DataFrame of support rows, as a Spark DataFrame of `RECOMMEND_SCHEMA`.

    Rows are hash-partitioned by user (`partitions`, else `spark.sql.shuffle.partitions`), sorted by user within
    each partition and scored with `mapInPandas`, many users per call. `model_dir` must be readable on every worker:
    a path on a shared filesystem, or a function that finds a shipped copy (see `load_cached`).
    """
    scorer = RecommendBatch(model_dir, k, exclude_seen, tuple(user_columns), threads)
    by_user = support.repartition(partitions, "user_id") if partitions else support.repartition("user_id")
    return by_user.sortWithinPartitions("user_id").mapInPandas(scorer.stream, RECOMMEND_SCHEMA)


def spark_predict(support: Any, pairs: Any, model_dir: ModelDir, threads: int | None = 1) -> Any:
    """Scores of (user_id, item_id) `pairs`, each user adapted on its rows of `support` (Spark DataFrames), as a
    Spark DataFrame of `PREDICT_SCHEMA`; one call per user (cogrouped `applyInPandas`)."""
    grouped = support.groupBy("user_id").cogroup(pairs.groupBy("user_id"))
    # a partial, not a callable object: pyspark counts an object's `self` and would pass the group key first
    return grouped.applyInPandas(partial(predict_frame, model_dir=model_dir, threads=threads), PREDICT_SCHEMA)


def ray_recommend(support: Any, model_dir: ModelDir, k: int = 10, exclude_seen: bool = True,
                  user_columns: Iterable[str] = (), partitions: int | None = None, workers: int = 1,
                  threads: int | None = 1) -> Any:
    """Top-k for every user of a Ray Dataset of support rows, as a Ray Dataset of recommend's columns.

    Rows are hash-partitioned by user into `partitions` blocks (else the DataContext's
    `default_hash_shuffle_parallelism`) and each block is scored whole (`batch_size=None`) by `workers` actors of
    `RecommendBatch`: the way Ray's own `groupby().map_groups` keeps a group in one call, with many users per call.
    The pool grows from one actor: a fixed pool holding every CPU starves the shuffle before it, and Ray waits forever.
    """
    import ray.data

    partitions = partitions or support.context.default_hash_shuffle_parallelism
    settings = RecommendBatch(model_dir, k, exclude_seen, tuple(user_columns), threads)
    return support.repartition(partitions, keys=["user_id"]).map_batches(
        RecommendBatch, fn_constructor_kwargs=asdict(settings), batch_size=None, batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers))
