"""The onboarding interview: what it asks (never an answered item, adaptive, batched = one user at a time, the
evidence gradient it claims), how "not seen" answers count, the simulated onboarding protocol, and the CLI."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from coldstart import ColdStartRecommender, Dataset, Interviewer
from coldstart.cli import app
from coldstart.evaluation import interview_study
from coldstart.evaluation.interview import POOL_SHARE
from coldstart.interview import NEW_USER, answers_support, candidate_evidence, pick_diverse
from coldstart.objectives import Negatives, user_negatives
from coldstart.tasks import ItemSet

from tests.conftest import TINY

runner = CliRunner()


@pytest.fixture(scope="module")
def rec(tiny_data):
    return ColdStartRecommender(TINY).fit(tiny_data)


def popular_items(data, n):
    return data.ratings["item_id"].value_counts().index[:n].tolist()


def test_first_questions_of_a_new_user(rec):
    q = rec.interview(n=7)
    assert list(q.columns) == ["user_id", "rank", "item_id", "score"]
    assert (q["user_id"] == NEW_USER).all() and q["rank"].tolist() == list(range(1, 8))
    assert q["item_id"].is_unique and q["item_id"].isin(rec.items_.ids(np.arange(len(rec.items_)))).all()


def test_never_asks_an_answered_or_unseen_item_again(rec, tiny_data):
    asked = popular_items(tiny_data, 6)
    answers = pd.DataFrame({"user_id": "u", "item_id": asked, "rating": [5, 1, np.nan, 4, np.nan, 2]})
    q = rec.interview(answers, n=len(rec.items_))  # every item there is left to ask
    assert not q["item_id"].isin(asked).any()
    assert len(q) == len(rec.items_) - len(asked)


def test_each_answer_changes_the_next_questions(rec, tiny_data):
    item = popular_items(tiny_data, 1)[0]
    loved = rec.interview(pd.DataFrame({"user_id": ["u"], "item_id": [item], "rating": [5.0]}), n=10)
    hated = rec.interview(pd.DataFrame({"user_id": ["u"], "item_id": [item], "rating": [1.0]}), n=10)
    assert not np.allclose(loved["score"], hated["score"])


def test_batched_interview_equals_one_user_at_a_time(rec, tiny_data):
    items = popular_items(tiny_data, 8)
    answers = pd.DataFrame({"user_id": ["a"] * 5 + ["b"] + ["c"] * 2,  # ragged: 5, 1 and 2 answers
                            "item_id": items, "rating": [5, 4, np.nan, 1, 3, 2, np.nan, 5]})
    together = rec.interview(answers, n=4, user_ids=["d"])  # d has answered nothing yet
    for user in ["a", "b", "c", "d"]:
        alone = rec.interview(answers[answers["user_id"] == user], n=4, user_ids=[user])
        mine = together[together["user_id"] == user].reset_index(drop=True)
        assert mine["item_id"].tolist() == alone["item_id"].tolist()
        np.testing.assert_allclose(mine["score"], alone["score"], rtol=1e-5, atol=1e-6)


def test_without_evidence_or_diversity_it_asks_the_likeliest_items(rec, tiny_data):
    """evidence 0, diversity 0: the questions are the adapted model's own top items (p_u is monotone in the score)."""
    items = popular_items(tiny_data, 3)
    answers = pd.DataFrame({"user_id": "u", "item_id": items, "rating": [5.0, 4.0, 2.0]})
    q = rec.interview(answers, n=6, settings=Interviewer(evidence=0.0, diversity=0.0))
    top = rec.recommend(answers, k=6, exclude_seen=True)
    assert q["item_id"].tolist() == top["item_id"].tolist()


def test_evidence_is_the_norm_of_each_candidates_own_support_gradient(fitted):
    """The closed-form (user x candidate) gradients equal plain autograd on one candidate's one-item support loss,
    also for a candidate that is among the user's negatives and a user whose support item is one of them."""
    state = fitted.state_
    net, objective = state.net, state.objective
    names = net.local_names()
    with torch.no_grad():
        item_vecs = net.item_vectors()
        proj = net.item_projection(item_vecs)
    neg = user_negatives(["a", "b"], len(state.items), 16, 0)
    n = neg.items
    support = ItemSet(torch.tensor([[1, int(n[0, 2]), 0], [3, 0, 0]]), torch.tensor([[5.0, 1.0, 0], [4.0, 0, 0]]),
                      torch.tensor([[True, True, False], [True, False, False]]))
    feats = fitted.user_encoder_.empty(2)
    params = {k: v.detach() for k, v in net.user_params(feats, item_vecs, support).items()}
    params = {k: v + 0.05 * torch.randn_like(v) if k in ("w1", "b0", "user") else v for k, v in params.items()}
    candidates = torch.tensor([[int(n[0, 0]), int(n[0, 1]), 6], [int(n[1, 0]), 8, 2]])
    got = candidate_evidence(net, objective, params, proj, neg.items, neg.log_correction, candidates, support,
                             names, 5.0)
    for b in range(2):
        for c in range(3):
            local = {k: v[b:b + 1].clone().requires_grad_(k in names) for k, v in params.items()}
            one = ItemSet(candidates[b:b + 1, c:c + 1], torch.tensor([[5.0]]), torch.tensor([[True]]))
            seen = torch.cat([one.items, support.seen()[b:b + 1]], 1)
            loss = objective.support_loss(net, local, proj, one, Negatives(neg.items[b:b + 1],
                                                                           neg.log_correction), seen)
            grads = torch.autograd.grad(loss.sum(), [local[n] for n in names])
            expected = torch.sqrt(sum(g.pow(2).sum() for g in grads))
            assert got[b, c].item() == pytest.approx(expected.item(), rel=1e-4)


def test_diversity_skips_a_near_copy_of_a_picked_item():
    vecs = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])  # items 0 and 1 nearly the same
    scores, candidates = torch.tensor([[3.0, 2.9, 2.0]]), torch.tensor([[0, 1, 2]])
    plain, _ = pick_diverse(scores, candidates, vecs, 2, diversity=0.0)
    diverse, _ = pick_diverse(scores, candidates, vecs, 2, diversity=2.0)
    assert plain.tolist() == [[0, 1]] and diverse.tolist() == [[0, 2]]


def test_unseen_answers_adapt_as_dislikes_or_not_at_all():
    answers = pd.DataFrame({"user_id": "u", "item_id": ["a", "b"], "rating": [5.0, np.nan]})
    assert answers_support(answers, "implicit", 0.5, "dislike")["rating"].tolist() == [5.0, 0.5]
    assert answers_support(answers, "implicit", 0.5, "ignore")["item_id"].tolist() == ["a"]
    assert answers_support(answers, "rating", 0.5, "dislike")["item_id"].tolist() == ["a"]


def test_an_unseen_answer_moves_the_next_questions_only_as_a_dislike(rec, tiny_data):
    first, other = popular_items(tiny_data, 2)
    base = pd.DataFrame({"user_id": ["u"], "item_id": [first], "rating": [5.0]})
    with_unseen = pd.concat([base, pd.DataFrame({"user_id": ["u"], "item_id": [other], "rating": [np.nan]})])
    n = len(rec.items_)

    def scores(answers, unseen):
        q = rec.interview(answers, n=n, settings=Interviewer(unseen=unseen, diversity=0.0))
        return q.set_index("item_id")["score"]
    common = scores(with_unseen, "ignore").index
    assert np.allclose(scores(with_unseen, "ignore")[common], scores(base, "ignore")[common], atol=1e-6)
    assert not np.allclose(scores(with_unseen, "dislike")[common], scores(base, "dislike")[common], atol=1e-6)


def test_bad_answers_are_clear_errors(rec):
    with pytest.raises(ValueError, match=r"row 1, column 'rating'.*found 'lots'"):
        rec.interview(pd.DataFrame({"user_id": ["u", "u"], "item_id": ["i1", "i2"], "rating": [5, "lots"]}))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        rec.interview(n=0)


def test_saved_model_asks_the_same_questions(rec, tiny_data, tmp_path):
    answers = pd.DataFrame({"user_id": "u", "item_id": popular_items(tiny_data, 2), "rating": [4.0, np.nan]})
    loaded = ColdStartRecommender.load(rec.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(rec.interview(answers, n=5), loaded.interview(answers, n=5))


# --- the simulated onboarding ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study(tiny_data):
    return interview_study(tiny_data, TINY, questions=(2, 4))


def test_every_strategy_is_scored_on_the_same_users_and_query(study):
    rows = study.rows
    assert set(rows["system"]) == {"coldstart", "popular", "liked", "random"}
    assert rows.groupby("task")["users_with_relevant"].nunique().eq(1).all()  # the query is not what was asked
    assert rows["answered"].between(0, 1).all()
    paired = study.paired()
    assert set(paired["system"]) == {"popular", "liked", "random"} and (paired["reference"] == "coldstart").all()


def test_answers_come_from_the_oldest_part_of_each_users_log_only(study, tiny_data):
    """popular asks the same items of everyone: its answered share is the share of them in each user's pool (the
    oldest POOL_SHARE of the user's ratings); an item the user rated later is "not seen" at sign-up."""
    from coldstart.evaluation import split_new_users
    train, new = split_new_users(tiny_data.ratings, 0.2, 0)
    top = train["item_id"].value_counts(sort=False)
    order = np.lexsort((np.arange(len(top)), -top.to_numpy()))
    asked = set(top.index[order[:4]])
    position = new.groupby("user_id", sort=False).cumcount()
    size = new.groupby("user_id", sort=False)["item_id"].transform("size")
    pool = new[position < POOL_SHARE * size]
    expected = pool.groupby("user_id")["item_id"].agg(lambda s: len(asked & set(s)) / 4).reindex(
        new["user_id"].unique(), fill_value=0.0)
    got = study.users[(study.users["system"] == "popular") & (study.users["task"] == "4 questions")]
    np.testing.assert_allclose(got.set_index("user_id")["answered"].reindex(expected.index), expected)


def test_the_study_reuses_a_fitted_model(tiny_data):
    train_data = Dataset(tiny_data.ratings, tiny_data.items, tiny_data.users, tiny_data.name)
    from coldstart.evaluation import split_new_users
    train, _ = split_new_users(train_data.ratings, 0.2, 0)
    model = ColdStartRecommender(TINY).fit(train)
    a = interview_study(tiny_data, TINY, questions=(3,), strategies=("coldstart",), model=model)
    b = interview_study(tiny_data, TINY, questions=(3,), strategies=("coldstart",), model=model)
    pd.testing.assert_frame_equal(a.users, b.users)
    with pytest.raises(ValueError, match="interview strategies"):
        interview_study(tiny_data, TINY, questions=(3,), strategies=("loudest",), model=model)


# --- the CLI ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(rec, tmp_path_factory):
    return rec.save(tmp_path_factory.mktemp("iv") / "model")


def test_cli_interview_asks_n_items_it_was_not_answered(model_dir, tiny_data):
    first, second = popular_items(tiny_data, 2)
    result = runner.invoke(app, ["interview", "--model", str(model_dir), "--n", "5", "--rate", f"{first}=5",
                                 "--unseen", second, "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert len(table) == 5 and not table["item_id"].astype(str).isin([first, second]).any()


def test_cli_interview_bad_answers_exit_nonzero(model_dir):
    result = runner.invoke(app, ["interview", "--model", str(model_dir), "--rate", "i1=lots"])
    assert result.exit_code == 2 and "--rate 'i1=lots'" in result.output
    result = runner.invoke(app, ["interview", "--model", str(model_dir), "--unseen", "no-such-item"])
    assert result.exit_code == 1 and "--unseen" in result.output and "no-such-item" in result.output


def test_cli_interview_study_writes_a_report(tiny_data, tmp_path):
    path = tmp_path / "ratings.csv"
    tiny_data.ratings.to_csv(path, index=False)
    result = runner.invoke(app, ["interview-study", str(path), "--questions", "2,3", "--epochs", "1", "--output",
                                 str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    report = pd.read_csv(tmp_path / "out" / "report.csv")
    assert set(report["task"]) == {"2 questions", "3 questions"} and "answered" in report
    assert "coldstart minus each system" in result.stdout


def test_a_page_of_questions_is_the_interviews_first_page(tiny_data):
    """page=3: each new user is asked rec.interview's first three items at once (their answered share says so)."""
    from coldstart.evaluation import split_new_users
    train, new = split_new_users(tiny_data.ratings, 0.2, 0)
    model = ColdStartRecommender(TINY).fit(Dataset(train, tiny_data.items, tiny_data.users, tiny_data.name))
    users = [str(u) for u in pd.unique(new["user_id"])]
    page = interview_study(tiny_data, TINY, questions=(3,), strategies=("coldstart",), model=model, page=3)
    asked = model.interview(None, n=3, users=tiny_data.users, user_ids=users)
    position = new.groupby("user_id", sort=False).cumcount()
    size = new.groupby("user_id", sort=False)["item_id"].transform("size")
    pool = set(zip(*new[position < POOL_SHARE * size][["user_id", "item_id"]].to_numpy().T))
    expected = asked.assign(ok=[(u, i) in pool for u, i in zip(asked["user_id"], asked["item_id"])]) \
        .groupby("user_id")["ok"].mean().reindex(users)
    got = page.users.set_index("user_id")["answered"].reindex(users)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy())


def test_the_evidence_term_reweighs_the_questions(rec):
    """evidence 1 adds log ||g_u(i)|| to each candidate's score: a term that differs from item to item."""
    n = len(rec.items_)
    plain = rec.interview(n=n, settings=Interviewer(evidence=0.0, diversity=0.0, candidates=n))
    weighed = rec.interview(n=n, settings=Interviewer(evidence=1.0, diversity=0.0, candidates=n))
    added = weighed.set_index("item_id")["score"] - plain.set_index("item_id")["score"]
    assert np.isfinite(added).all() and added.std() > 1e-3


def test_recommend_serves_a_user_without_support_rows(rec, tiny_data):
    """recommend(user_ids=...) adds users with no rows: they get the unadapted model, whatever the others' rows."""
    support = pd.DataFrame({"user_id": "a", "item_id": popular_items(tiny_data, 2), "rating": [5.0, 1.0]})
    recs = rec.recommend(support, k=5, user_ids=["z"])
    assert recs["user_id"].unique().tolist() == ["a", "z"]
    alone = rec.recommend(support.assign(user_id="b").iloc[:0], k=5, user_ids=["z"])
    untouched = rec.interview(None, n=5, settings=Interviewer(evidence=0.0, diversity=0.0), user_ids=["z"])
    assert recs[recs["user_id"] == "z"]["item_id"].tolist() == alone["item_id"].tolist() \
        == untouched["item_id"].tolist()


def test_cli_recommend_after_an_interview_uses_the_unseen_answers(model_dir, rec, tiny_data):
    """`recommend --rate ... --unseen ...` adapts as the interview does: the unseen item as a dislike."""
    first, second = popular_items(tiny_data, 2)
    result = runner.invoke(app, ["recommend", "--model", str(model_dir), "--rate", f"{first}=5", "--unseen", second,
                                 "--k", "5", "--format", "csv"])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout))["item_id"].astype(str).tolist()
    answers = pd.DataFrame({"user_id": NEW_USER, "item_id": [first, second], "rating": [5.0, np.nan]})
    expected = rec.recommend(answers_support(answers, "implicit", rec.rating_stats_["min"]), k=5)
    assert got == expected["item_id"].tolist() and second not in got
    alone = runner.invoke(app, ["recommend", "--model", str(model_dir), "--unseen", second, "--format", "csv"])
    assert alone.exit_code == 0, alone.output
