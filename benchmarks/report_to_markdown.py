"""Print a `coldstart evaluate` report.csv (or its paired.csv) as Markdown tables, one per task, for
benchmarks/RESULTS.md.

    python benchmarks/report_to_markdown.py evaluation/report.csv
    python benchmarks/report_to_markdown.py evaluation/paired.csv
"""
from __future__ import annotations

import sys
from collections.abc import Callable

import pandas as pd

from coldstart.evaluation import paired_tables

COLUMNS = ["ndcg@10", "recall@10", "hit@10", "coverage@10", "mae", "rmse", "wq_ndcg@1", "wq_ndcg@3"]


def present(frame: pd.DataFrame) -> list[str]:
    """The metric columns of COLUMNS that `frame` has values for, in that order."""
    return [c for c in COLUMNS if c in frame and frame[c].notna().any()]


def print_table(group: pd.DataFrame, cols: list[str], cell: Callable[[pd.Series, str], str]) -> None:
    """One Markdown table: a row per system, a column per metric, each cell written by `cell(row, column)`."""
    print("| system | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for _, r in group.iterrows():
        print(f"| {r['system']} | " + " | ".join("-" if pd.isna(r[c]) else cell(r, c) for c in cols) + " |")


def print_paired(paired: pd.DataFrame) -> None:
    """The paired table (compare.paired_tables): a row per system, "difference ± half-width verdict" per metric."""
    for task, users, table in paired_tables(paired):
        print(f"\n**{task}**, {paired['reference'].iloc[0]} minus each system ({users} users, 95% interval)\n")
        print_table(table.reset_index(), list(table.columns), lambda r, c: r[c])


def main(path: str) -> None:
    rows = pd.read_csv(path)
    if "reference" in rows:
        print_paired(rows)
        return
    if "seed" in rows and rows["seed"].nunique() > 1:
        sys.exit(f"{path}: a report of several seeds; print it with benchmarks/aggregate_seeds.py (mean ± sd)")
    for task, group in rows.groupby("task", sort=False):
        print(f"\n**{task}** ({int(group['users'].iloc[0])} users; random ranker within query: "
              f"wq_ndcg@1 {group['wq_ndcg@1_random'].iloc[0]:.4f}, wq_ndcg@3 {group['wq_ndcg@3_random'].iloc[0]:.4f})\n")
        print_table(group, present(group), lambda r, c: f"{r[c]:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
