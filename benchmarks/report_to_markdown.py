"""Print a `coldstart evaluate` report.csv as Markdown tables (one per task), for benchmarks/RESULTS.md.

    python benchmarks/report_to_markdown.py evaluation/report.csv
"""
from __future__ import annotations

import sys

import pandas as pd

COLUMNS = ["ndcg@10", "recall@10", "hit@10", "coverage@10", "mae", "rmse", "wq_ndcg@1", "wq_ndcg@3"]


def main(path: str) -> None:
    rows = pd.read_csv(path)
    for task, group in rows.groupby("task", sort=False):
        cols = [c for c in COLUMNS if c in group and group[c].notna().any()]
        print(f"\n**{task}** ({int(group['users'].iloc[0])} users; random ranker within query: "
              f"wq_ndcg@1 {group['wq_ndcg@1_random'].iloc[0]:.4f}, wq_ndcg@3 {group['wq_ndcg@3_random'].iloc[0]:.4f})\n")
        print("| system | " + " | ".join(cols) + " |")
        print("|---|" + "---:|" * len(cols))
        for _, r in group.iterrows():
            cells = [("-" if pd.isna(r[c]) else f"{r[c]:.4f}") for c in cols]
            print(f"| {r['system']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
