"""The evaluation protocol: splits are disjoint, time-ordered and seeded; the report is complete."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from coldstart import Config, make_synthetic
from coldstart.baselines import ItemMeanOffset, Popularity
from coldstart.cli import app
from coldstart.ids import IdMap
from coldstart.evaluation import (Protocol, Task, item_split_scenarios, melu_tasks, run_evaluation, score_task,
                                   shot_task, split_new_users)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=50, n_items=40, ratings_per_user=(4, 12), seed=4)


def test_new_users_are_the_newest_and_disjoint_from_training(data):
    train, new = split_new_users(data.ratings, 0.2, seed=0)
    assert new["user_id"].nunique() == 10
    assert not set(train["user_id"]) & set(new["user_id"])
    assert len(train) + len(new) == len(data.ratings)
    first = data.ratings.groupby("user_id")["timestamp"].min()
    assert first[new["user_id"].unique()].min() >= first[train["user_id"].unique()].max()


def test_splits_are_reproducible_and_random_without_timestamps(data):
    no_time = data.ratings.drop(columns="timestamp")
    a = split_new_users(no_time, 0.3, seed=1)[1]
    b = split_new_users(no_time, 0.3, seed=1)[1]
    c = split_new_users(no_time, 0.3, seed=2)[1]
    pd.testing.assert_frame_equal(a, b)
    assert set(a["user_id"]) != set(c["user_id"])


def test_shot_tasks_take_the_first_n_in_time_and_skip_short_users(data):
    _, new = split_new_users(data.ratings, 0.4, seed=0)
    task = shot_task(new, 5)
    sizes = new.groupby("user_id").size()
    assert task.skipped == int((sizes <= 5).sum())
    for user, sup in task.support.groupby("user_id"):
        query = task.query[task.query["user_id"] == user]
        assert len(sup) == 5 and len(query) == sizes[user] - 5
        assert sup["timestamp"].max() <= query["timestamp"].min()
        assert not set(sup["item_id"]) & set(query["item_id"])


def test_melu_tasks_use_ten_random_query_ratings():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        split = "meta_training" if u < 20 else "user_cold_testing"
        n = 15 if u != 29 else 5  # user 29 has too few ratings for MeLU's protocol
        rows += [{"user_id": str(u), "item_id": str(i), "rating": float(rng.integers(1, 6)), "split": split}
                 for i in rng.choice(50, n, replace=False)]
    train, tasks = melu_tasks(pd.DataFrame(rows), seed=0)
    assert set(train["split"]) == {"meta_training"} and len(tasks) == 1
    task = tasks[0]
    assert task.name == "user_cold_testing" and task.skipped == 1
    assert (task.query.groupby("user_id").size() == 10).all() and (task.support.groupby("user_id").size() == 5).all()


def test_score_task_by_hand():
    """Popularity on a toy task: every metric computed by hand."""
    train = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b", "c"], "item_id": ["1", "2", "3", "1", "2", "1"],
                          "rating": 5.0})
    model = Popularity().fit(train)  # order 1 (3 ratings), 2 (2), 3 (1), 4 (0)
    support = pd.DataFrame({"user_id": ["n"], "item_id": ["1"], "rating": [5.0]})
    query = pd.DataFrame({"user_id": ["n", "n"], "item_id": ["3", "4"], "rating": [5.0, 2.0]})
    row, per_user = score_task(model, Task("1 shot", 1, support, query), IdMap(["1", "2", "3", "4"]), Protocol(k=2))
    # top-2 without the support item: [2, 3]; relevant (>= 4): {3} -> hit at rank 2
    assert row["ndcg@2"] == pytest.approx(1 / np.log2(3))
    assert row["recall@2"] == 1.0 and row["hit@2"] == 1.0 and row["coverage@2"] == 0.5
    # within the query, popularity ranks 3 above 4, matching the ratings: nDCG@1 = 1
    assert row["wq_ndcg@1"] == 1.0
    assert row["wq_ndcg@1_random"] == pytest.approx(((2**5 - 1) + (2**2 - 1)) / 2 / (2**5 - 1))
    assert "mae" not in row
    assert per_user["user_id"].tolist() == ["n"] and per_user["ndcg@2"].iloc[0] == row["ndcg@2"]
    assert "ae_sum" not in per_user
    rated, rated_users = score_task(ItemMeanOffset().fit(train.assign(rating=[5.0, 4.0, 3.0, 5.0, 2.0, 1.0])),
                                    Task("1 shot", 1, support, query), IdMap(["1", "2", "3", "4"]), Protocol(k=2))
    assert rated_users["n_rated"].iloc[0] == 1  # item 4 is unknown to the model: no prediction, not counted
    assert rated_users["ae_sum"].iloc[0] == pytest.approx(rated["mae"])


def test_run_evaluation_gives_new_users_their_features(data):
    """New users bring their features (as at sign-up): every recommend and predict call gets the user table, and
    it holds every new user of the task."""
    calls = []

    class Spy(Popularity):
        def recommend(self, support, k=10, exclude_seen=True, users=None):
            calls.append(("recommend", set(support["user_id"]), users))
            return super().recommend(support, k, exclude_seen, users)

        def predict(self, support, pairs, users=None):
            calls.append(("predict", set(support["user_id"]), users))
            return super().predict(support, pairs, users)

    run_evaluation(data, Config(), Protocol(shots=(1, 3)), systems=[lambda train: {"spy": Spy().fit(train)}])
    assert {c[0] for c in calls} == {"recommend", "predict"} and len(calls) == 4
    for _, new_users, table in calls:
        assert table is not None and new_users <= set(table["user_id"].astype(str))


def test_evaluate_cli_end_to_end(data, tmp_path):
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    data.items.to_csv(tmp_path / "i.csv", index=False)
    (tmp_path / "c.toml").write_text("embedding_dim = 8\nhidden = [8]\nn_negatives = 16\nepochs = 1\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--items", str(tmp_path / "i.csv"),
                                      "--shots", "1,3", "--k", "5", "--config", str(tmp_path / "c.toml"),
                                      "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["paired.csv", "report.csv", "report.json", "report.png",
                                                     "split.csv.gz", "users.csv.gz"]
    rows = pd.read_csv(out / "report.csv")
    systems = {"coldstart", "popularity", "popularity_liked", "popularity_recent", "item_mean", "als", "ease",
               "recent+ease", "network", "network+finetune"}  # no user table: no peers, no "peers+ease"
    assert set(rows["system"]) == systems and set(rows["shots"]) == {1, 3}
    assert rows["ndcg@5"].between(0, 1).all() and rows["mae"].notna().sum() == 2  # only item_mean rates
    meta = json.loads((out / "report.json").read_text())["meta"]
    assert meta["tasks"]["3 shots"]["users"] == 10 - meta["tasks"]["3 shots"]["skipped_users"]
    assert meta["config"]["epochs"] == 1 and "torch" in meta["versions"]
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "== 1 shot" in result.stdout and "popularity" in result.stdout
    # the per-user table reproduces the report's means, and with one seed a paired difference is the difference
    # of the two systems' rows
    users = pd.read_csv(out / "users.csv.gz", dtype={"user_id": str})
    means = users.groupby(["system", "task"])["ndcg@5"].mean()
    by_row = rows.set_index(["system", "task"])["ndcg@5"]
    np.testing.assert_allclose(means.loc[by_row.index], by_row)
    paired = pd.read_csv(out / "paired.csv").set_index(["task", "system", "metric"])
    assert set(paired.index.get_level_values("system")) == systems - {"coldstart"}
    for system in ("network", "popularity"):
        expected = by_row[("coldstart", "3 shots")] - by_row[(system, "3 shots")]
        assert paired.loc[("3 shots", system, "ndcg@5"), "difference"] == pytest.approx(expected)
    assert paired["verdict"].isin(["ahead", "behind", "level"]).all()
    assert "coldstart minus each system" in result.stdout


def test_evaluate_cli_puts_several_learners_in_one_report(data, tmp_path):
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "c.toml").write_text("embedding_dim = 8\nhidden = [8]\nn_negatives = 16\nepochs = 1\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--shots", "3", "--k", "5",
                                      "--learners", "fomaml,reptile", "--config", str(tmp_path / "c.toml"),
                                      "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "report.csv")
    assert {"coldstart", "coldstart:reptile"} <= set(rows["system"])
    meta = json.loads((out / "report.json").read_text())["meta"]
    assert meta["config"]["learner"] == "fomaml"  # the first learner is "coldstart"
    paired = pd.read_csv(out / "paired.csv")
    assert "coldstart:reptile" in set(paired["system"])
    bad = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--learners", "maml,maml", "--quiet"])
    assert bad.exit_code == 2 and "--learners" in bad.stderr
    bad = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--learners", "maml,repitle", "--quiet",
                                   "--output", str(tmp_path / "never")])
    assert bad.exit_code == 1 and "'learner': expected one of" in bad.stderr and not (tmp_path / "never").exists()


def test_evaluate_cli_rejects_bad_shots(data, tmp_path):
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--shots", "1,x", "--quiet"])
    assert result.exit_code == 2 and "--shots" in result.stderr


def test_evaluate_cli_over_several_seeds_reports_every_run_and_mean_sd(data, tmp_path):
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "c.toml").write_text("embedding_dim = 8\nhidden = [8]\nn_negatives = 16\nepochs = 1\n")
    common = [str(tmp_path / "r.csv"), "--shots", "2", "--k", "5", "--config", str(tmp_path / "c.toml"), "--quiet"]
    several = CliRunner().invoke(app, ["evaluate", *common, "--seeds", "0,1", "--output", str(tmp_path / "both")])
    assert several.exit_code == 0, several.output
    single = CliRunner().invoke(app, ["evaluate", *common, "--seed", "1", "--output", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    rows = pd.read_csv(tmp_path / "both" / "report.csv")
    assert sorted(rows["seed"].unique()) == [0, 1] and rows.groupby(["system", "seed"]).size().eq(1).all()
    one = pd.read_csv(tmp_path / "one" / "report.csv").set_index("system")
    again = rows[rows["seed"] == 1].set_index("system")
    for system in ("coldstart", "popularity", "network"):  # the seed-1 run inside equals a run of seed 1 alone
        pd.testing.assert_series_equal(again.loc[system, "ndcg@5":], one.loc[system, "ndcg@5":], check_names=False)
    meta = json.loads((tmp_path / "both" / "report.json").read_text())["meta"]
    assert meta["seeds"] == [0, 1] and [r["seed"] for r in meta["runs"]] == [0, 1]
    assert set(pd.read_csv(tmp_path / "both" / "split.csv.gz")["seed"]) == {0, 1}
    assert "mean ± sd over seeds 0, 1" in several.stdout and " ± " in several.stdout
    both = CliRunner().invoke(app, ["evaluate", *common, "--seeds", "0,1", "--seed", "2"])
    assert both.exit_code == 2 and "--seed and --seeds" in both.stderr


def test_summarise_gives_the_mean_and_sd_over_seeds():
    from coldstart.evaluation import summarise
    rows = pd.DataFrame({"system": ["a", "a", "b", "b"], "task": "1 shot", "shots": 1, "seed": [0, 1, 0, 1],
                         "ndcg@10": [0.2, 0.4, 0.1, 0.1]})
    mean, sd = summarise(rows)
    assert mean["system"].tolist() == ["a", "b"]
    np.testing.assert_allclose(mean["ndcg@10"], [0.3, 0.1])
    np.testing.assert_allclose(sd["ndcg@10"], [np.std([0.2, 0.4], ddof=1), 0.0])
    assert summarise(rows[rows["seed"] == 0])[1] is None


def test_item_split_builds_melus_four_scenarios(data):
    items = data.items.assign(year=np.arange(len(data.items)) % 10 + 1990)  # 1990..1999
    ratings = item_split_scenarios(data.ratings, items, "year", 1998, 0.2, seed=0)
    new_items = set(items.loc[items["year"] >= 1998, "item_id"])
    _, new = split_new_users(data.ratings, 0.2, seed=0)
    new_users = set(new["user_id"])
    expect = {(False, False): {"meta_training", "warm_up"}, (True, False): {"user_cold_testing"},
              (False, True): {"item_cold_testing"}, (True, True): {"user_and_item_cold_testing"}}
    for (is_new_user, is_new_item), group in ratings.groupby(
            [ratings["user_id"].isin(new_users), ratings["item_id"].isin(new_items)]):
        assert set(group["split"]) == expect[(is_new_user, is_new_item)]
    warm = ratings[ratings["split"].isin(["meta_training", "warm_up"])]
    late = warm[warm["split"] == "warm_up"]
    assert len(late) == round(0.2 * len(warm))
    assert late["timestamp"].min() >= warm.loc[warm["split"] == "meta_training", "timestamp"].max()
    with pytest.raises(ValueError, match="expected an item column 'released'"):
        item_split_scenarios(data.ratings, items, "released", 1998, 0.2, seed=0)
    with pytest.raises(ValueError, match="no.*found none|found none"):
        item_split_scenarios(data.ratings, items, "year", 2050, 0.2, seed=0)


def test_evaluate_cli_with_an_item_split_runs_the_scenarios(data, tmp_path):
    short = CliRunner().invoke(app, ["evaluate", str(_write(data, tmp_path)), "--shots", "40", "--quiet"])
    assert short.exit_code == 1 and "no new user to evaluate" in short.stderr
    data = make_synthetic(n_users=60, n_items=40, ratings_per_user=(20, 35), seed=5)
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    data.items.assign(year=np.arange(len(data.items)) % 10 + 1990).to_csv(tmp_path / "i.csv", index=False)
    (tmp_path / "c.toml").write_text("embedding_dim = 8\nhidden = [8]\nn_negatives = 16\nepochs = 1\n")
    args = ["evaluate", str(tmp_path / "r.csv"), "--items", str(tmp_path / "i.csv"), "--config",
            str(tmp_path / "c.toml"), "--output", str(tmp_path / "out"), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--item-split", "year:1996"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "report.json").read_text())["meta"]
    assert meta["protocol"] == "melu" and meta["item_split"] == ["year", 1996.0] and "melu_paper" not in meta
    assert "user_cold_testing" in meta["tasks"] and "MeLU-5 (paper)" not in result.stdout
    bad = CliRunner().invoke(app, [*args, "--item-split", "year"])
    assert bad.exit_code == 2 and "--item-split: expected COLUMN:CUTOFF" in bad.stderr


def _write(data, folder):
    data.ratings.to_csv(folder / "short.csv", index=False)
    return folder / "short.csv"
