"""coldstart tune: the TPE study on validation users carved from the training users, resumable in SQLite; its files
(best.toml read back by Config.from_toml, trials.csv, trials.png); the evaluation's test users never read."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from coldstart import ColdStartRecommender, Config, make_synthetic, tuning
from coldstart.cli import app
from coldstart.config import INNER_LR
from coldstart.errors import TrainingDiverged
from coldstart.evaluation import split_new_users
from coldstart.tuning import HIDDEN, search_space, tune
from tests.conftest import TINY

optuna = pytest.importorskip("optuna")

BASE = TINY.replace(epochs=1)
FIXED = ("epochs", "embedding_dim", "hidden", "n_negatives")  # a tiny network and one epoch: fast trials
FAST = {"seeds_per_trial": 1, "fixed": FIXED}
VALIDATE = "coldstart.tuning.study.validate"  # one fit's validation scores, as the study calls it
runner = CliRunner()


SCRIPT = [0.2, 0.4, 0.3]  # each trial's scripted validation score (its best: trial 1); + 0.01 a shot, + 0.002 a seed


@pytest.fixture(scope="module")
def studied(tiny_data, tmp_path_factory):
    """A study of three trials of two seeds with scripted scores (no training), and the progress lines printed."""
    out, lines, calls = tmp_path_factory.mktemp("tune") / "out", [], []

    def validate(config, validation):
        trial, seed = divmod(len(calls), 2)
        calls.append(config)
        return [SCRIPT[trial] + 0.01 * j + 0.002 * seed for j in range(len(validation.tasks))]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VALIDATE, validate)
        result = tune(tiny_data, BASE, 3, out, on_trial=lines.append, seeds_per_trial=2, fixed=FIXED)
    assert [c.seed for c in calls] == [0, 1] * 3
    return out, result, lines


def test_best_toml_reads_back_as_the_best_trials_config(studied):
    out, result, lines = studied
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["number"]) == [0, 1, 2] and set(trials["state"]) == {"COMPLETE"}
    shots = trials[["ndcg_1", "ndcg_3", "ndcg_5", "ndcg_10"]].to_numpy()
    assert np.allclose(shots, np.array(SCRIPT)[:, None] + [0.001, 0.011, 0.021, 0.031])  # the mean over seeds
    assert np.allclose(trials["value"], shots.mean(1))  # the mean over shots
    assert BASE.replace(**_params(trials.loc[0])) == BASE.replace(inner_lr=BASE.step_size())  # trial 0: the base
    best = trials.loc[1]
    expected = BASE.replace(**_params(best))  # rebuilt from the CSV, not by the module's own search_space
    text = (out / "best.toml").read_text()
    assert Config.from_toml(out / "best.toml") == expected == result.best_config
    assert f"trial 1: validation nDCG@10 {best['value']:.4f}" in text.splitlines()[0]
    assert f"# tuned: {', '.join(tuning.searched(BASE, FIXED))}; the rest as in the base config\n" in text
    assert (result.best_trial, result.best_value) == (1, pytest.approx(best["value"]))
    assert (out / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(lines) == 3 and lines[2].startswith(f"trial 2: {trials['value'][2]:.4f} (best {best['value']:.4f}, "
                                                   f"trial 1) in ")
    assert f"inner_steps={int(trials['inner_steps'][2])}" in lines[2]


def test_a_second_run_adds_trials_to_the_same_study(studied, tiny_data, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(studied[0], out)
    result = tune(tiny_data, BASE, 1, out, seeds_per_trial=2, fixed=FIXED)
    assert list(result.trials["number"]) == [0, 1, 2, 3]
    assert list(pd.read_csv(out / "trials.csv")["number"]) == [0, 1, 2, 3]
    old = pd.read_csv(studied[0] / "trials.csv")
    assert np.allclose(result.trials["value"][:3], old["value"])  # the stored trials, from the same file
    assert result.trials["inner_lr"][3] not in set(old["inner_lr"])  # a new draw, not the first trial again
    assert sorted(p.name for p in out.iterdir()) == ["best.toml", "study.sqlite3", "trials.csv", "trials.png"]


def test_the_files_follow_every_trial_and_the_draws_follow_the_seed(studied, tiny_data, tmp_path, monkeypatch):
    calls = []

    def validate(config, validation):
        calls.append(config)
        if len(calls) == 5:  # the third trial is interrupted
            raise KeyboardInterrupt
        return [0.5] * len(validation.tasks)

    monkeypatch.setattr(VALIDATE, validate)
    with pytest.raises(KeyboardInterrupt):
        tune(tiny_data, BASE, 3, tmp_path, seeds_per_trial=2, fixed=FIXED)
    trials = pd.read_csv(tmp_path / "trials.csv")  # written after trial 1, before the interruption
    assert list(trials["number"]) == [0, 1] and "trial 0: validation" in (tmp_path / "best.toml").read_text()
    first = pd.read_csv(studied[0] / "trials.csv")
    assert _params(trials.loc[1]) == _params(first.loc[1])  # the same seed draws the same configurations


@pytest.mark.parametrize("change, differs", [
    ({"shots": (1, 3)}, "shots [1, 3, 5, 10] there, [1, 3] now"),
    ({"base": BASE.replace(learner="fomaml")}, "learner 'maml' there, 'fomaml' now"),
    ({"base": BASE.replace(meta_batch_size=8)}, "config.meta_batch_size 16 there, 8 now"),
    ({"seeds_per_trial": 1}, "seeds [0, 1] there, [0] now"),
    ({"data": "other"}, "checksum"),
])
def test_a_study_made_for_other_data_or_settings_is_refused(studied, tiny_data, change, differs):
    out = studied[0]
    before = (out / "study.sqlite3").read_bytes()
    kwargs = {"base": BASE, "shots": (1, 3, 5, 10), "seeds_per_trial": 2, "fixed": FIXED, **change}
    data = make_synthetic(n_users=60, n_items=50, ratings_per_user=(6, 15), seed=2) if kwargs.pop("data", None) \
        else tiny_data
    with pytest.raises(ValueError, match="study.sqlite3: the study stored there was made for other data or "
                                         "settings") as exc:
        tune(data, kwargs.pop("base"), 1, out, **kwargs)
    assert differs in str(exc.value)
    assert (out / "study.sqlite3").read_bytes() == before and len(tuning.trials_frame(_load(out))) == 3


def test_the_evaluations_test_users_are_never_read(tiny_data, tmp_path, monkeypatch):
    test_users = set(split_new_users(tiny_data.ratings, 0.2, BASE.seed)[1]["user_id"])
    poison = tiny_data.ratings["user_id"].isin(test_users)
    ratings = tiny_data.ratings.copy()
    ratings.loc[poison, "rating"] = np.nan  # fitting on these rows raises; scoring them gives NaN
    ratings.loc[poison, "item_id"] = "poison"
    poisoned = type(tiny_data)(ratings, tiny_data.items, tiny_data.users, tiny_data.name)
    seen = set()
    real_fit, real_score = ColdStartRecommender.fit, tuning.validation.score_task

    def fit(self, data, *args, **kwargs):
        seen.update(data.ratings["user_id"], data.users["user_id"])
        return real_fit(self, data, *args, **kwargs)

    def score_task(model, task, catalogue, protocol, users=None):
        seen.update(task.support["user_id"], task.query["user_id"], users["user_id"])
        assert "poison" not in catalogue
        return real_score(model, task, catalogue, protocol, users)

    monkeypatch.setattr(ColdStartRecommender, "fit", fit)
    monkeypatch.setattr("coldstart.tuning.validation.score_task", score_task)
    clean = tune(tiny_data, BASE, 1, tmp_path / "clean", **FAST)
    dirty = tune(poisoned, BASE, 1, tmp_path / "dirty", **FAST)
    assert seen and not seen & test_users
    assert dirty.best_value == clean.best_value and math.isfinite(clean.best_value)


def test_on_melus_layout_only_meta_training_rows_are_used(tiny_data):
    users = tiny_data.ratings["user_id"].unique()
    scenario = np.where(np.isin(tiny_data.ratings["user_id"], users[:40]), "meta_training", "user_cold_testing")
    data = type(tiny_data)(tiny_data.ratings.assign(split=scenario), tiny_data.items, tiny_data.users)
    validation = tuning.validation_split(data)
    used = set(validation.fit.ratings["user_id"]) | set(validation.valid["user_id"])
    assert used == set(users[:40]) and len(validation.valid["user_id"].unique()) == 8


def test_a_trial_whose_training_diverges_fails_and_the_study_goes_on(tiny_data, tmp_path, monkeypatch):
    real, calls = tuning.study.validate, []

    def validate(config, validation):
        calls.append(config)
        if len(calls) == 1:
            raise TrainingDiverged("the loss became nan in epoch 1", None)
        return real(config, validation)

    monkeypatch.setattr(VALIDATE, validate)
    lines = []
    result = tune(tiny_data, BASE, 2, tmp_path, on_trial=lines.append, **FAST)
    assert list(result.trials["state"]) == ["FAIL", "COMPLETE"] and result.best_trial == 1
    assert lines[0].startswith("trial 0: fail (the loss became nan in epoch 1)")


def test_the_search_space_keeps_to_its_ranges_and_the_fixed_names():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for base in (Config(), Config(objective="rating", learner="proximal")):
        configs = [search_space(study.ask(), base, fixed=("embedding_dim",)) for _ in range(40)]
        lr = INNER_LR[base.objective]
        assert {c.inner_steps for c in configs} == {1, 2, 3, 4}
        assert all(lr / 10 <= c.inner_lr <= lr * 10 and 1e-4 <= c.meta_lr <= 1e-2 for c in configs)
        assert {c.epochs for c in configs} <= {10, 20, 30, 40} and {c.hidden for c in configs} <= set(HIDDEN.values())
        assert {c.embedding_dim for c in configs} == {base.embedding_dim}
        varied = {name for name in Config().to_dict() if len({repr(getattr(c, name)) for c in configs}) > 1}
        assert ("n_negatives" in varied) == (base.objective == "implicit")
        assert ("learner_options" in varied) == (base.learner == "proximal")  # Proximal.search_space: l2
        assert all(0.1 <= c.learner_options["l2"] <= 10 for c in configs if base.learner == "proximal")
    with pytest.raises(ValueError, match="--fix: 'adapt' not searched"):
        tuning.searched(Config(), fixed=("adapt",))


def test_the_first_trial_tries_the_base_configs_learner_options():
    base_params = tuning.space.base_params
    assert base_params(Config(learner="proximal"))["proximal_l2"] == 1.0  # the learner's default, filled in
    assert base_params(Config(learner="proximal", learner_options={"l2": 2.0}))["proximal_l2"] == 2.0
    assert "proximal_l2" not in base_params(Config(learner="proximal", learner_options={"l2": 20.0}))  # outside


@pytest.mark.parametrize("config", [
    Config(hidden=(64, 32, 8), teacher=None, inner_lr=0.0123456789, meta_lr=1e-05, epochs=7),
    Config(learner="proximal", learner_options={"l2": 1 / 3}, teacher="als", hidden=(16,), use_item_ids=True),
])
def test_best_toml_reads_back_to_the_same_config(config, tmp_path):
    path = tmp_path / "best.toml"
    path.write_text(tuning.best_toml(config, header=["first line", "second: 0.3"]))
    assert Config.from_toml(path) == config  # hidden a tuple again, teacher "none", learner_options a table
    assert path.read_text().startswith("# first line\n# second: 0.3\n\n")


def test_the_cli_writes_the_files_and_refuses_bad_input(tiny_data, tmp_path):
    tiny_data.ratings.to_csv(tmp_path / "ratings.csv", index=False)
    (tmp_path / "small.toml").write_text("embedding_dim = 8\nhidden = [16, 8]\nn_negatives = 64\n"
                                         "meta_batch_size = 16\n")
    args = ["tune", str(tmp_path / "ratings.csv"), "--trials", "2", "--epochs", "1", "--seeds-per-trial", "1",
            "--fix", "embedding_dim,hidden,n_negatives", "--config", str(tmp_path / "small.toml"),
            "--output", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["best.toml", "study.sqlite3", "trials.csv",
                                                                    "trials.png"]
    assert "trial 1: " in result.stderr and result.stdout.count("COMPLETE") == 2
    best = Config.from_toml(tmp_path / "out" / "best.toml")
    assert (best.embedding_dim, best.epochs) == (8, 1)
    refused = runner.invoke(app, [*args[:-2], "--shots", "1,3", "--output", str(tmp_path / "out"), "-q"])
    assert refused.exit_code == 1 and "out/study.sqlite3: the study stored there" in refused.stderr
    assert "shots [1, 3, 5, 10] there, [1, 3] now" in refused.stderr
    missing = runner.invoke(app, ["tune", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o2"), "-q"])
    assert missing.exit_code == 1 and "nope.csv" in missing.stderr and not (tmp_path / "o2").exists()


def test_without_optuna_the_package_imports_and_the_cli_says_what_to_install(monkeypatch, tmp_path):
    code = ("import sys; sys.modules['optuna'] = None; import coldstart.tuning, coldstart.cli; "
            "print(coldstart.tuning.INSTALL)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    result = runner.invoke(app, ["tune", str(tmp_path / "r.csv")])
    assert result.exit_code == 1 and "pip install coldstart-rec[tune]" in result.stderr


def _params(row: pd.Series) -> dict:
    """A trials.csv row's searched params, as Config takes them."""
    params = {k: row[k] for k in tuning.searched(BASE, FIXED)}
    return {**params, "inner_steps": int(params["inner_steps"]), "support_max": int(params["support_max"])}


def _load(out):
    return optuna.load_study(study_name=tuning.STUDY, storage=f"sqlite:///{out / 'study.sqlite3'}")
