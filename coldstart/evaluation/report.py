"""A Report read out: the table the terminal shows (mean ± sd over seeds, then the paired differences), the
report files and plot, and the split as a table."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..files import atomic_file
from .compare import format_paired
from .protocol import Task

if TYPE_CHECKING:
    from .run import Report

RANKING_PREFIXES = ("ndcg@", "recall@", "hit@", "coverage@")


def summarise(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Per (task, system), in order of appearance: the mean of every numeric column over seeds, and their standard
    deviation (None for a single seed)."""
    numeric = [c for c in rows.columns if c not in ("system", "task", "shots", "seed")]
    grouped = rows.groupby(["task", "system"], sort=False)[numeric]
    several = "seed" in rows and rows["seed"].nunique() > 1
    return grouped.mean().reset_index(), grouped.std(ddof=1).reset_index() if several else None


def format_table(report: Report) -> str:
    """One block per task: systems as rows, metrics as columns (what the terminal shows)."""
    rows, sd = summarise(report.rows)
    metrics = [c for c in rows.columns if c.startswith(RANKING_PREFIXES) or c in ("mae", "rmse", "answered")
               or (c.startswith("wq_ndcg") and not c.endswith("_random"))]
    blocks = []
    for task, group in rows.groupby("task", sort=False):
        table = group.set_index("system")[metrics]
        if sd is not None:  # "mean ± sd" over seeds
            spread = sd[sd["task"] == task].set_index("system")[metrics]
            table = table.combine(spread, lambda m, s: pd.Series(
                [f"{a:.4f} ± {b:.4f}" if np.isfinite(a) else "-" for a, b in zip(m, s)], index=m.index))
        random_ref = "  ".join(f"{c}: {group[c + '_random'].iloc[0]:.4f}" for c in metrics if c.startswith("wq_"))
        info = report.meta.get("tasks", {}).get(task, {})
        head = f"== {task}: {info.get('users', '?')} users ({info.get('skipped_users', 0)} skipped)" + \
               (f"; random ranker within query {random_ref}" if random_ref else "")
        if sd is not None:
            head += f"\n   mean ± sd over seeds {', '.join(map(str, report.meta.get('seeds', [])))}"
        paper = report.meta.get("melu_paper", {}).get(task)
        if paper:
            head += "\n   MeLU-5 (paper): " + "  ".join(f"{k} {v}" for k, v in paper.items())
        blocks.append(head + "\n" + table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    paired = format_paired(report.paired())
    return "\n\n".join(blocks + ([paired.rstrip("\n")] if paired else [])) + "\n"


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """report.csv, paired.csv, report.json, report.png (and split.csv.gz, users.csv.gz when given) under `out_dir`,
    each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paired = report.paired()
    records = {"meta": report.meta, "rows": json.loads(report.rows.to_json(orient="records")),
               "paired": json.loads(paired.to_json(orient="records"))}
    written = [atomic_file(out_dir / "report.csv", lambda p: report.rows.to_csv(p, index=False)),
               atomic_file(out_dir / "paired.csv", lambda p: paired.to_csv(p, index=False)),
               atomic_file(out_dir / "report.json", lambda p: Path(p).write_text(json.dumps(records, indent=1))),
               atomic_file(out_dir / "report.png", lambda p: plot_report(report, p))]
    if report.users is not None:
        written.append(atomic_file(out_dir / "users.csv.gz", lambda p: report.users.to_csv(
            p, index=False, compression="gzip")))
    if report.split is not None:
        written.append(atomic_file(out_dir / "split.csv.gz", lambda p: report.split.to_csv(p, index=False,
                                                                                       compression="gzip")))
    return written


def plot_report(report: Report, path: str | Path) -> None:
    """Each ranking metric against the task (number of shots, or MeLU scenario), one line per system."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, sd = summarise(report.rows)
    metrics = [c for c in rows.columns if c.startswith(RANKING_PREFIXES)]
    tasks = list(dict.fromkeys(rows["task"]))
    all_shots = report.rows["shots"].notna().all()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for system, group in rows.groupby("system", sort=False):
            values = group.set_index("task").reindex(tasks)[metric].to_numpy()
            err = None if sd is None else sd[sd["system"] == system].set_index("task").reindex(tasks)[metric]
            ax.errorbar(range(len(tasks)), values, yerr=None if err is None else err.to_numpy(), marker="o",
                        capsize=3, label=system)
        ax.set_xticks(range(len(tasks)), [t.replace(" shots", "").replace(" shot", "") for t in tasks],
                      rotation=0 if all_shots else 20)
        ax.set_xlabel("shots (support size)" if all_shots else "scenario")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{report.meta.get('dataset', '')}: new users, ranking over the whole catalogue")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def split_rows(train: pd.DataFrame, tasks: list[Task]) -> pd.DataFrame:
    """The split as a table: training users, and every task's support and query rows."""
    parts = [pd.DataFrame({"task": "", "part": "train", "user_id": train["user_id"].unique(), "item_id": ""})]
    for t in tasks:
        for part, df in (("support", t.support), ("query", t.query)):
            parts.append(pd.DataFrame({"task": t.name, "part": part, "user_id": df["user_id"].to_numpy(),
                                       "item_id": df["item_id"].to_numpy()}))
    return pd.concat(parts, ignore_index=True)
