"""coldstart.batch: any grouping of users into calls gives in-process `recommend`'s rows; the model is loaded once
per process and again when replaced; Spark and Ray Data (local, on loopback) give the same rows, examples included."""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart import ColdStartRecommender, Config, batch, load_dataset, make_synthetic
from coldstart.evaluation import split_new_users

REPO = Path(__file__).resolve().parents[1]
ML100K = REPO.parent / "shared" / "data" / "ml-100k"
SMALL = Config(embedding_dim=8, hidden=(16, 8), epochs=1, meta_batch_size=16, n_negatives=32, eval_batch_size=8,
               seed=0)
KEYS = ["user_id", "rank"]
RAY_LIMIT_S = 240  # a Ray Data job that starves itself of CPUs waits forever: fail instead
pytestmark = [  # the engines' own warnings under pandas 3 (pyspark 4.3, ray 2.60), not coldstart's
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index is deprecated"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]


def sorted_rows(frame: pd.DataFrame, like: pd.DataFrame | None = None, keys: list[str] = KEYS) -> pd.DataFrame:
    """Rows in (user, rank) order; with `like`, in its column dtypes (engines return arrow or int32 columns)."""
    frame = frame.sort_values(keys, ignore_index=True)
    return frame.astype(like.dtypes.to_dict()) if like is not None else frame


def assert_same_rows(found: pd.DataFrame, expected: pd.DataFrame, keys: list[str] = KEYS) -> None:
    """Same ids and ranks row for row, and scores within float32 rounding (a user's rows arrive in another order)."""
    expected = sorted_rows(expected, keys=keys)
    pd.testing.assert_frame_equal(sorted_rows(found, expected, keys), expected, check_exact=False, rtol=1e-6,
                                  atol=1e-6)


# --- no engine: groupings and the per-process model cache ------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic():
    """120 items and 32 negatives: each user's own negatives matter, and 8 users per batch split every call."""
    data = make_synthetic(n_users=90, n_items=120, ratings_per_user=(6, 15), seed=3)
    new = set(data.ratings["user_id"].unique()[60:])
    train = data.ratings[~data.ratings["user_id"].isin(new)]
    support = data.ratings[data.ratings["user_id"].isin(new)].groupby("user_id", sort=False).head(4)
    return data, train, support.reset_index(drop=True)


@pytest.fixture(scope="module")
def synthetic_model(synthetic, tmp_path_factory):
    data, train, _ = synthetic
    rec = ColdStartRecommender(SMALL).fit(train, items=data.items, users=data.users)
    return rec, rec.save(tmp_path_factory.mktemp("batch") / "model")


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty model cache, and a counter of the models `ColdStartRecommender.load` reads."""
    monkeypatch.setattr(batch, "_MODELS", {})
    loads = []
    real = ColdStartRecommender.load.__func__

    def counting(cls, path, device=None):
        loads.append(Path(path))
        return real(cls, path, device)

    monkeypatch.setattr(ColdStartRecommender, "load", classmethod(counting))
    return loads


def groupings(user_ids: np.ndarray) -> dict[str, list[np.ndarray]]:
    shuffled = np.random.default_rng(0).permutation(user_ids)
    return {"one call": [user_ids], "one user per call": [[u] for u in user_ids],
            "three shuffled calls": np.array_split(shuffled, 3), "interleaved": [user_ids[0::2], user_ids[1::2]]}


@pytest.mark.parametrize("grouping", ["one call", "one user per call", "three shuffled calls", "interleaved"])
def test_any_grouping_of_users_gives_recommend_rows(synthetic, synthetic_model, grouping):
    data, _, support = synthetic
    rec, path = synthetic_model
    expected = rec.recommend(support, k=7, users=data.users)
    parts = [batch.recommend_frame(support[support["user_id"].isin(users)], path, k=7, users=data.users)
             for users in groupings(support["user_id"].unique())[grouping]]
    found = pd.concat(parts, ignore_index=True)
    assert_same_rows(found, expected)
    assert found.groupby("user_id").size().eq(7).all()  # every user answered once, with k rows


def test_predict_frame_per_user_gives_predict_rows(synthetic, synthetic_model):
    _, _, support = synthetic
    rec, path = synthetic_model
    pairs = support.assign(item_id=np.roll(support["item_id"].to_numpy(), 5))[["user_id", "item_id"]]
    expected = rec.predict(support, pairs)
    found = pd.concat([batch.predict_frame(support[support["user_id"] == u], pairs[pairs["user_id"] == u], path)
                       for u in support["user_id"].unique()], ignore_index=True)
    assert_same_rows(found, expected, keys=["user_id", "item_id"])


def test_model_is_loaded_once_per_process(synthetic, synthetic_model, fresh_cache, monkeypatch):
    _, _, support = synthetic
    _, path = synthetic_model
    monkeypatch.chdir(path.parent)
    for same in (path, str(path), f"{path}/", path.name, f"./{path.name}"):
        batch.recommend_frame(support, same, k=3)
    assert fresh_cache == [path.resolve()]


def test_replaced_model_is_loaded_again(synthetic, tmp_path, fresh_cache):
    data, train, support = synthetic
    first = ColdStartRecommender(SMALL).fit(train, items=data.items, users=data.users)
    second = ColdStartRecommender(SMALL.replace(seed=1)).fit(train, items=data.items, users=data.users)
    path = first.save(tmp_path / "model")
    assert_same_rows(batch.recommend_frame(support, path), first.recommend(support))
    second.save(path)  # the same folder now holds another model
    assert_same_rows(batch.recommend_frame(support, path), second.recommend(support))
    batch.recommend_frame(support, path)
    assert len(fresh_cache) == 2
    assert not first.recommend(support).equals(second.recommend(support))  # the two models really differ


def test_whole_users_never_splits_a_user():
    rows = pd.DataFrame({"user_id": list("aaabbbbcdddde"), "item_id": range(13)})
    cuts = [rows.iloc[:2], rows.iloc[2:2], rows.iloc[2:5], rows.iloc[5:6], rows.iloc[6:10], rows.iloc[10:]]
    frames = list(batch.whole_users(cuts))
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), rows)
    owners = [u for frame in frames for u in frame["user_id"].unique()]
    assert sorted(owners) == list("abcde")  # each user in exactly one frame
    assert list(batch.whole_users([rows.iloc[:0]])) == []


def test_empty_calls_and_threads(synthetic_model):
    _, path = synthetic_model
    empty = batch.recommend_frame(pd.DataFrame({"user_id": [], "item_id": [], "rating": []}), path)
    assert list(empty.columns) == list(batch.RECOMMEND_COLUMNS) and empty.empty
    assert batch.predict_frame(pd.DataFrame(columns=["user_id", "item_id"]), pd.DataFrame(
        columns=["user_id", "item_id"]), path).columns.tolist() == list(batch.PREDICT_COLUMNS)
    torch.set_num_threads(2)
    try:
        batch.recommend_frame(pd.DataFrame(), path, threads=None)
        assert torch.get_num_threads() == 2
        batch.recommend_frame(pd.DataFrame(), path)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)


def test_import_loads_no_engine():
    code = "import sys, coldstart.batch; print(sorted(m for m in ('pyspark', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


# --- engines, on MovieLens-100K's newest users ----------------------------------------------------------------
@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    """A one-epoch model of ML-100K's older users, saved; 50 of the newest users' first 5 ratings as support."""
    if not ML100K.exists():
        pytest.skip(f"{ML100K} is absent: the engine tests read ../shared/data beside the repo")
    data = load_dataset(ML100K)
    train, new = split_new_users(data.ratings, new_fraction=0.2, seed=0)
    rec = ColdStartRecommender(Config(epochs=1, embedding_dim=8, hidden=(16, 8), seed=0)).fit(
        train, items=data.items, users=data.users)
    folder = tmp_path_factory.mktemp("ml100k")
    path = rec.save(folder / "model")
    support = new.groupby("user_id", sort=False).head(5)
    support = support[support["user_id"].isin(support["user_id"].unique()[:50])][["user_id", "item_id", "rating"]]
    support = support.sample(frac=1, random_state=0).reset_index(drop=True)  # a user's rows scattered
    return rec, path, support, data.users, folder


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(what: str, started: float) -> None:
    print(f"{what}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


def within(seconds: float, job):
    """job(), or a failure after `seconds` (a pool thread is a daemon: it is left behind; ray.shutdown ends it)."""
    try:
        return ThreadPool(1).apply_async(job).get(seconds)
    except multiprocessing.TimeoutError:
        pytest.fail(f"the job did not finish in {seconds} s (did its actors take every CPU from the shuffle?)")


@pytest.fixture(scope="module")
def spark(ml100k):
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java: no `java` on PATH (e.g. apt-get install openjdk-17-jre-headless)")
    started = time.perf_counter()
    session = example("spark_recommend").session("local[2]")  # the example's own loopback settings
    timed("spark session start", started)
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")  # mapInPandas cuts through users
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_gives_recommend_rows(spark, ml100k):
    rec, path, support, users, _ = ml100k
    frame = spark.createDataFrame(support.merge(users, on="user_id")).repartition(3)  # users spread over all
    started = time.perf_counter()
    found = batch.spark_recommend(frame, path, k=10, user_columns=[c for c in users if c != "user_id"],
                                  partitions=2).toPandas()
    timed("spark scoring (first job)", started)
    assert_same_rows(found, rec.recommend(support, k=10, users=users))


@pytest.mark.slow
def test_spark_worker_keeps_its_model_between_tasks(spark, ml100k):
    path = ml100k[1]

    def probe(batches):  # a nested function: pickled by value, while coldstart.batch is imported in the worker
        for _ in batches:
            yield pd.DataFrame({"pid": [os.getpid()], "model": [id(batch.load_cached(path))]})

    frame = spark.range(4).repartition(2)
    first, second = (frame.mapInPandas(probe, "pid long, model long").toPandas() for _ in range(2))
    both = first.merge(second, on="pid")
    assert len(both) > 0, "Spark started new Python workers for the second job: nothing to compare"
    assert (both["model_x"] == both["model_y"]).all()


@pytest.mark.slow
def test_spark_predict_gives_predict_rows(spark, ml100k):
    rec, path, support, _, _ = ml100k
    pairs = support.assign(item_id=np.roll(support["item_id"].to_numpy(), 7))[["user_id", "item_id"]]
    found = batch.spark_predict(spark.createDataFrame(support), spark.createDataFrame(pairs), path).toPandas()
    assert_same_rows(found, rec.predict(support, pairs), keys=["user_id", "item_id"])


@pytest.mark.slow
def test_spark_example(spark, ml100k):
    rec, path, support, users, folder = ml100k
    support.to_csv(folder / "support.csv", index=False)
    users.to_csv(folder / "users.csv", index=False)
    example("spark_recommend").recommend(spark, str(folder / "support.csv"), str(path), str(folder / "spark_out"),
                                         users=str(folder / "users.csv"), k=5, partitions=2, ship_model=True)
    found = pd.read_parquet(folder / "spark_out")
    assert_same_rows(found, rec.recommend(support, k=5, users=users))


@pytest.fixture(scope="module")
def ray_local(ml100k):
    pytest.importorskip("ray.data", reason="ray[data] is not installed (pip install -e '.[ray]')")
    import ray

    started = time.perf_counter()
    example("ray_recommend").start_ray(num_cpus=2)  # the example's own loopback settings
    timed("ray.init", started)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_recommend_rows(ray_local, ml100k):
    rec, path, support, users, _ = ml100k
    blocks = support.merge(users, on="user_id")
    dataset = ray_local.data.from_pandas([blocks.iloc[i::3] for i in range(3)])  # every user in every block
    started = time.perf_counter()
    recs = batch.ray_recommend(dataset, path, k=10, user_columns=[c for c in users if c != "user_id"],
                               partitions=4, workers=2)  # as many actors as CPUs, at most
    found = within(RAY_LIMIT_S, recs.to_pandas)
    timed("ray scoring (first job)", started)
    assert_same_rows(found, rec.recommend(support, k=10, users=users))


@pytest.mark.slow
def test_ray_example(ray_local, ml100k):
    rec, path, support, _, folder = ml100k
    support.to_csv(folder / "ray_support.csv", index=False)
    within(RAY_LIMIT_S, lambda: example("ray_recommend").recommend(
        str(folder / "ray_support.csv"), str(path), str(folder / "ray_out"), k=5, partitions=3, workers=1))
    assert_same_rows(pd.read_parquet(folder / "ray_out"), rec.recommend(support, k=5))
