"""Long fits that stop: checkpoints and resume (API and CLI, SIGKILL included), a loss that stops being finite, too
little data, and an unusable --out found before training."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import coldstart.train
from coldstart import CheckpointError, ColdStartRecommender, TrainingDiverged
from coldstart.checkpoint import checkpoint_path
from coldstart.cli import app
from tests.conftest import TINY, support_of

ROOT = Path(__file__).resolve().parents[1]


class Stop(Exception):
    """Stands for a process that dies mid-epoch."""


def stop_at(epoch: int, step: int):
    def on_step(r):
        if (r.epoch, r.step) == (epoch, step):
            raise Stop
    return on_step


def same_weights(a: ColdStartRecommender, b: ColdStartRecommender) -> bool:
    sa, sb = a.net_.state_dict(), b.net_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("every", [1, 2])
def test_a_fit_stopped_mid_epoch_and_resumed_equals_the_uninterrupted_fit(tiny_data, tmp_path, every):
    cfg = TINY.replace(epochs=5)
    whole = ColdStartRecommender(cfg).fit(tiny_data)
    ckpt = tmp_path / "fit.checkpoint.safetensors"
    with pytest.raises(Stop):  # dies in epoch 4 (0-based 3): the last checkpoint is after epoch 3 (every 1) or 2
        ColdStartRecommender(cfg).fit(tiny_data, on_step=stop_at(3, 1), checkpoint=ckpt, checkpoint_every=every)
    resumed = ColdStartRecommender(cfg).fit(tiny_data, checkpoint=ckpt, resume=True)
    assert same_weights(whole, resumed)
    for key in ("epoch_query_loss", "tasks"):
        assert resumed.summary_[key] == whole.summary_[key], key
    # without resume the same checkpoint is ignored (and overwritten): a fresh fit, the same result
    assert same_weights(whole, ColdStartRecommender(cfg).fit(tiny_data, checkpoint=ckpt))


def test_resuming_needs_the_same_data_and_settings(tiny_data, tmp_path):
    cfg = TINY.replace(epochs=3)
    ckpt = tmp_path / "c.safetensors"
    with pytest.raises(Stop):
        ColdStartRecommender(cfg).fit(tiny_data, on_step=stop_at(2, 0), checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="meta_lr: 0.001 then, 0.01 now"):
        ColdStartRecommender(cfg.replace(meta_lr=0.01)).fit(tiny_data, checkpoint=ckpt, resume=True)
    fewer = tiny_data.ratings.iloc[:-1]
    with pytest.raises(CheckpointError, match="other training data"):
        ColdStartRecommender(cfg).fit(fewer, checkpoint=ckpt, resume=True)
    more = ColdStartRecommender(cfg.replace(epochs=4)).fit(tiny_data, checkpoint=ckpt, resume=True)  # may grow
    assert more.summary_["epochs"] == 4 and len(more.summary_["epoch_query_loss"]) == 4
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable coldstart checkpoint"):
        ColdStartRecommender(cfg).fit(tiny_data, checkpoint=ckpt, resume=True)


def test_a_loss_that_stops_being_finite_keeps_the_last_full_epoch(tiny_data, monkeypatch):
    """Epoch 3's first step wrecks the weights and returns NaN: fit stops, says so, and keeps epoch 2's weights,
    which are those of a 2-epoch fit."""
    cfg = TINY.replace(epochs=5)
    two = ColdStartRecommender(cfg.replace(epochs=2)).fit(tiny_data)
    real, calls = coldstart.train.training_step, []
    steps_per_epoch = -(-60 // cfg.meta_batch_size)

    def wrecking_step(net, *args):
        calls.append(1)
        loss = real(net, *args)
        if len(calls) == 2 * steps_per_epoch + 1:
            with torch.no_grad():
                for p in net.parameters():
                    p.fill_(float("nan"))
            return float("nan")
        return loss

    monkeypatch.setattr(coldstart.train, "training_step", wrecking_step)
    rec = ColdStartRecommender(cfg)
    with pytest.raises(TrainingDiverged, match="became nan at epoch 3, step 1; kept the weights of epoch 2"):
        rec.fit(tiny_data)
    assert same_weights(rec, two)
    assert rec.summary_["epoch_query_loss"] == two.summary_["epoch_query_loss"]
    assert np.isfinite(rec.recommend(support_of(tiny_data, ["u1"]))["score"]).all()


def test_too_few_users_to_meta_train_names_the_minimum():
    one_user = pd.DataFrame({"user_id": ["a"] * 5, "item_id": list("vwxyz"), "rating": 4.0})
    with pytest.raises(ValueError, match="at least 2 users with 2 or more interactions; found 1"):
        ColdStartRecommender(TINY).fit(one_user)


# --- the command line -----------------------------------------------------------------------------------------
def run_cli(*args, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "coldstart", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.fixture(scope="module")
def ratings_csv(tiny_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "ratings.csv"
    tiny_data.ratings.to_csv(path, index=False)
    return path


def test_sigkill_mid_fit_keeps_the_old_model_and_resume_finishes_the_fit(ratings_csv, tiny_data, tmp_path):
    common = ["--config", tmp_path / "tiny.toml", "--epochs", "150", "--quiet"]
    (tmp_path / "tiny.toml").write_text("embedding_dim = 8\nhidden = [16, 8]\nmeta_batch_size = 16\n"
                                        "n_negatives = 64\n")
    out, ckpt = tmp_path / "model", checkpoint_path(tmp_path / "model")
    first = run_cli("fit", ratings_csv, "--out", out, *common[:2], "--epochs", "1", "--seed", "3", "--quiet")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    support = support_of(tiny_data, ["u1", "u9"])
    before = ColdStartRecommender.load(out).recommend(support)

    victim = run_cli("fit", ratings_csv, "--out", out, *common)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists() and victim.poll() is None, "the fit ended before its first checkpoint"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    pd.testing.assert_frame_equal(ColdStartRecommender.load(out).recommend(support), before)  # intact

    resumed = run_cli("fit", ratings_csv, "--out", out, *common, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert not ckpt.exists()  # removed once the model is saved
    whole = run_cli("fit", ratings_csv, "--out", tmp_path / "whole", *common)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    assert same_weights(ColdStartRecommender.load(out), ColdStartRecommender.load(tmp_path / "whole"))


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_fit_checks_out_before_training_and_reports_a_diverged_fit(ratings_csv, tmp_path):
    (tmp_path / "file.csv").write_text("x")
    result = invoke("fit", ratings_csv, "--out", tmp_path / "file.csv" / "sub")
    assert result.exit_code == 1 and "is a file and not a folder" in result.stderr
    assert "reading " not in result.stderr  # refused before the data was even read
    config = tmp_path / "wild.toml"
    config.write_text("embedding_dim = 8\nhidden = [16]\nn_negatives = 16\nmeta_lr = 50.0\n")
    result = invoke("fit", ratings_csv, "--out", tmp_path / "m", "--config", config, "--epochs", "3")
    assert result.exit_code == 1 and "became nan" in result.stderr and "saved that model to" in result.stderr
    assert torch.isfinite(ColdStartRecommender.load(tmp_path / "m").net_.item_bias).all()


def test_without_a_terminal_fit_prints_a_plain_line_per_epoch(ratings_csv, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text("embedding_dim = 8\nhidden = [16]\nn_negatives = 16\n")
    result = invoke("fit", ratings_csv, "--out", tmp_path / "m", "--config", config, "--epochs", "3")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3 done", "epoch 2/3 done", "epoch 3/3 done"]
    quiet = invoke("fit", ratings_csv, "--out", tmp_path / "m", "--config", config, "--epochs", "3", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
