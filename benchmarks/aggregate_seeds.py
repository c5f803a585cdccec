"""Mean ± standard deviation over several `coldstart evaluate` reports (one per model seed), as Markdown tables.

Model seeds move coldstart's nDCG@10 on MovieLens-100K by several hundredths, as much as most differences between
systems, so the headline tables average seeds:

    for s in 0 1 2; do coldstart evaluate ../shared/data/ml-100k --seed $s -o eval/seed$s --quiet; done
    python benchmarks/aggregate_seeds.py eval/seed*/report.csv
"""
from __future__ import annotations

import sys

import pandas as pd

COLUMNS = ["ndcg@10", "recall@10", "hit@10", "coverage@10", "mae", "rmse", "wq_ndcg@1", "wq_ndcg@3"]


def aggregate(paths: list[str]) -> pd.DataFrame:
    """One row per (task, system): the mean and standard deviation of every metric over the reports."""
    rows = pd.concat([pd.read_csv(p).assign(run=i) for i, p in enumerate(paths)], ignore_index=True)
    cols = [c for c in COLUMNS if c in rows and rows[c].notna().any()]
    grouped = rows.groupby(["task", "system"], sort=False)[cols]
    return grouped.mean().join(grouped.std(ddof=1).add_suffix("_sd")).reset_index()


def main(paths: list[str]) -> None:
    table = aggregate(paths)
    print(f"mean ± sd over {len(paths)} runs: {', '.join(paths)}")
    cols = [c for c in COLUMNS if c in table and table[c].notna().any()]
    for task, group in table.groupby("task", sort=False):
        print(f"\n**{task}**\n")
        print("| system | " + " | ".join(cols) + " |")
        print("|---|" + "---:|" * len(cols))
        for _, r in group.iterrows():
            cells = ["-" if pd.isna(r[c]) else f"{r[c]:.4f} ± {r[c + '_sd']:.4f}" for c in cols]
            print(f"| {r['system']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
