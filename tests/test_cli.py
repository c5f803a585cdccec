"""The command line end to end through CliRunner, on temporary files; bad input exits 1 with a clear message."""
from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from coldstart import ColdStartRecommender, Config, make_synthetic
from coldstart.cli import app
from coldstart.cli.options import build_config, parse_learner_options
from coldstart.cli.progress import FitProgress, epoch_loss, show_messages
from coldstart.cli.render import article_moved

runner = CliRunner()
FAST = ["--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_synthetic(n_users=40, n_items=30, ratings_per_user=(5, 10), seed=2)
    titles = {"i7": "Matrix, The (1999)", "i8": "Matrix Reloaded, The (2003)"}  # MovieLens moves the article
    data.items["title"] = [titles.get(i, t) for i, t in zip(data.items["item_id"], data.items["title"])]
    featured_only = pd.DataFrame({"item_id": ["i99"], "genres": ["g1"], "title": ["Never Rated (2000)"]})
    data.ratings.to_csv(root / "ratings.csv", index=False)
    pd.concat([data.items, featured_only]).to_csv(root / "items.csv", index=False)
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
    assert "items            31 items in the catalogue (30 rated, 1 with features only)" in result.output
    assert "genres (categorical)" in result.output
    assert "config.embedding_dim   8" in result.output
    assert "config.inner_lr        0.1" in result.output  # settled by fit
    assert "config.dislike_below   3.0" in result.output  # the middle of the 1-5 scale


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


def test_fit_has_no_validation_fraction_option(files, tmp_path):
    root, _ = files
    result = invoke("fit", root / "ratings.csv", "--out", tmp_path / "m", "--validation-fraction", "0.25", *FAST)
    assert result.exit_code == 2 and "--validation-fraction" in result.output and not (tmp_path / "m").exists()


def test_an_unusable_output_is_refused_before_any_work(files, tmp_path):
    root, _ = files
    for output, message in ((tmp_path, "is a folder"), (tmp_path / "nodir" / "out.csv", "does not exist")):
        result = invoke("recommend", "--model", root / "model", "--rate", "i1=5", "--output", output)
        assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output


# --- the command line's own behaviour ------------------------------------------------------------------------
def command(name):
    return typer.main.get_command(app).commands[name]


def test_help_at_80_columns_shows_every_option_name_of_fit_whole():
    result = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}, terminal_width=80)
    assert result.exit_code == 0
    names = [o for p in command("fit").params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]
    assert len(names) > 20
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", result.output), name
    assert max(map(len, result.output.splitlines())) <= 80


def test_epochs_help_shows_the_config_default():
    result = runner.invoke(app, ["fit", "--help"], terminal_width=200)
    line = next(line for line in result.output.splitlines() if "--epochs" in line)
    assert f"[default: {Config().epochs}, or the --config file's]" in line and Config().epochs == 40


def test_the_cli_and_its_help_import_neither_torch_nor_pandas():
    code = "import sys, coldstart.cli; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_learner_option_help_lists_every_learner_and_each_study_takes_the_option():
    from coldstart.learners import learner_names
    for name in ("fit", "evaluate", "interview-study", "tune"):
        (option,) = [p for p in command(name).params if "--learner-option" in p.opts]
        assert all(re.search(rf"\b{learner}\b", option.help) for learner in learner_names()), name
    assert "proximal" in learner_names()


def test_learner_options_fill_the_models_config(files, tmp_path):
    root, _ = files
    result = invoke("fit", root / "ratings.csv", "--config", root / "small.toml", "--learner", "proximal",
                    "--learner-option", "l2=0.5", "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 0, result.output
    assert ColdStartRecommender.load(tmp_path / "m").config.learner_options == {"l2": 0.5}


def test_learner_option_values_are_toml_else_text_and_malformed_ones_are_usage_errors(files, tmp_path):
    assert parse_learner_options(["l2=0.5", "on=true", "sizes=[1, 2]", "name=abc", "text=\"a b\""]) == {
        "l2": 0.5, "on": True, "sizes": [1, 2], "name": "abc", "text": "a b"}
    assert parse_learner_options(["x=1\ny = 2"]) == {"x": "1\ny = 2"}  # one value, never more TOML
    root, _ = files
    for bad in ("l2", "=0.5", "l2=", "l 2=1"):
        result = invoke("fit", root / "ratings.csv", "--learner-option", bad, "--out", tmp_path / "m", *FAST)
        assert result.exit_code == 2 and f"--learner-option {bad!r}" in result.stderr, bad
    result = invoke("fit", root / "ratings.csv", "--learner-option", "l2=1", "--learner-option", "l2=2",
                    "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 2 and "given twice" in result.stderr and not (tmp_path / "m").exists()


def test_learner_options_are_added_to_the_config_files():
    cfg = build_config(None, ["l2=0.5"], learner="proximal")
    assert (cfg.learner, cfg.learner_options) == ("proximal", {"l2": 0.5})


def test_a_title_with_its_article_in_front_finds_the_movielens_title(files):
    root, _ = files
    assert article_moved("The Matrix (1999)") == "Matrix, The (1999)" and article_moved("Matrix") is None
    assert article_moved("A Bug's Life") == "Bug's Life, A"
    result = invoke("recommend", "--model", root / "model", "--rate", "The Matrix (1999)=5", "--format", "csv")
    assert result.exit_code == 0, result.output
    result = invoke("recommend", "--model", root / "model", "--rate", "The Matrix (2000)=5")  # a wrong year
    assert result.exit_code == 1 and "no item has the id or title 'The Matrix (2000)'" in result.stderr
    assert "close titles:\n  i7: Matrix, The (1999)\n" in result.stderr  # the closest first


def test_a_k_above_the_catalogue_is_capped_with_a_note(files):
    root, _ = files
    result = invoke("recommend", "--model", root / "model", "--rate", "i1=5", "--k", "100", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "--k 100 is more than the catalogue holds: capped to 31 items" in result.stderr
    assert "capped" not in invoke("recommend", "--model", root / "model", "--rate", "i1=5", "--k", "31").stderr


def test_fit_and_info_count_items_in_the_same_words_and_fit_shows_its_progress(files, tmp_path):
    root, _ = files
    result = invoke("fit", root / "ratings.csv", "--items", root / "items.csv", "--config", root / "small.toml",
                    "--epochs", "2", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    phrase = "31 items in the catalogue (30 rated, 1 with features only)"
    assert phrase in result.stderr and phrase in invoke("info", "--model", tmp_path / "m").stdout
    assert "epoch 1/2 done: loss" in result.stderr and "epoch 2/2 done: loss" in result.stderr
    assert "reading " in result.stderr and f"saved {tmp_path / 'm'}" in result.stderr


def test_the_library_info_log_shows_on_stderr_as_bare_messages_unless_quiet(capsys):
    for quiet in (False, True):
        show_messages(quiet)
        logging.getLogger("coldstart.teacher").info("fitting the teacher")
        logging.getLogger("coldstart.io").warning("dropped 2 rows")
        logging.getLogger("elsewhere").info("not ours")
        logging.getLogger("coldstart.train").info("epoch 1/2 query loss 0.5")  # FitProgress shows the epochs
        logging.getLogger("coldstart.io").error("broken")
        err = capsys.readouterr().err
        expected = ["broken"] if quiet else ["fitting the teacher", "WARNING: dropped 2 rows", "ERROR: broken"]
        assert err.splitlines() == ([f"ERROR: {e}" for e in expected] if quiet else expected)


def test_the_fit_progress_line_shows_the_epochs_mean_loss(capsys):
    report = SimpleNamespace(epoch=0, epochs=3, step=4, steps_per_epoch=5, loss=9.0, epoch_loss=1.25,
                             tasks_per_s=100.0)
    with FitProgress(False) as on_step:
        on_step(report)
    assert "epoch 1/3 done: loss 1.2500 (epoch mean)" in capsys.readouterr().err
    assert epoch_loss(SimpleNamespace(loss=2.0)) == 2.0  # a StepReport without epoch_loss


def test_without_a_terminal_a_line_comes_every_30_s_of_training(capsys, monkeypatch):
    now = [0.0]
    monkeypatch.setattr("coldstart.cli.progress.time.monotonic", lambda: now[0])
    with FitProgress(False, per_epoch=False) as on_step:
        for step, now[0] in enumerate([100.0, 110.0, 131.0]):  # the first step 100 s in (after the teacher's fit)
            on_step(SimpleNamespace(epoch=0, epochs=1, step=step, steps_per_epoch=10, loss=1.0, epoch_loss=1.0,
                                    tasks_per_s=5.0))
    assert capsys.readouterr().err.splitlines() == ["epoch 1/1 step 3/10: loss 1.0000 (epoch mean), 5 tasks/s"]


def test_interview_names_its_score_column_and_explains_it(files):
    root, _ = files
    result = invoke("interview", "--model", root / "model", "--n", "3", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.StringIO(result.stdout)).columns.tolist() == ["user_id", "rank", "item_id", "log_p_known"]
    help_text = " ".join(invoke("interview", "--help").output.split())
    assert "log_p_known: the adapted model's log-probability that the person knows the item" in help_text
    assert "higher = more likely" in help_text


def test_the_folders_studies_write_by_default_are_named_in_help_and_ignored_by_git():
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()
    for name in ("evaluate", "interview-study", "tune"):
        output = next(p for p in command(name).params if p.name == "output")
        assert f"/{output.default}/" in ignored, name
        assert f"./{output.default} in the working directory" in " ".join(output.help.split()), name


def test_evaluate_has_no_interview_option_and_interview_study_checks_its_questions(files, tmp_path):
    root, _ = files
    result = invoke("evaluate", root / "ratings.csv", "--interview", "3", "--output", tmp_path / "e", *FAST)
    assert result.exit_code == 2 and "--interview" in result.output
    result = invoke("interview-study", root / "ratings.csv", "--questions", "3,0", "--output", tmp_path / "s", *FAST)
    assert result.exit_code == 2 and "--questions: expected integers >= 1" in result.stderr
    result = invoke("interview-study", root / "ratings.csv", "--seed", "1", "--seeds", "1,2", "--output",
                    tmp_path / "s")
    assert result.exit_code == 2 and "--seed and --seeds" in result.stderr and not (tmp_path / "s").exists()


def test_evaluate_checks_every_learners_options_before_any_fit(files, tmp_path):
    root, _ = files
    result = invoke("evaluate", root / "ratings.csv", "--learners", "proximal,maml", "--learner-option", "l2=0.5",
                    "--output", tmp_path / "e", "--epochs", "1")
    assert result.exit_code == 1 and "learner_options" in result.stderr and "'maml'" in result.stderr
    assert "reading" not in result.stderr and not (tmp_path / "e").exists()  # before the data is read
