"""Paired comparison of systems on the same new users: a reference system minus each other system, per task and
metric, with a 95% confidence interval over users.

Every metric is a pooled ratio over users, sum_u a_u / sum_u n_u: a ranking metric is the mean over users with
relevant items (a_u = the user's value, n_u = 1, or 0 for a user without relevant items), and MAE pools absolute
errors over query ratings (a_u = the user's summed absolute error, n_u = its rated query items). A user's a_u and
n_u are first averaged over seeds, so the interval speaks of user sampling with model noise averaged out. The
standard error of a difference of two such ratios is the cluster (per-user) linearisation:
    se = sqrt(U / (U - 1) * sum_u (e_u(ref) - e_u(sys))^2),  e_u = (a_u - ratio * n_u) / sum_v n_v.
For a ranking metric this is the ordinary standard error of the mean paired difference.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

Z95 = 1.959964  # two-sided 95% normal quantile
LOWER_IS_BETTER = ("mae",)
ERROR_COLUMNS = ("ae_sum", "n_rated")  # per-user summed absolute error and count, for MAE
KEYS = ("system", "task", "seed", "user_id")
COLUMNS = ["reference", "task", "system", "metric", "difference", "half_width", "users", "verdict"]


def _parts(table: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(a_u, n_u) of `metric` for the users of `table` (one row per user)."""
    if metric == "mae":
        return table["ae_sum"].to_numpy(float), table["n_rated"].to_numpy(float)
    values = table[metric].to_numpy(float)
    has = np.isfinite(values)
    return np.where(has, values, 0.0), has.astype(float)


def ratio_difference(a_ref: np.ndarray, n_ref: np.ndarray, a_sys: np.ndarray, n_sys: np.ndarray
                     ) -> tuple[float, float, int]:
    """(sum a_ref / sum n_ref - sum a_sys / sum n_sys, its standard error, users counted) over paired users."""
    keep = (n_ref > 0) | (n_sys > 0)
    a_ref, n_ref, a_sys, n_sys = a_ref[keep], n_ref[keep], a_sys[keep], n_sys[keep]
    users = int(keep.sum())
    if users == 0 or n_ref.sum() == 0 or n_sys.sum() == 0:
        return float("nan"), float("nan"), users
    r_ref, r_sys = a_ref.sum() / n_ref.sum(), a_sys.sum() / n_sys.sum()
    e = (a_ref - r_ref * n_ref) / n_ref.sum() - (a_sys - r_sys * n_sys) / n_sys.sum()  # (U,)
    se = float(np.sqrt(users / (users - 1) * (e**2).sum())) if users > 1 else float("nan")
    return float(r_ref - r_sys), se, users


def verdict(metric: str, difference: float, half_width: float) -> str:
    """"ahead" / "behind" (from the reference's side; for MAE lower is better) when the interval excludes 0,
    else "level"."""
    if not (np.isfinite(difference) and np.isfinite(half_width)) or abs(difference) <= half_width:
        return "level"
    better = difference < 0 if metric in LOWER_IS_BETTER else difference > 0
    return "ahead" if better else "behind"


def paired_differences(users: pd.DataFrame, metrics: list[str], reference: str = "coldstart") -> pd.DataFrame:
    """The reference minus every other system, per task and metric.

    Args:
        users: one row per (system, task, seed, user_id) with the per-user columns of `metrics` (NaN for a user
            without relevant items) and, for systems that predict ratings, `ae_sum` and `n_rated`.
        metrics: the metric columns to compare; "mae" reads `ae_sum` / `n_rated`.
        reference: the system every other is compared with.

    Returns:
        Columns reference, task, system, metric, difference (reference minus system), half_width (of the 95%
        interval), users, verdict; empty when the reference is absent.
    """
    values = [c for c in users.columns if c not in KEYS]
    per_user = users.groupby(["task", "system", "user_id"], sort=False)[values].mean().reset_index()
    rows = []
    for task, group in per_user.groupby("task", sort=False):
        tables = {s: g.set_index("user_id") for s, g in group.groupby("system", sort=False)}
        ref = tables.get(reference)
        if ref is None:
            continue
        for system, table in tables.items():
            if system == reference:
                continue
            common = ref.index.intersection(table.index)
            for metric in metrics:
                if not (_has(ref, metric) and _has(table, metric)):
                    continue
                a_ref, n_ref = _parts(ref.loc[common], metric)
                a_sys, n_sys = _parts(table.loc[common], metric)
                diff, se, n = ratio_difference(a_ref, n_ref, a_sys, n_sys)
                half = Z95 * se
                rows.append([reference, task, system, metric, diff, half, n, verdict(metric, diff, half)])
    return pd.DataFrame(rows, columns=COLUMNS)


def _has(table: pd.DataFrame, metric: str) -> bool:
    """Whether a system's per-user table holds `metric` (MAE only for systems that predict ratings)."""
    needed = ERROR_COLUMNS if metric == "mae" else (metric,)
    return all(c in table and table[c].notna().any() for c in needed)


def paired_tables(paired: pd.DataFrame) -> Iterator[tuple[str, int, pd.DataFrame]]:
    """(task, users, table) per task, in order: systems as rows, metrics as columns, each cell "difference ±
    half-width verdict" ("-" where there is none)."""
    cells = paired.assign(cell=[f"{d:+.4f} ± {h:.4f} {v}" if np.isfinite(d) else "-"
                                for d, h, v in zip(paired["difference"], paired["half_width"], paired["verdict"])])
    for task, group in cells.groupby("task", sort=False):
        table = group.pivot(index="system", columns="metric", values="cell")
        table = table.reindex(index=list(dict.fromkeys(group["system"])),
                              columns=list(dict.fromkeys(group["metric"]))).fillna("-")
        table.columns.name = None
        yield task, int(group["users"].max()), table


def format_paired(paired: pd.DataFrame) -> str:
    """One block per task: systems as rows, "difference ± half-width verdict" per metric."""
    if paired.empty:
        return ""
    blocks = [f"== {paired['reference'].iloc[0]} minus each system on the same users (each user's metrics averaged "
              f"over seeds), ± a 95% interval; 'level' when it holds 0"]
    blocks += [f"-- {task} ({users} users)\n{table.to_string()}" for task, users, table in paired_tables(paired)]
    return "\n".join(blocks) + "\n"
