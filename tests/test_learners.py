"""Every learner and every legal configuration builds, fits, recommends, saves and loads; each learner trains
differently; a training step is exactly the learner's outer-loss gradient step."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart import ColdStartRecommender, make_synthetic
from coldstart.config import OBJECTIVES
from coldstart.features import select_rows
from coldstart.learners import learner_names
from coldstart.objectives import shared_negatives
from coldstart.fitted import initial_state
from coldstart.frames import check_frame
from coldstart.train import sample, training_step
from tests.conftest import TINY, support_of

SMALL = TINY.replace(epochs=1)


@pytest.fixture(scope="module")
def no_user_features():
    data = make_synthetic(n_users=30, n_items=25, ratings_per_user=(4, 9), seed=4)
    return data.__class__(data.ratings, data.items, None, data.name, data.implicit)


LEARNERS = learner_names()


@pytest.mark.parametrize("objective, learner", list(itertools.product(OBJECTIVES, LEARNERS)))
def test_every_learner_fits_recommends_and_round_trips(objective, learner, tiny_data, tmp_path):
    rec = ColdStartRecommender(SMALL.replace(objective=objective, learner=learner)).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2"], n=3)
    recs = rec.recommend(support, k=5)
    assert len(recs) == 10 and np.isfinite(recs["score"]).all()
    loaded = ColdStartRecommender.load(rec.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.recommend(support, k=5), recs)
    assert loaded.summary_["learner"] == learner


@pytest.mark.parametrize("pool_support, objective, use_item_ids",
                         list(itertools.product([True, False], OBJECTIVES, [True, False, None])))
def test_every_switch_works_without_user_features(pool_support, objective, use_item_ids, no_user_features):
    """Data without user features and no pooled support gives an empty user vector: it must not be adapted (it
    used to crash with an autograd traceback)."""
    cfg = SMALL.replace(pool_support=pool_support, objective=objective, use_item_ids=use_item_ids,
                        teacher="auto" if use_item_ids is not False else "none",
                        learner="maml" if not pool_support else "encoder")
    rec = ColdStartRecommender(cfg).fit(no_user_features)
    recs = rec.recommend(support_of(no_user_features, ["u1"], n=3), k=4)
    assert len(recs) == 4 and np.isfinite(recs["score"]).all()


@pytest.mark.parametrize("learner", [name for name in LEARNERS if name != "maml"])
def test_each_learner_trains_differently_from_maml(learner, tiny_data):
    """Training follows config.learner (a fit that ignored it would equal MAML's)."""
    maml = ColdStartRecommender(SMALL).fit(tiny_data)
    other = ColdStartRecommender(SMALL.replace(learner=learner)).fit(tiny_data)
    shared = ["item_bias", "item_weight", "head.w1"]
    a, b = maml.net_.state_dict(), other.net_.state_dict()
    assert any(not torch.allclose(a[name], b[name]) for name in shared)


@pytest.mark.parametrize("learner", list(LEARNERS))
def test_a_training_step_is_the_learners_outer_gradient_step(learner, tiny_data):
    """One meta-step moves every weight by Adam's first step on the gradient of the learner's outer loss, which
    for fomaml has no second-order terms: computed here by hand, with every inner gradient detached."""
    cfg = SMALL.replace(learner=learner, meta_lr=1e-3, weight_decay=0.0)
    state = initial_state(cfg, check_frame(tiny_data.ratings, "ratings"), tiny_data.items, tiny_data.users)
    net, learner_, objective = state.net, state.learner, state.objective
    rng = np.random.default_rng(0)
    batch = sample(state.log, np.arange(16), rng, cfg)
    feats = select_rows(state.user_feats, batch.users)
    negatives = shared_negatives(len(state.items), cfg.n_negatives, rng)
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(learner_.outer_loss(net, objective, batch, feats, negatives).mean(),
                                list(params.values()), allow_unused=True)
    before = {k: v.detach().clone() for k, v in params.items()}
    training_step(net, learner_, objective, batch, feats, negatives,
                  torch.optim.Adam(net.parameters(), lr=cfg.meta_lr))
    for (name, p), g in zip(params.items(), grads):
        if g is None or not g.abs().max() > 0:
            continue
        step = cfg.meta_lr * torch.sign(g)  # Adam's first step is lr * g / (|g| + eps)
        torch.testing.assert_close(before[name] - p.detach(), step * (g.abs() / (g.abs() + 1e-8)),
                                   rtol=1e-4, atol=1e-7, msg=name)
    if learner == "fomaml":  # its gradient differs from second-order MAML's
        maml = initial_state(cfg.replace(learner="maml"), check_frame(tiny_data.ratings, "ratings"),
                             tiny_data.items, tiny_data.users)
        g2 = torch.autograd.grad(maml.learner.outer_loss(maml.net, objective, batch, feats, negatives).mean(),
                                 maml.net.head["w0"])[0]
        assert not torch.allclose(g2, grads[list(params).index("head.w0")])


HALFSTEP = """
from coldstart.learners.base import Learner


class HalfStep(Learner):
    \"\"\"MAML whose inner steps are half as long.\"\"\"

    name = "halfstep"

    def inner_lr(self, net):
        return self.config.step_size() / 2
"""


def test_a_new_learner_is_one_module(tiny_data, tmp_path, monkeypatch):
    """A module dropped into the learners package is a learner everywhere: listed, fitted, saved and loaded by
    name, and trained as its class says (a seventh learner needs no other file changed)."""
    import coldstart.learners
    (tmp_path / "halfstep.py").write_text(HALFSTEP)
    monkeypatch.setattr(coldstart.learners, "__path__", [*coldstart.learners.__path__, str(tmp_path)])
    assert "halfstep" in learner_names()
    rec = ColdStartRecommender(SMALL.replace(learner="halfstep")).fit(tiny_data)
    support = support_of(tiny_data, ["u1", "u2"], n=3)
    loaded = ColdStartRecommender.load(rec.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.recommend(support, k=5), rec.recommend(support, k=5))
    assert loaded.state_.learner.name == "halfstep" and loaded.summary_["learner"] == "halfstep"
    maml = ColdStartRecommender(SMALL).fit(tiny_data)
    assert not torch.equal(maml.net_.head["w0"], rec.net_.head["w0"])  # it trained as its own class says


def test_a_learner_module_must_hold_one_learner_of_its_name(tmp_path, monkeypatch):
    import coldstart.learners
    from coldstart.learners import learner_class
    (tmp_path / "misnamed.py").write_text(HALFSTEP)  # its class is named "halfstep"
    monkeypatch.setattr(coldstart.learners, "__path__", [*coldstart.learners.__path__, str(tmp_path)])
    with pytest.raises(TypeError, match="misnamed.py: expected one Learner subclass with name = 'misnamed'"):
        learner_class("misnamed")


@pytest.mark.parametrize("learner", LEARNERS)
def test_a_seed_gives_the_same_weights_whatever_torchs_global_random_state(learner, tiny_data):
    """Every parameter, the learner's own included (`Learner.reset`), is drawn from the config's seed."""
    torch.manual_seed(1)
    a = initial_state(SMALL.replace(learner=learner), check_frame(tiny_data.ratings, "ratings"), tiny_data.items,
                      tiny_data.users).net.state_dict()
    torch.manual_seed(2)
    b = initial_state(SMALL.replace(learner=learner), check_frame(tiny_data.ratings, "ratings"), tiny_data.items,
                      tiny_data.users).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fit_settles_every_setting_the_data_decides(tiny_data):
    """The fitted model records the values it used, not "auto" or None: inner_lr, item ids, the teacher, the
    learner's options with their defaults, the objective's thresholds."""
    implicit = ColdStartRecommender(SMALL.replace(learner="proximal", teacher="auto")).fit(tiny_data).state_.config
    assert (implicit.inner_lr, implicit.use_item_ids, implicit.teacher) == (0.1, True, "ease")
    assert implicit.learner_options == {"l2": 1.0} and implicit.dislike_below == 3.0
    rating = ColdStartRecommender(SMALL.replace(objective="rating")).fit(tiny_data).state_.config
    assert (rating.inner_lr, rating.use_item_ids, rating.teacher) == (0.03, False, "none")
