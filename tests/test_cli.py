"""The command line end to end through CliRunner, on temporary files; bad input exits 1 with a clear message."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from coldstart import make_synthetic
from coldstart.cli import app

runner = CliRunner()
FAST = ["--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_synthetic(n_users=40, n_items=30, ratings_per_user=(5, 10), seed=2)
    data.ratings.to_csv(root / "ratings.csv", index=False)
    data.items.to_csv(root / "items.csv", index=False)
    data.users.to_csv(root / "users.csv", index=False)
    config = root / "small.toml"
    config.write_text("embedding_dim = 8\nhidden = [16]\nn_negatives = 16\n")
    result = runner.invoke(app, ["fit", str(root / "ratings.csv"), "--items", str(root / "items.csv"), "--users",
                                 str(root / "users.csv"), "--out", str(root / "model"), "--config", str(config), *FAST])
    assert result.exit_code == 0, result.output
    return root, data


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fit_writes_a_model_directory(files):
    root, _ = files
    assert sorted(p.name for p in (root / "model").iterdir()) == ["model.json", "user_history.safetensors", "weights.safetensors"]
    result = invoke("info", "--model", root / "model")
    assert result.exit_code == 0
    assert "items            30" in result.output and "genres (categorical)" in result.output
    assert "config.embedding_dim   8" in result.output
    assert "config.inner_lr        None (auto: 0.1)" in result.output
    assert "config.use_item_ids    None (auto: True)" in result.output
    assert "config.user_bias_scale None (auto: True)" in result.output
    assert "config.dislike_below   None (auto: 3.0)" in result.output  # the middle of the 1-5 scale


def test_recommend_for_a_known_user_as_csv(files):
    root, data = files
    result = invoke("recommend", "--model", root / "model", "--user", "u3", "--k", "4")
    assert result.exit_code == 0, result.output
    recs = pd.read_csv(pd.io.common.StringIO(result.stdout), dtype={"item_id": str})
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"] and len(recs) == 4
    assert not set(recs["item_id"]) & set(data.ratings.loc[data.ratings["user_id"] == "u3", "item_id"])


def test_recommend_for_an_ad_hoc_user_with_titles(files):
    root, data = files
    title = data.items.set_index("item_id").loc["i2", "title"]
    result = invoke("recommend", "--model", root / "model", "--rate", "i1=5", "--rate", f"{title}=1",
                    "--format", "table")
    assert result.exit_code == 0, result.output
    assert "title" in result.stdout and "new-user" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 11  # header + 10 rows


def test_recommend_for_a_file_of_new_users_to_json_and_parquet(files, tmp_path):
    root, data = files
    support = data.ratings.groupby("user_id").head(3)
    support.to_csv(tmp_path / "support.csv", index=False)
    out_json, out_pq = tmp_path / "recs.json", tmp_path / "recs.parquet"
    assert invoke("recommend", "-m", root / "model", "--ratings", tmp_path / "support.csv", "-k", "3",
                  "--output", out_json).exit_code == 0
    assert invoke("recommend", "-m", root / "model", "--ratings", tmp_path / "support.csv", "-k", "3",
                  "--output", out_pq).exit_code == 0
    recs = json.loads(out_json.read_text())
    assert len(recs) == 3 * 40 and set(recs[0]) == {"user_id", "rank", "item_id", "score"}
    assert pd.read_parquet(out_pq)["item_id"].tolist() == [r["item_id"] for r in recs]


def test_predict_writes_every_pair(files, tmp_path):
    root, data = files
    data.ratings.groupby("user_id").head(2).to_csv(tmp_path / "support.csv", index=False)
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i4", "i5"]}).to_csv(tmp_path / "pairs.csv", index=False)
    result = invoke("predict", "-m", root / "model", "--ratings", tmp_path / "support.csv", "--pairs",
                    tmp_path / "pairs.csv", "--format", "csv")
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(preds.columns) == ["user_id", "item_id", "prediction"] and len(preds) == 2


@pytest.mark.parametrize("content, message", [
    ("user_id,item_id,rating\n", "at least one row"),
    ("", "empty"),
    ("user,item_id,rating\n1,2,3\n", "user_id"),
    ("user_id,item_id,rating\n1,2,3\n1,3,abc\n", "line 3"),
    ("user_id,item_id,rating\n1,2,3\n,3,4\n", "line 3"),
])
def test_bad_ratings_exit_1_with_a_message_and_write_nothing(tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    result = invoke("fit", tmp_path / "bad.csv", "--out", tmp_path / "model", *FAST)
    assert result.exit_code == 1
    assert "bad.csv" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "model").exists()


def test_duplicates_are_dropped_with_a_count(tmp_path):
    rows = "user_id,item_id,rating,timestamp\n" + "".join(f"{u},{i},4,{u * 100 + i}\n" for u in range(6) for i in range(5))
    (tmp_path / "dup.csv").write_text(rows + "1,2,1,999999\n1,3,1,0\n")
    result = invoke("fit", tmp_path / "dup.csv", "--out", tmp_path / "model", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "2" in result.stderr and "duplicate" in result.stderr and "dup.csv" in result.stderr


def test_missing_file_and_bad_model_dir_exit_1(tmp_path):
    result = invoke("fit", tmp_path / "nope.csv", "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 1 and "nope.csv" in result.stderr
    result = invoke("recommend", "--model", tmp_path, "--rate", "1=5")
    assert result.exit_code == 1 and "not a coldstart model directory" in result.stderr


def test_bad_config_exits_1(tmp_path, files):
    root, _ = files
    (tmp_path / "c.toml").write_text("inner_lrr = 0.1\n")
    result = invoke("fit", root / "ratings.csv", "--config", tmp_path / "c.toml", "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 1 and "inner_lrr" in result.stderr and not (tmp_path / "m").exists()
    result = invoke("fit", root / "ratings.csv", "--objective", "clicks", "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 1 and "objective" in result.stderr


def test_fit_records_the_learner_and_refuses_an_unknown_one(files, tmp_path):
    root, _ = files
    result = invoke("fit", root / "ratings.csv", "--config", root / "small.toml", "--learner", "reptile", "--out",
                    tmp_path / "m", "--threads", "1", *FAST)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m" / "model.json").read_text())["learner"] == "reptile"
    assert "config.learner         reptile" in invoke("info", "--model", tmp_path / "m").output
    result = invoke("fit", root / "ratings.csv", "--learner", "mamal", "--out", tmp_path / "n", *FAST)
    assert result.exit_code == 1 and "'learner': expected one of maml" in result.stderr
    assert not (tmp_path / "n").exists()


def test_usage_errors_exit_2(files, tmp_path):
    root, _ = files
    assert invoke("recommend", "--model", root / "model").exit_code == 2  # no user given
    result = invoke("recommend", "--model", root / "model", "--user", "u1", "--format", "xml")
    assert result.exit_code == 2 and "xml" in result.stderr


def test_bad_rate_and_unknown_user_exit_1_or_2(files):
    """A malformed option is a usage error (2), like typer's own; an item or user the model lacks is bad input (1)."""
    root, _ = files
    for bad, shown in (("i1=five", "'five'"), ("i1", "expected ITEM=RATING"), ("i1=inf", "finite"),
                       ("i1=nan", "finite"), ("i1=500", "on the model's scale 1 to 5"),
                       ("i1=1e30", "on the model's scale")):
        result = invoke("recommend", "--model", root / "model", "--rate", bad)
        assert result.exit_code == 2 and shown in result.stderr and "np.float64" not in result.stderr, bad
    result = invoke("recommend", "--model", root / "model", "--rate", "Item=5")
    assert result.exit_code == 1 and "matches" in result.stderr
    result = invoke("recommend", "--model", root / "model", "--user", "ghost")
    assert result.exit_code == 1 and "ghost" in result.stderr


def test_failed_recommend_leaves_no_output_file(files, tmp_path):
    root, _ = files
    out = tmp_path / "recs.csv"
    result = invoke("recommend", "--model", root / "model", "--user", "ghost", "--output", out)
    assert result.exit_code == 1 and not out.exists() and not list(tmp_path.iterdir())


def test_fit_with_a_validation_hold_out_says_which_epoch_it_kept(files, tmp_path):
    root, _ = files
    config = tmp_path / "valid.toml"
    config.write_text("embedding_dim = 8\nhidden = [16]\nn_negatives = 16\n")
    result = invoke("fit", root / "ratings.csv", "--out", tmp_path / "model", "--config", config, "--epochs", "2",
                    "--validation-fraction", "0.25")
    assert result.exit_code == 0, result.output
    training = json.loads((tmp_path / "model" / "model.json").read_text())["training"]
    assert training["valid_users"] == 10 and training["train_users"] == 30
    assert len(training["valid_query_loss"]) == 3
    assert f"kept epoch {training['best_epoch']} of 2" in result.output


def test_an_unusable_output_is_refused_before_any_work(files, tmp_path):
    root, _ = files
    for output, message in ((tmp_path, "is a folder"), (tmp_path / "nodir" / "out.csv", "does not exist")):
        result = invoke("recommend", "--model", root / "model", "--rate", "i1=5", "--output", output)
        assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
