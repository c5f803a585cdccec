"""One Markdown table of a `coldstart evaluate` output folder: a row per system, nDCG@k and Recall@k at every shot
count (mean over the report's seeds), and the mean fit time per seed from report.json.

    python benchmarks/summary_table.py evaluation/
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def main(folder: str) -> None:
    rows = pd.read_csv(Path(folder) / "report.csv")
    meta = json.loads((Path(folder) / "report.json").read_text())["meta"]
    k = meta.get("k", 10)
    runs = meta.get("runs", [meta])
    fit = pd.DataFrame([{"system": s, "fit_s": t["fit_s"]} for r in runs for s, t in r["timings"].items()])
    fit_s = fit.groupby("system")["fit_s"].mean()
    tasks = list(dict.fromkeys(rows["task"]))
    means = rows.groupby(["system", "task"], sort=False)[[f"ndcg@{k}", f"recall@{k}"]].mean()
    shots = [t.split()[0] for t in tasks]
    print(f"{meta['dataset']}, seeds {', '.join(map(str, meta.get('seeds', [meta.get('seed')])))}; "
          f"mean over seeds at {' / '.join(shots)} shots\n")
    print(f"| system | nDCG@{k} | Recall@{k} | fit s |")
    print("|---|---|---|---:|")
    for system in dict.fromkeys(rows["system"]):
        cells = [" / ".join(f"{means.loc[(system, t), m]:.3f}" for t in tasks) for m in (f"ndcg@{k}", f"recall@{k}")]
        print(f"| {system} | {cells[0]} | {cells[1]} | {fit_s.get(system, float('nan')):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
