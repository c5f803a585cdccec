"""Invariants of the inner loop and the meta-gradient, on a tiny network."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart.adapt import adapt
from coldstart.config import Config
from coldstart.features import FeatureEncoder
from coldstart.fitted import build_net
from coldstart.learners import make_learner
from coldstart.model import ColdStartNet
from coldstart.objectives import Negatives, make_objective, shared_negatives
from coldstart.tasks import ItemSet, UserLog, sample_tasks

N_ITEMS, N_USERS = 30, 12


def make_net(objective: str = "implicit", dtype=torch.float32, seed: int = 0, learner: str = "maml"):
    cfg = Config(objective=objective, embedding_dim=4, hidden=(6, 5), inner_lr=0.05, inner_steps=2, n_negatives=10,
                 learner=learner, use_item_ids=True)
    rng = np.random.default_rng(seed)
    genre = rng.integers(3, size=N_ITEMS)
    items = pd.DataFrame({"item_id": [str(i) for i in range(N_ITEMS)], "genre": [f"g{g}" for g in genre]})
    enc = FeatureEncoder.fit(items, "item_id")
    net = build_net(cfg, N_ITEMS, enc, FeatureEncoder.fit(None, "user_id"), enc.transform(items, items.item_id),
                    {"mean": 3.0, "std": 1.0})
    generator = torch.Generator().manual_seed(seed)
    net.reset_parameters(generator)
    make_learner(cfg).reset(net, generator)
    with torch.no_grad():  # non-zero item biases, so that the per-user bias scale takes part in every check
        net.item_bias.copy_(torch.randn(N_ITEMS, generator=torch.Generator().manual_seed(seed + 1)) * 0.5)
    net.to(dtype)
    users = np.repeat(np.arange(N_USERS), 8)
    items_ = np.concatenate([rng.choice(N_ITEMS, 8, replace=False) for _ in range(N_USERS)])
    ratings = rng.integers(1, 6, size=len(users)).astype(np.float32)
    log = UserLog.from_arrays(users, items_, ratings, N_USERS)
    batch = sample_tasks(log, np.arange(N_USERS), rng, 2, 5, 4)
    batch.support_ratings, batch.query_ratings = batch.support_ratings.to(dtype), batch.query_ratings.to(dtype)
    feats = FeatureEncoder.fit(None, "user_id").empty(N_USERS)
    feats.numeric = feats.numeric.to(dtype)
    negatives = shared_negatives(N_ITEMS, cfg.n_negatives, rng)
    return net, cfg, batch, feats, negatives


def parts(net, cfg):
    return make_objective(cfg.objective, cfg.positive_rating, 3.0), make_learner(cfg)


def support_setup(net, cfg, batch, feats, negatives):
    """(item projection, every user's starting parameters, the support loss as a function of the parameters)."""
    objective, learner = parts(net, cfg)
    item_vecs = net.item_vectors()
    proj = net.item_projection(item_vecs)
    start = learner.start(net, feats, item_vecs, batch.support)
    return proj, start, learner.support_loss(net, objective, proj, batch.support, negatives, start)


def task_losses(net, batch, feats, negatives, cfg, steps=None, learner=None) -> torch.Tensor:
    """(B,) query losses after adaptation, differentiable w.r.t. the net (the learner's outer loss)."""
    cfg = cfg.replace(inner_steps=cfg.inner_steps if steps is None else steps, learner=learner or cfg.learner)
    objective, learn = parts(net, cfg)
    return learn.outer_loss(net, objective, batch, feats, negatives)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
def test_zero_inner_steps_returns_the_initialisation(objective):
    net, cfg, batch, feats, neg = make_net(objective)
    _, params, loss = support_setup(net, cfg, batch, feats, neg)
    adapted = adapt(params, net.local_names(), loss, steps=0, lr=cfg.inner_lr)
    for name, p in params.items():
        assert torch.equal(adapted[name], p)
    for name, p in net.head.items():  # the per-user copies are the shared initialisation
        assert torch.equal(adapted[name][3], p)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
def test_one_inner_step_lowers_every_users_support_loss(objective):
    net, cfg, batch, feats, neg = make_net(objective)
    _, params, loss = support_setup(net, cfg, batch, feats, neg)
    before = loss(params).detach()
    after = loss(adapt(params, net.local_names(), loss, steps=1, lr=0.01)).detach()
    assert (after < before).all(), (before, after)


def test_adapt_changes_only_the_named_parameters():
    net, cfg, batch, feats, neg = make_net("implicit")
    with torch.no_grad():
        net.item_bias.copy_(torch.linspace(-1.0, 1.0, N_ITEMS))  # the bias scale moves only with a bias
    _, params, loss = support_setup(net, cfg, batch, feats, neg)
    adapted = adapt(params, ["w2", "b2", "log_bias_scale"], loss, steps=2, lr=0.1)
    assert torch.equal(adapted["w0"], params["w0"]) and torch.equal(adapted["user"], params["user"])
    assert not torch.equal(adapted["w2"], params["w2"]) and not torch.equal(adapted["log_bias_scale"], params["log_bias_scale"])
    head = ["w0", "b0", "w1", "b1", "w2", "b2"]
    assert net.local_names() == head + ["user", "log_bias_scale", "mix"]  # the decision layers, the user, its bias
    #                                                                           scale, the weights of its priors
    assert make_net("rating")[0].local_names() == head + ["user", "mix"]  # no bias scale for ratings


def test_the_bias_scale_starts_at_zero_and_learns_how_much_a_user_follows_popularity():
    """With a zero output layer the score is exp(s_u) * bias(i): a step on a support of the least popular items
    lowers s_u (the user follows popularity less), a support of the most popular items raises it; however far it
    goes, the scale stays positive, so the popularity order is never reversed."""
    net, cfg, batch, feats, neg = make_net("implicit")
    neg = Negatives(torch.arange(N_ITEMS))
    bias = torch.linspace(-2.0, 2.0, N_ITEMS)  # item i's popularity rank is i
    net.start_from_prior(bias)
    item_vecs = net.item_vectors()
    proj = net.item_projection(item_vecs)
    niche, popular = torch.tensor([[0, 1, 2]]), torch.tensor([[N_ITEMS - 1, N_ITEMS - 2, N_ITEMS - 3]])
    items = torch.cat([niche, popular])  # (2, 3): user 0 likes niche items, user 1 popular ones
    support = ItemSet(items, torch.full(items.shape, 5.0), torch.ones_like(items, dtype=torch.bool))
    user_feats = FeatureEncoder.fit(None, "user_id").empty(2)
    start = net.user_params(user_feats, item_vecs, support)
    assert torch.equal(start["log_bias_scale"], torch.zeros(2))
    torch.testing.assert_close(net.scores(start, proj, None), bias.expand(2, -1))  # exp(0) * bias(i) at the start
    objective = make_objective("implicit", 4.0, 3.0)
    loss = lambda p: objective.support_loss(net, p, proj, support, neg, support.seen())  # noqa: E731
    adapted = adapt(start, net.local_names(), loss, steps=1, lr=0.1)
    assert adapted["log_bias_scale"][0] < 0 < adapted["log_bias_scale"][1]
    far = adapt(start, ["log_bias_scale"], loss, steps=50, lr=1.0)  # many large steps of the scale alone
    niche_scores = net.scores(far, proj, None)[0].detach()  # (I,)
    assert far["log_bias_scale"][0] < -1.0  # a linear scale 1 + s would have turned negative here
    assert (niche_scores.diff() >= 0).all()  # still in popularity order, only flatter


def ragged(batch, extra_slot_item: int = 0):
    """The batch with user 0's support cut to one item, so padded slots (item index 0) sit beside real ones."""
    support = batch.support
    mask = support.mask.clone()
    mask[0, 1:] = False
    items = support.items.masked_fill(~mask, extra_slot_item)
    return ItemSet(items, support.ratings, mask)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
@pytest.mark.parametrize("learner", ["maml", "proximal", "encoder"])
def test_batched_adaptation_equals_the_per_user_loop_on_ragged_supports(objective, learner):
    net, cfg, batch, feats, neg = make_net(objective, learner=learner)
    support = ragged(batch)
    assert support.mask.sum(1).unique().numel() > 1  # ragged
    obj, learn = parts(net, cfg)
    item_vecs = net.item_vectors()
    proj = net.item_projection(item_vecs)
    start = learn.start(net, feats, item_vecs, support)
    batched = learn.adapt(net, obj, proj, support, neg, start, training=True)
    batched_scores = net.scores(batched, proj, None)  # (B, I)
    for u in range(N_USERS):
        one = ItemSet(*(t[u:u + 1, : int(support.mask[u].sum())] for t in (support.items, support.ratings,
                                                                              support.mask)))  # no padding
        start_u = learn.start(net, FeatureEncoder.fit(None, "user_id").empty(1), item_vecs, one)
        single = learn.adapt(net, obj, proj, one, neg, start_u, training=True)
        for name in net.local_names():
            torch.testing.assert_close(single[name][0], batched[name][u], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net.scores(single, proj, None)[0], batched_scores[u], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
@pytest.mark.parametrize("learner", ["maml", "metasgd", "proximal", "encoder"])
def test_adaptation_never_sees_the_query(objective, learner):
    """Inside the outer loss, each user's adapted parameters stay exactly the same when every query item and
    rating changes (the query only judges the adapted model; it used to shape the support loss's negatives)."""
    net, cfg, batch, feats, neg = make_net(objective, learner=learner)
    obj, learn = parts(net, cfg)
    seen_adapted = []
    inner = learn.adapt
    learn.adapt = lambda *args, **kw: seen_adapted.append(inner(*args, **kw)) or seen_adapted[-1]
    first = learn.outer_loss(net, obj, batch, feats, neg)
    batch.query_items = (batch.query_items + 7) % N_ITEMS
    batch.query_ratings = 6.0 - batch.query_ratings
    second = learn.outer_loss(net, obj, batch, feats, neg)
    assert len(seen_adapted) == 2
    for name in net.local_names():
        assert torch.equal(seen_adapted[0][name], seen_adapted[1][name]), name
    assert not torch.equal(first, second)  # the query does matter to the outer loss: the check is not vacuous


@pytest.mark.parametrize("objective, learner", [("implicit", "maml"), ("rating", "maml"), ("rating", "metasgd"),
                                                ("implicit", "proximal"), ("implicit", "encoder")])
def test_second_order_meta_gradient_matches_finite_differences(objective, learner):
    net, cfg, batch, feats, neg = make_net(objective, dtype=torch.float64, learner=learner)
    params = dict(net.named_parameters())
    loss = task_losses(net, batch, feats, neg, cfg, steps=2).sum()
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()), allow_unused=True)))
    rng = np.random.default_rng(0)
    eps = 1e-6
    names = ["head.w0", "head.w1", "head.b2", "item_weight", "item_bias", "item_ids.weight"]
    extra = {"metasgd": ["inner_log_lr.w0", "inner_log_lr.user"],
             "encoder": ["set_encoder.phi.0.weight", "set_encoder.rho.1.bias"]}.get(learner, [])
    for name in names + extra:
        p = params[name]
        for flat in rng.choice(p.numel(), min(3, p.numel()), replace=False):
            idx = np.unravel_index(flat, p.shape)
            up, down = shifted_loss(net, p, idx, eps, batch, feats, neg, cfg), \
                shifted_loss(net, p, idx, -eps, batch, feats, neg, cfg)
            numeric = (up - down) / (2 * eps)
            assert grads[name][idx].item() == pytest.approx(numeric, rel=1e-4, abs=1e-7), name


def shifted_loss(net, p, idx, delta, batch, feats, neg, cfg) -> float:
    """The summed query loss with one parameter entry moved by `delta` (then restored)."""
    with torch.no_grad():
        p[idx] += delta
    value = task_losses(net, batch, feats, neg, cfg, steps=2).sum().item()
    with torch.no_grad():
        p[idx] -= delta
    return value


def test_second_order_differs_from_first_order():
    net, cfg, batch, feats, neg = make_net("rating", dtype=torch.float64)
    w0 = net.head["w0"]
    g2 = torch.autograd.grad(task_losses(net, batch, feats, neg, cfg, learner="maml").sum(), w0)[0]
    g1 = torch.autograd.grad(task_losses(net, batch, feats, neg, cfg, learner="fomaml").sum(), w0)[0]
    assert not torch.allclose(g1, g2)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
def test_first_order_equals_the_detached_computation(objective):
    net, cfg, batch, feats, neg = make_net(objective, dtype=torch.float64, learner="fomaml")
    params = list(net.parameters())
    fo = torch.autograd.grad(task_losses(net, batch, feats, neg, cfg).sum(), params, allow_unused=True)
    # By hand: inner gradients computed on a detached graph, then treated as constants.
    proj, local, loss = support_setup(net, cfg, batch, feats, neg)
    names = net.local_names()
    for _ in range(cfg.inner_steps):
        with torch.enable_grad():
            detached = {k: (v.detach().requires_grad_() if k in names else v) for k, v in local.items()}
            g = torch.autograd.grad(loss(detached).sum(), [detached[n] for n in names])
        step = local["step"]  # (B,) the gate's multiplier of each user's step size
        local = {**local, **{n: local[n] - cfg.inner_lr * step.view(-1, *[1] * (gi.dim() - 1)) * gi.detach()
                             for n, gi in zip(names, g)}}
    objective_ = parts(net, cfg)[0]
    seen = torch.cat([batch.support.seen(), batch.query.seen()], 1)
    manual = torch.autograd.grad(objective_.query_loss(net, local, proj, batch.query, neg, seen).sum(), params,
                                 allow_unused=True)
    for a, b in zip(fo, manual):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b)


def test_reptile_moves_the_initialisation_toward_the_adapted_parameters():
    """Reptile's meta-gradient of an adapted tensor is the mean over users of (theta - phi_u) / (lr * steps),
    with phi_u adapted on the user's support and query together."""
    net, cfg, batch, feats, neg = make_net("rating", dtype=torch.float64, learner="reptile")
    objective, learner = parts(net, cfg)
    grads = dict(zip(dict(net.named_parameters()), torch.autograd.grad(
        learner.outer_loss(net, objective, batch, feats, neg).mean(), list(net.parameters()), allow_unused=True)))
    item_vecs = net.item_vectors()
    proj = net.item_projection(item_vecs)
    both = ItemSet(*(torch.cat([a, b], 1) for a, b in zip(
        (batch.support.items, batch.support.ratings, batch.support.mask),
        (batch.query.items, batch.query.ratings, batch.query.mask))))
    start = learner.start(net, feats, item_vecs, batch.support)
    phi = make_learner(cfg.replace(learner="fomaml")).adapt(net, objective, proj, both, neg, start, training=False)
    expected = (net.head["w1"].detach() - phi["w1"]).mean(0) / (cfg.inner_steps * cfg.inner_lr)
    torch.testing.assert_close(grads["head.w1"], expected)


def test_the_proximal_term_keeps_adaptation_near_the_initialisation():
    base = make_net("implicit")
    prox = make_net("implicit", learner="proximal")
    distances = []
    for net, cfg, batch, feats, neg in (base, prox):
        cfg = cfg.replace(inner_steps=10, inner_lr=0.5)
        objective, learner = parts(net, cfg)
        proj, start, _ = support_setup(net, cfg, batch, feats, neg)
        phi = learner.adapt(net, objective, proj, batch.support, neg, start, training=False)
        distances.append(sum(float((phi[n] - start[n].detach()).pow(2).sum()) for n in net.local_names()))
    assert distances[1] < 0.8 * distances[0], distances


def test_a_low_rating_counts_against_an_item_and_a_high_one_for_it():
    """One step on the same support items moves their scores up when rated 5 and down when rated 1."""
    net, cfg, batch, feats, neg = make_net("implicit")
    objective, learner = parts(net, cfg)
    item_vecs = net.item_vectors()
    proj = net.item_projection(item_vecs)
    items = batch.support.items[:1, :3]
    moved = {}
    for rating in (5.0, 1.0):
        support = ItemSet(items, torch.full(items.shape, rating), torch.ones_like(items, dtype=torch.bool))
        start = learner.start(net, FeatureEncoder.fit(None, "user_id").empty(1), item_vecs, support)
        phi = make_learner(cfg.replace(inner_steps=1)).adapt(net, objective, proj, support, neg, start, True)
        moved[rating] = (net.scores(phi, proj, items) - net.scores(start, proj, items)).detach()
    assert (moved[5.0] > 0).all() and (moved[1.0] < 0).all(), moved


def test_user_negatives_depend_on_the_user_alone():
    from coldstart.objectives import user_negatives
    a = user_negatives(["x", "y", "z"], 1000, 50, seed=0).items
    b = user_negatives(["z", "x"], 1000, 50, seed=0).items
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0]) and not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], user_negatives(["x"], 1000, 50, seed=1).items[0])
    assert a.min() >= 0 and a.max() < 1000 and len(torch.unique(torch.cat([a[0], a[1]]))) > 80
    every = user_negatives(["x"], 40, 50, seed=0)
    assert torch.equal(every.items, torch.arange(40)) and every.log_correction == 0.0


def test_item_ids_by_default_for_ranking_and_for_ratings_only_without_item_features():
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "genre": ["x", "y", "x", "y"]})
    with_features = FeatureEncoder.fit(items, "item_id")
    without = FeatureEncoder.fit(None, "item_id")
    users = FeatureEncoder.fit(None, "user_id")

    def has_ids(objective, encoder, **config):
        cfg = Config(objective=objective, embedding_dim=4, hidden=(4,), **config)
        net = ColdStartNet(4, encoder, users, encoder.transform(items, items.item_id), cfg)
        return net.item_ids is not None

    assert has_ids("implicit", with_features) and has_ids("implicit", without)
    assert not has_ids("rating", with_features) and has_ids("rating", without)
    assert has_ids("rating", with_features, use_item_ids=True)
    assert not has_ids("implicit", with_features, use_item_ids=False)
