"""Paired comparison of systems over the same users, against hand computations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart.evaluation import Z95, format_paired, paired_differences, ratio_difference, verdict


def users_table(values: dict[str, list[float]], seed: int = 0, task: str = "1 shot") -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"system": s, "task": task, "seed": seed, "user_id": ["a", "b", "c", "d"],
                                    "ndcg@10": v}) for s, v in values.items()], ignore_index=True)


def test_ranking_difference_is_the_paired_mean_with_its_standard_error():
    table = users_table({"coldstart": [0.5, 0.2, np.nan, 0.9], "pop": [0.1, 0.3, np.nan, 0.5]})
    out = paired_differences(table, ["ndcg@10"]).set_index("system")
    d = np.array([0.4, -0.1, 0.4])  # user c has no relevant item: left out
    assert out.loc["pop", "difference"] == pytest.approx(d.mean())
    assert out.loc["pop", "half_width"] == pytest.approx(Z95 * d.std(ddof=1) / np.sqrt(3))
    assert out.loc["pop", "users"] == 3 and out.loc["pop", "verdict"] == "level"  # 0.233 < 1.96 * 0.167


def test_users_are_averaged_over_seeds_before_pairing():
    table = pd.concat([users_table({"coldstart": [0.4, 0.4, 0.4, 0.4], "pop": [0.0, 0.2, 0.4, 0.0]}, seed=0),
                       users_table({"coldstart": [0.6, 0.6, 0.6, 0.6], "pop": [0.2, 0.2, 0.0, 0.2]}, seed=1)])
    out = paired_differences(table, ["ndcg@10"]).iloc[0]
    d = np.array([0.5 - 0.1, 0.5 - 0.2, 0.5 - 0.2, 0.5 - 0.1])
    assert out["difference"] == pytest.approx(d.mean())
    assert out["half_width"] == pytest.approx(Z95 * d.std(ddof=1) / 2)
    assert out["verdict"] == "ahead"


def test_mae_difference_pools_errors_over_ratings_with_a_per_user_cluster_error():
    a_ref, n_ref = np.array([2.0, 1.0, 3.0]), np.array([4.0, 2.0, 2.0])
    a_sys, n_sys = np.array([3.0, 1.0, 2.0]), np.array([4.0, 2.0, 1.0])  # one rating the system could not score
    diff, se, users = ratio_difference(a_ref, n_ref, a_sys, n_sys)
    assert diff == pytest.approx(6 / 8 - 6 / 7) and users == 3
    # the same standard error by the delta method, written out
    e = (a_ref - 6 / 8 * n_ref) / 8 - (a_sys - 6 / 7 * n_sys) / 7
    assert se == pytest.approx(np.sqrt(3 / 2 * (e**2).sum()))
    # in a table: MAE is compared only between systems that predict ratings
    table = pd.DataFrame({"system": ["coldstart"] * 3 + ["item_mean"] * 3 + ["pop"] * 3, "task": "t", "seed": 0,
                          "user_id": ["a", "b", "c"] * 3, "ndcg@10": 0.5,
                          "ae_sum": [*a_ref, *a_sys, np.nan, np.nan, np.nan],
                          "n_rated": [*n_ref, *n_sys, np.nan, np.nan, np.nan]})
    out = paired_differences(table, ["ndcg@10", "mae"])
    assert set(zip(out["system"], out["metric"])) == {("item_mean", "ndcg@10"), ("item_mean", "mae"),
                                                      ("pop", "ndcg@10")}
    assert out.set_index(["system", "metric"]).loc[("item_mean", "mae"), "difference"] == pytest.approx(diff)


def test_a_constant_difference_on_every_user_is_significant_and_a_tie_is_level():
    table = users_table({"coldstart": [0.3, 0.5, 0.7, 0.9], "better": [0.4, 0.6, 0.8, 1.0],
                         "same": [0.3, 0.5, 0.7, 0.9]})
    out = paired_differences(table, ["ndcg@10"]).set_index("system")
    assert out.loc["better", "difference"] == pytest.approx(-0.1) and out.loc["better", "half_width"] < 1e-12
    assert out.loc["better", "verdict"] == "behind" and out.loc["same", "verdict"] == "level"


def test_verdict_reads_mae_as_lower_is_better():
    assert verdict("mae", -0.02, 0.01) == "ahead" and verdict("mae", 0.02, 0.01) == "behind"
    assert verdict("ndcg@10", 0.02, 0.01) == "ahead" and verdict("ndcg@10", 0.005, 0.01) == "level"
    assert verdict("ndcg@10", float("nan"), float("nan")) == "level"


def test_no_reference_means_no_rows_and_no_block():
    table = users_table({"pop": [0.1, 0.2, 0.3, 0.4], "als": [0.2, 0.2, 0.2, 0.2]})
    out = paired_differences(table, ["ndcg@10"])
    assert out.empty and format_paired(out) == ""
    text = format_paired(paired_differences(table, ["ndcg@10"], reference="pop"))
    assert "-- 1 shot (4 users)" in text and "pop minus each system on the same users" in text
    assert "als     +0.0500 ± " in text and text.rstrip().endswith("level")
