"""Mean ± standard deviation over several `coldstart evaluate` reports (one per model seed), or over the seeds of one
report written with `--seeds`, as Markdown tables.

Model seeds move coldstart's nDCG@10 on MovieLens-100K by several hundredths, as much as most differences between
systems, so the headline tables average seeds:

    for s in 0 1 2; do coldstart evaluate ../shared/data/ml-100k --seed $s -o eval/seed$s --quiet; done
    python benchmarks/aggregate_seeds.py eval/seed*/report.csv

or, in one run: `coldstart evaluate ../shared/data/ml-100k --seeds 0,1,2 -o eval/seeds` and
`python benchmarks/aggregate_seeds.py eval/seeds/report.csv`.
"""
from __future__ import annotations

import sys

import pandas as pd
from report_to_markdown import present, print_table


def aggregate(paths: list[str]) -> pd.DataFrame:
    """One row per (task, system): the mean and standard deviation of every metric over the reports."""
    rows = pd.concat([pd.read_csv(p).assign(run=i) for i, p in enumerate(paths)], ignore_index=True)
    grouped = rows.groupby(["task", "system"], sort=False)[present(rows)]
    return grouped.mean().join(grouped.std(ddof=1).add_suffix("_sd")).reset_index()


def main(paths: list[str]) -> None:
    table = aggregate(paths)
    print(f"mean ± sd over the runs in {', '.join(paths)}")
    cols = present(table)
    for task, group in table.groupby("task", sort=False):
        print(f"\n**{task}**\n")
        print_table(group, cols, lambda r, c: f"{r[c]:.4f} ± {r[c + '_sd']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
