"""The teacher prior (teacher.py): off, it changes nothing; on, its item factors start the item embeddings and its
distillation term reaches the weights; it is used only in training, so a saved model loads and recommends without
it; bad settings are refused."""
from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import coldstart.teacher as teacher_module
from coldstart import ColdStartRecommender, Config, ConfigError, make_synthetic
from coldstart.cli import app
from coldstart.evaluation import default_systems
from coldstart.features import select_rows
from coldstart.fitted import initial_state
from coldstart.frames import check_frame
from coldstart.objectives import shared_negatives
from coldstart.teacher import (Teacher, batch_distillation, distillation_loss, fit_teacher, interactions, item_init,
                               top_right_singular_vectors)
from coldstart.train import sample
from tests.conftest import TINY, as_format_5, support_of

SMALL = TINY.replace(epochs=1, teacher=None)


def state_of(config, data):
    return initial_state(config, check_frame(data.ratings, "ratings"), data.items, data.users)


def meta_batch(state, n=16):
    rng = np.random.default_rng(0)
    batch = sample(state.log, np.arange(n), rng, state.config)
    return batch, select_rows(state.user_feats, batch.users), shared_negatives(len(state.items), 32, rng)


@pytest.mark.parametrize("change, field", [({"teacher": "xyz"}, "teacher"), ({"teacher": "None"}, "teacher"),
                                           ({"teacher_weight": -0.5}, "teacher_weight"),
                                           ({"teacher_weight": "1"}, "teacher_weight"),
                                           ({"teacher_temperature": 0.0}, "teacher_temperature"),
                                           ({"teacher": "als", "objective": "rating"}, "teacher"),
                                           ({"teacher": "als", "use_item_ids": False}, "teacher")])
def test_config_refuses_bad_teacher_settings_naming_the_field(change, field):
    with pytest.raises(ConfigError, match=f"config field '{field}'"):
        Config(**change)
    Config(teacher="ease", learner="reptile", teacher_weight=0.0)  # initialisation only: legal


def test_auto_is_ease_where_it_applies_and_fits(tiny_data):
    from coldstart.config import TEACHER_MAX_ITEMS
    assert Config().teacher == "auto" and Config().teacher_for(1682) == "ease"
    assert Config().teacher_for(TEACHER_MAX_ITEMS + 1) == "none"  # its items x items matrix would not fit
    assert Config(objective="rating").teacher_for(100) == "none"
    assert Config().teacher_for(100, has_query_loss=False) == "none"
    assert Config(use_item_ids=False).teacher_for(100) == "none"
    assert Config(teacher=None).teacher_for(100) == "none" and Config(teacher="als").teacher_for(10**6) == "als"
    assert state_of(TINY.replace(learner="reptile"), tiny_data).config.teacher == "none"  # no query loss to distil
    default = state_of(TINY, tiny_data)
    assert default.teacher is not None and default.learner.teacher is not None
    assert state_of(TINY.replace(objective="rating"), tiny_data).teacher is None
    fitted = ColdStartRecommender(TINY.replace(epochs=1)).fit(tiny_data)
    assert fitted.summary_["teacher"] == "ease"  # what "auto" became, recorded in model.json (`coldstart info`)


def test_without_a_teacher_training_is_untouched(tiny_data, monkeypatch):
    """teacher=None never calls the teacher's code, and a teacher that does nothing (no init, weight 0) trains to
    the same weights bit for bit: fitting it draws nothing from the training's random streams."""
    def never(*args, **kwargs):
        raise AssertionError("the teacher's code ran without a teacher")
    with monkeypatch.context() as m:
        m.setattr("coldstart.fitted.fit_teacher", never)
        m.setattr("coldstart.learners.base.batch_distillation", never)
        plain = ColdStartRecommender(SMALL).fit(tiny_data)
    with monkeypatch.context() as m:  # a teacher that only starts the item ids (weight 0), kept from doing that
        m.setattr("coldstart.fitted.start_item_ids", lambda net, teacher: None)
        idle = ColdStartRecommender(SMALL.replace(teacher="als", teacher_weight=0.0)).fit(tiny_data)
    a, b = plain.net_.state_dict(), idle.net_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = state_of(SMALL, tiny_data)
    batch, feats, negatives = meta_batch(state)
    assert state.teacher is None and state.learner.teacher is None
    assert torch.equal(state.learner.outer_loss(state.net, state.objective, batch, feats, negatives),
                       state.learner.query_loss(state.net, state.objective, batch, feats, negatives, training=True))


@pytest.mark.parametrize("name", ["als", "ease"])
def test_the_teachers_item_factors_start_the_item_embeddings(name, tiny_data):
    config = SMALL.replace(teacher=name)
    state = state_of(config, tiny_data)
    teacher = fit_teacher(name, state.log, len(state.items), config.seed)
    expected = item_init(teacher, config.embedding_dim)  # (I, D)
    assert expected.shape == (len(state.items), config.embedding_dim)
    assert torch.equal(state.net.item_ids.weight.detach(), expected)
    assert expected.std().item() == pytest.approx(0.1, rel=1e-4)
    untaught = state_of(config.replace(teacher="none"), tiny_data).net.item_ids.weight
    assert not torch.allclose(untaught, expected)
    rest = ["item_bias", "item_weight", "head.w0"]  # nothing else is changed by the teacher
    assert all(torch.equal(state.net.state_dict()[k], state_of(SMALL, tiny_data).net.state_dict()[k]) for k in rest)


def test_item_init_keeps_the_item_item_dot_products_up_to_scale():
    factors = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    mapped = item_init(Teacher(torch.zeros(5, 4), factors), dim=8)  # (I, 4): D > F keeps all F directions
    gram, mapped_gram = factors @ factors.T, (mapped @ mapped.T).double()
    ratio = (mapped_gram.flatten() @ gram.double().flatten()) / (gram.double().flatten() @ gram.double().flatten())
    torch.testing.assert_close(mapped_gram, ratio * gram.double(), rtol=1e-5, atol=1e-6)


def test_ease_teacher_is_the_best_low_rank_approximation_of_its_scores():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((40, 12)) @ np.diag(np.linspace(3, 0.1, 12)) @ np.linalg.qr(
        rng.standard_normal((12, 12)))[0]  # (U, I) with distinct singular values
    v = top_right_singular_vectors(lambda m: s @ m, lambda m: s.T @ m, 12, 3, rng)  # (I, 3)
    exact = np.linalg.svd(s)[2][:3].T
    np.testing.assert_allclose(np.abs(v.T @ exact), np.eye(3), atol=1e-6)


def test_the_teacher_sees_each_logged_pair_once(tiny_data):
    state = state_of(SMALL, tiny_data)
    x = interactions(state.log, len(state.items))
    assert x[1].nnz == len(np.unique(state.log.items[state.log.indptr[1]:state.log.indptr[2]]))
    assert set(x.data) == {1.0} and x.shape == (len(state.users), len(state.items))


def test_distillation_is_zero_when_the_student_is_the_teacher_and_positive_otherwise():
    gen = torch.Generator().manual_seed(0)
    taught = torch.randn(4, 9, generator=gen)  # (B, N)
    mask = torch.rand(4, 9, generator=gen) > 0.3
    mask[:, 0] = True
    same = taught / 0.5 + torch.arange(4.0).unsqueeze(1)  # the teacher's logits plus a per-user constant
    torch.testing.assert_close(distillation_loss(same, taught, mask, 0.5), torch.zeros(4), atol=1e-6, rtol=0)
    other = torch.randn(4, 9, generator=gen)
    assert (distillation_loss(other, taught, mask, 0.5) > 1e-3).all()
    masked_changed = torch.where(mask, same, torch.full_like(same, 50.0))  # masked slots play no part
    torch.testing.assert_close(distillation_loss(masked_changed, taught, mask, 0.5), torch.zeros(4), atol=1e-6,
                               rtol=0)


def test_the_distillation_term_reaches_the_shared_weights(tiny_data):
    """The outer loss is the query loss plus teacher_weight times the distillation term, whose gradient reaches
    the shared weights (through the adaptation steps) non-zero and finite."""
    config = SMALL.replace(teacher="als", teacher_weight=0.7)
    state = state_of(config, tiny_data)
    assert state.learner.teacher is state.teacher is not None
    batch, feats, negatives = meta_batch(state)
    learner, net = state.learner, state.net
    params, proj = learner.adapted(net, state.objective, batch, feats, negatives, training=True)
    taught = batch_distillation(state.teacher, net, params, proj, batch, negatives, config.teacher_temperature)
    assert taught.shape == (len(batch),) and (taught > 0).all()
    outer = learner.outer_loss(net, state.objective, batch, feats, negatives)
    plain = learner.query_loss(net, state.objective, batch, feats, negatives, training=True)
    torch.testing.assert_close(outer, plain + 0.7 * taught)
    shared = {"item_ids.weight": net.item_ids.weight, "item_weight": net.item_weight, "head.w0": net.head["w0"]}
    grads = torch.autograd.grad(taught.sum(), list(shared.values()))
    for name, grad in zip(shared, grads):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_batch_distillation_equals_a_per_user_loop(tiny_data):
    """The batched term and its gradient match KL(p_teacher || p_student) written out user by user over the
    negatives the user has not seen and its query items."""
    config = SMALL.replace(teacher="ease", teacher_temperature=0.3)
    state = state_of(config, tiny_data)
    batch, feats, negatives = meta_batch(state, n=6)
    net, teacher = state.net, state.teacher
    params, proj = state.learner.adapted(net, state.objective, batch, feats, negatives, training=False)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    proj = proj.detach()
    batched = batch_distillation(teacher, net, params, proj, batch, negatives, 0.3)  # (B,)
    loop = []
    for b, user in enumerate(batch.users.tolist()):
        seen = set(batch.support.items[b][batch.support.mask[b]].tolist()) | set(
            batch.query.items[b][batch.query.mask[b]].tolist())
        items = torch.tensor([i for i in negatives.items.tolist() if i not in seen]
                             + batch.query.items[b][batch.query.mask[b]].tolist())  # (N_b,)
        student = net.scores({k: v[b:b + 1] for k, v in params.items()}, proj, items)[0]  # (N_b,)
        p_teacher = torch.softmax(teacher.user_factors[user] @ teacher.item_factors[items].T / 0.3, 0)  # (N_b,)
        loop.append((p_teacher * (p_teacher.log() - torch.log_softmax(student, 0))).sum())
    loop = torch.stack(loop)
    torch.testing.assert_close(batched, loop, rtol=1e-4, atol=1e-6)
    names = ["user", "w0", f"w{net.n_layers - 1}", "log_bias_scale"]
    for name, g, g_loop in zip(names, torch.autograd.grad(batched.sum(), [params[n] for n in names]),
                               torch.autograd.grad(loop.sum(), [params[n] for n in names])):
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(g, g_loop, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", ["als", "ease"])
def test_a_taught_model_saves_and_loads_without_its_teacher(name, tiny_data, tmp_path, monkeypatch):
    rec = ColdStartRecommender(SMALL.replace(teacher=name)).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2", "u5"], n=3)
    recs = rec.recommend(support, k=5)
    path = rec.save(tmp_path / "m")
    assert json.loads((path / "model.json").read_text())["config"]["teacher"] == name

    def never(*args, **kwargs):
        raise AssertionError("loading or recommending refitted the teacher")
    monkeypatch.setattr(teacher_module, "fit_teacher", never)
    monkeypatch.setattr("coldstart.fitted.fit_teacher", never)
    monkeypatch.setattr("implicit.als.AlternatingLeastSquares", never)
    loaded = ColdStartRecommender.load(path)
    assert loaded.state_.teacher is None and loaded.config.teacher == name
    pd.testing.assert_frame_equal(loaded.recommend(support, k=5), recs)


def test_a_model_json_from_before_the_teacher_loads(fitted, tiny_data, tmp_path):
    path = fitted.save(tmp_path / "old")
    meta = as_format_5(json.loads((path / "model.json").read_text()))
    meta["config"] = {k: v for k, v in meta["config"].items() if not k.startswith("teacher")}
    (path / "model.json").write_text(json.dumps(meta))
    loaded = ColdStartRecommender.load(path)
    assert loaded.config.teacher == "none"
    support = support_of(tiny_data, ["u1", "u2"], n=3)
    pd.testing.assert_frame_equal(loaded.recommend(support, k=5), fitted.recommend(support, k=5))


def test_default_systems_fit_one_coldstart_per_teacher(tiny_data):
    systems = default_systems(SMALL, teachers=["none", "ease"])
    fitted = {**systems[0](tiny_data), **systems[1](tiny_data)}
    assert {name: m.config.teacher for name, m in fitted.items()} == {"coldstart": "none",
                                                                     "coldstart:teacher=ease": "ease"}
    with pytest.raises(ConfigError, match="'teacher'"):
        default_systems(SMALL, teachers=["none", "xyz"])


def test_cli_fit_teacher_and_evaluate_teachers(tmp_path):
    data = make_synthetic(n_users=50, n_items=40, ratings_per_user=(4, 12), seed=4)
    data.ratings.to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "c.toml").write_text("embedding_dim = 8\nhidden = [8]\nn_negatives = 16\nepochs = 1\n")
    common = ["--config", str(tmp_path / "c.toml"), "--quiet"]
    fit = CliRunner().invoke(app, ["fit", str(tmp_path / "r.csv"), "--out", str(tmp_path / "m"), "--teacher", "ease",
                                   *common])
    assert fit.exit_code == 0, fit.output
    assert json.loads((tmp_path / "m" / "model.json").read_text())["config"]["teacher"] == "ease"
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--shots", "3", "--k", "5",
                                      "--teachers", "none,als", "--output", str(out), *common])
    assert result.exit_code == 0, result.output
    paired = pd.read_csv(out / "paired.csv")
    assert "coldstart:teacher=als" in set(paired["system"])
    assert json.loads((out / "report.json").read_text())["meta"]["config"]["teacher"] == "none"
    bad = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r.csv"), "--teachers", "none,xyz", "--output",
                                   str(tmp_path / "never"), *common])
    assert bad.exit_code == 1 and "'teacher'" in bad.stderr and not (tmp_path / "never").exists()


def test_no_teacher_survives_a_toml_file(tmp_path):
    """TOML has no null: no teacher is "none", written and read back as such, not as the default "auto"."""
    import tomli_w
    assert Config(teacher=None).teacher == "none"
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(Config(teacher=None, epochs=3).to_toml_dict()))
    assert Config.from_toml(path) == Config(teacher=None, epochs=3)


@pytest.mark.parametrize("users, items", [(30, 80), (80, 30)])
def test_ease_training_scores_are_x_times_b_with_and_without_forming_b(users, items):
    """Fewer users than items: S = X B through Woodbury, no (I, I) matrix; otherwise through B. Both are X B."""
    from coldstart.ease import training_scores
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((users, items)) < 0.2).astype(np.float32))
    p = np.linalg.inv((x.T @ x).toarray().astype(np.float64) + 5.0 * np.eye(items))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    times, times_t = training_scores(x, 5.0)
    m, n = rng.standard_normal((items, 4)), rng.standard_normal((users, 4))
    np.testing.assert_allclose(times(m), x @ b @ m, atol=1e-5)
    np.testing.assert_allclose(times_t(n), (x @ b).T @ n, atol=1e-5)
