"""Multi-process meta-training on CPU (gloo): two processes take the gradient step one process takes on the same
tasks, and `coldstart fit --nproc 2` writes a model that loads and recommends."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from coldstart import ColdStartRecommender, make_synthetic
from coldstart.distributed import current_shard, init_from_env
from coldstart.features import select_rows
from coldstart.fitted import initial_state
from coldstart.frames import check_frame
from coldstart.objectives import shared_negatives
from coldstart.train import sample, training_step
from tests.conftest import TINY, support_of

ROOT = Path(__file__).resolve().parents[1]
WORKER = "import sys; from tests.test_distributed import worker; worker(sys.argv[1], sys.argv[2])"


def one_step_gradients(objective: str) -> dict[str, torch.Tensor]:
    """The gradient of one meta-step on a fixed meta-batch of 30 tasks (Adam with lr 0: the weights stay put), as this
    process sees it after the step: with a process group, its share's gradient summed over the processes."""
    torch.set_num_threads(1)
    data = make_synthetic(n_users=60, n_items=50, ratings_per_user=(6, 15), seed=1)
    config = TINY.replace(objective=objective, meta_batch_size=30)
    state = initial_state(config, check_frame(data.ratings, "ratings"), data.items, data.users)
    rng = np.random.default_rng(7)
    chunk = rng.permutation(60)[:30]
    batch = sample(state.log, chunk, rng, config)
    blank = torch.as_tensor(rng.random(30) < 0.3)
    negatives = shared_negatives(len(state.items), config.n_negatives, rng)
    shard = current_shard()
    if shard is not None:
        rows = torch.as_tensor(shard.rows(30))
        batch, blank = batch.rows(rows), blank[rows]
    optimizer = torch.optim.Adam(state.net.parameters(), lr=0.0)
    training_step(state.net, state.learner, state.objective, batch, select_rows(state.user_feats, batch.users, blank),
                  negatives, optimizer, shard, 30)
    return {name: p.grad.clone() for name, p in state.net.named_parameters()}


def worker(objective: str, out: str) -> None:
    """Run under torchrun: every rank computes its share; rank 0 writes the summed gradients."""
    shard = init_from_env("cpu")
    grads = one_step_gradients(objective)
    if shard.rank == 0:
        save_file(grads, out)
    torch.distributed.destroy_process_group()
    os._exit(0)


def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
def test_two_processes_take_the_gradient_step_of_one(objective, tmp_path):
    out = tmp_path / "grads.safetensors"
    done = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python", sys.executable,
                "-c", WORKER, objective, str(out)])
    assert done.returncode == 0 and out.exists(), done.stderr[-3000:]
    two, one = load_file(out), one_step_gradients(objective)
    assert two.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-7, msg=name)
    assert any(one[name].abs().sum() > 0 for name in one)  # a real gradient, not zeros on both sides


def test_fit_with_two_processes_writes_a_model_that_recommends(tmp_path):
    data = make_synthetic(n_users=60, n_items=50, ratings_per_user=(6, 15), seed=1)
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "tiny.toml").write_text("embedding_dim = 8\nhidden = [16, 8]\nmeta_batch_size = 16\n"
                                        "n_negatives = 64\n")
    done = run(["-m", "coldstart", "fit", str(tmp_path / "r.csv"), "--out", str(tmp_path / "m"), "--config",
                str(tmp_path / "tiny.toml"), "--epochs", "2", "--nproc", "2"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("saved ") == 1 and done.stderr.count("reading ") == 1  # rank 0 alone speaks
    rec = ColdStartRecommender.load(tmp_path / "m")
    assert rec.summary_["tasks"] == 2 * 60  # every task once per epoch, counted once
    recs = rec.recommend(support_of(data, ["u1", "u2"]), k=5)
    assert len(recs) == 10 and np.isfinite(recs["score"]).all()
    single = ColdStartRecommender(TINY.replace(epochs=2)).fit(data.ratings)
    # the same steps as one process, up to float summation order (each task counted once: the loss is not doubled)
    np.testing.assert_allclose(rec.summary_["epoch_query_loss"], single.summary_["epoch_query_loss"], rtol=1e-4)
    ours, theirs = rec.net_.state_dict(), single.net_.state_dict()
    # not the output bias: a softmax ignores a constant shift, so its gradient is float noise around 0, which Adam
    # normalises into steps of either sign
    for name in set(ours) - {"head.b2"}:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-3, atol=1e-5, msg=name)
