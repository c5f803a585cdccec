"""Invariants of the inner loop and the meta-gradient, on a tiny network."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from coldstart.adapt import adapt, objective_loss
from coldstart.config import Config
from coldstart.features import FeatureEncoder
from coldstart.meta import own_items, query_targets, sample_negatives, task_losses
from coldstart.model import ColdStartNet
from coldstart.tasks import UserLog, sample_tasks

N_ITEMS, N_USERS = 30, 12


def make_net(objective: str = "implicit", adapt_mode: str = "head", dtype=torch.float32, seed: int = 0,
             learn_inner_lr: bool = False, user_bias_scale: bool = True):
    cfg = Config(objective=objective, adapt=adapt_mode, embedding_dim=4, hidden=(6, 5), inner_lr=0.05,
                 inner_steps=2, n_negatives=10, learn_inner_lr=learn_inner_lr, use_item_ids=True,
                 user_bias_scale=user_bias_scale)
    rng = np.random.default_rng(seed)
    genre = rng.integers(3, size=N_ITEMS)
    items = pd.DataFrame({"item_id": [str(i) for i in range(N_ITEMS)], "genre": [f"g{g}" for g in genre]})
    enc = FeatureEncoder.fit(items, "item_id")
    net = ColdStartNet(N_ITEMS, enc, FeatureEncoder.fit(None, "user_id"), enc.transform(items, items.item_id),
                       cfg, global_mean=3.0 if objective == "rating" else 0.0, rating_center=3.0)
    net.reset_parameters(torch.Generator().manual_seed(seed))
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
    negatives = sample_negatives(N_ITEMS, cfg.n_negatives, rng)
    return net, cfg, batch, feats, negatives


def support_setup(net, cfg, batch, feats, negatives):
    item_vecs = net.item_vectors()
    start = net.user_params(feats, item_vecs, batch.support_items, batch.support_ratings, batch.support_mask)
    exclude = own_items(batch)
    loss = objective_loss(net, cfg, item_vecs, batch.support_items, batch.support_ratings,
                          batch.support_mask, negatives, exclude)
    return item_vecs, start, loss


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
@pytest.mark.parametrize("adapt_mode", ["head", "head+user", "last", "user"])
def test_one_inner_step_lowers_every_users_support_loss(objective, adapt_mode):
    net, cfg, batch, feats, neg = make_net(objective, adapt_mode)
    _, params, loss = support_setup(net, cfg, batch, feats, neg)
    before = loss(params).detach()
    after = loss(adapt(params, net.local_names(), loss, steps=1, lr=0.01)).detach()
    assert (after < before).all(), (before, after)


def test_adapt_changes_only_the_named_parameters():
    net, cfg, batch, feats, neg = make_net("rating", "last")
    with torch.no_grad():
        net.item_bias.copy_(torch.linspace(-1.0, 1.0, N_ITEMS))  # the bias scale moves only with a bias
    _, params, loss = support_setup(net, cfg, batch, feats, neg)
    adapted = adapt(params, net.local_names(), loss, steps=2, lr=0.1)
    assert net.local_names() == ["w2", "b2", "log_bias_scale"]
    assert torch.equal(adapted["w0"], params["w0"]) and torch.equal(adapted["user"], params["user"])
    assert not torch.equal(adapted["w2"], params["w2"]) and not torch.equal(adapted["log_bias_scale"], params["log_bias_scale"])
    assert make_net("rating", "last", user_bias_scale=False)[0].local_names() == ["w2", "b2"]
    user_only = make_net("implicit", "user")[0]
    assert user_only.local_names() == ["user", "log_bias_scale"]


def test_the_bias_scale_starts_at_zero_and_learns_how_much_a_user_follows_popularity():
    """With a zero output layer the score is exp(s_u) * bias(i): a step on a support of the least popular items
    lowers s_u (the user follows popularity less), a support of the most popular items raises it; however far it
    goes, the scale stays positive, so the popularity order is never reversed."""
    net, cfg, batch, feats, neg = make_net("implicit", "head", user_bias_scale=True)
    neg = torch.arange(N_ITEMS)
    bias = torch.linspace(-2.0, 2.0, N_ITEMS)  # item i's popularity rank is i
    net.start_from_prior(bias)
    off = make_net("implicit", "head", user_bias_scale=False)[0]
    off.load_state_dict(net.state_dict())
    item_vecs = net.item_vectors()
    niche, popular = torch.tensor([[0, 1, 2]]), torch.tensor([[N_ITEMS - 1, N_ITEMS - 2, N_ITEMS - 3]])
    items = torch.cat([niche, popular])  # (2, 3): user 0 likes niche items, user 1 popular ones
    mask, ratings = torch.ones_like(items, dtype=torch.bool), torch.full(items.shape, 5.0)
    user_feats = FeatureEncoder.fit(None, "user_id").empty(2)
    start = net.user_params(user_feats, item_vecs, items, ratings, mask)
    assert torch.equal(start["log_bias_scale"], torch.zeros(2))
    unadapted = off.user_params(user_feats, item_vecs, items, ratings, mask)  # same scores before adapting
    torch.testing.assert_close(net.scores(start, item_vecs, None), off.scores(unadapted, item_vecs, None))
    loss = objective_loss(net, cfg, item_vecs, items, ratings, mask, neg, items)
    adapted = adapt(start, net.local_names(), loss, steps=1, lr=0.1)
    assert adapted["log_bias_scale"][0] < 0 < adapted["log_bias_scale"][1]
    far = adapt(start, ["log_bias_scale"], loss, steps=50, lr=1.0)  # many large steps of the scale alone
    niche_scores = net.scores(far, item_vecs, None)[0].detach()  # (I,)
    assert far["log_bias_scale"][0] < -1.0  # a linear scale 1 + s would have turned negative here
    assert (niche_scores.diff() >= 0).all()  # still in popularity order, only flatter


@pytest.mark.parametrize("objective", ["implicit", "rating"])
def test_batched_adaptation_equals_the_per_user_loop(objective):
    net, cfg, batch, feats, neg = make_net(objective, "head+user")
    item_vecs, params, loss = support_setup(net, cfg, batch, feats, neg)
    batched = adapt(params, net.local_names(), loss, steps=3, lr=cfg.inner_lr)
    batched_scores = net.scores(batched, item_vecs, None)  # (B, I)
    for u in range(N_USERS):
        one = {k: v[u:u + 1] for k, v in params.items()}
        exclude = own_items(batch)[u:u + 1]
        loss_u = objective_loss(net, cfg, item_vecs, batch.support_items[u:u + 1],
                                batch.support_ratings[u:u + 1], batch.support_mask[u:u + 1], neg, exclude)
        single = adapt(one, net.local_names(), loss_u, steps=3, lr=cfg.inner_lr)
        for name in net.local_names():
            torch.testing.assert_close(single[name][0], batched[name][u], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net.scores(single, item_vecs, None)[0], batched_scores[u], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("objective, learn_inner_lr", [("implicit", False), ("rating", False), ("rating", True)])
def test_second_order_meta_gradient_matches_finite_differences(objective, learn_inner_lr):
    net, cfg, batch, feats, neg = make_net(objective, dtype=torch.float64, learn_inner_lr=learn_inner_lr)
    params = dict(net.named_parameters())
    loss = task_losses(net, batch, feats, neg, cfg, steps=2, first_order=False).sum()
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()), allow_unused=True)))
    rng = np.random.default_rng(0)
    eps = 1e-6
    names = ["head.w0", "head.w1", "head.b2", "item_bias", "item_ids.weight"]
    for name in names + (["inner_log_lr.w0", "inner_log_lr.log_bias_scale"] if learn_inner_lr else []):
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
    g2 = torch.autograd.grad(task_losses(net, batch, feats, neg, cfg, first_order=False).sum(), w0)[0]
    g1 = torch.autograd.grad(task_losses(net, batch, feats, neg, cfg, first_order=True).sum(), w0)[0]
    assert not torch.allclose(g1, g2)


@pytest.mark.parametrize("objective", ["implicit", "rating"])
def test_first_order_equals_the_detached_computation(objective):
    net, cfg, batch, feats, neg = make_net(objective, dtype=torch.float64)
    params = list(net.parameters())
    fo = torch.autograd.grad(task_losses(net, batch, feats, neg, cfg, first_order=True).sum(), params,
                             allow_unused=True)
    # By hand: inner gradients computed on a detached graph, then treated as constants.
    item_vecs, local, loss = support_setup(net, cfg, batch, feats, neg)
    names = net.local_names()
    for _ in range(cfg.inner_steps):
        with torch.enable_grad():
            detached = {k: (v.detach().requires_grad_() if k in names else v) for k, v in local.items()}
            g = torch.autograd.grad(loss(detached).sum(), [detached[n] for n in names])
        local = {**local, **{n: local[n] - cfg.inner_lr * gi.detach() for n, gi in zip(names, g)}}
    query = objective_loss(net, cfg, item_vecs, batch.query_items, batch.query_ratings,
                           query_targets(batch, cfg), neg, own_items(batch))
    manual = torch.autograd.grad(query(local).sum(), params, allow_unused=True)
    for a, b in zip(fo, manual):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b)


def test_positive_rating_selects_query_targets_and_leaves_the_support_alone():
    net, cfg, batch, feats, neg = make_net("implicit", dtype=torch.float64)
    assert (batch.query_mask & (batch.query_ratings < cfg.positive_rating)).any()
    assert (batch.support_mask & (batch.support_ratings < cfg.positive_rating)).any()

    def losses(config):
        return task_losses(net, batch, feats, neg, config).detach()

    every = cfg.replace(positive_rating=None)
    assert not torch.allclose(losses(cfg), losses(every))  # disliked query items are not targets
    # Once every query item is liked the two agree exactly: disliked support items still adapt the user.
    batch.query_ratings = batch.query_ratings.clamp(min=cfg.positive_rating)
    torch.testing.assert_close(losses(cfg), losses(every), rtol=0, atol=0)


def test_sum_reduction_scales_the_support_loss_by_its_size():
    net, cfg, batch, feats, neg = make_net("rating")
    item_vecs, params, _ = support_setup(net, cfg, batch, feats, neg)
    args = (net, cfg, item_vecs, batch.support_items, batch.support_ratings, batch.support_mask, neg, own_items(batch))
    mean = objective_loss(*args)(params)
    total = objective_loss(*args, reduction="sum")(params)
    torch.testing.assert_close(total, mean * batch.support_mask.sum(1))



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
