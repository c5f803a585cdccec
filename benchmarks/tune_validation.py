"""Compare coldstart configurations on a VALIDATION split carved out of the training users only.

The evaluation's new users (the newest 20%) are removed first and never seen here; of the remaining (older) users,
the newest 20% become validation new users. This is how the defaults were chosen, so that no reported query set
was used for tuning.

    python benchmarks/tune_validation.py ../shared/data/ml-100k '{"epochs": 20}' '{"epochs": 20, "n_negatives": 4096}'

With --users-out, every user's metrics are appended to a CSV (a config's "seed" key becomes the seed column, the
rest names the system), so runs in separate processes can be compared afterwards, paired over the same validation
users and averaged over seeds:

    python benchmarks/tune_validation.py DATA '{"seed": 0}' '{"seed": 1}' --users-out val.csv
    python benchmarks/tune_validation.py DATA '{"inner_steps": 3, "seed": 0}' --users-out val.csv
    python benchmarks/tune_validation.py --compare val.csv --reference '{}'
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from coldstart import Config, Dataset, load_dataset
from coldstart.baselines import ALSFoldIn, ItemMeanOffset, Popularity
from coldstart.evaluation import Protocol, format_paired, paired_differences, score_task, shot_task, split_new_users
from coldstart.ids import IdMap
from coldstart.recommender import ColdStartRecommender


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?")
    parser.add_argument("configs", nargs="*", help="JSON objects of Config overrides")
    parser.add_argument("--shots", default="3,5,10")
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--users-out", type=Path, help="append every user's metrics to this CSV")
    parser.add_argument("--compare", type=Path, help="print paired differences from a --users-out CSV and stop")
    parser.add_argument("--reference", default="{}", help="with --compare: the system the others are compared with")
    args = parser.parse_intermixed_args()
    if args.compare:
        users = pd.read_csv(args.compare, dtype={"user_id": str})
        text = format_paired(paired_differences(users, ["ndcg@10", "recall@10"], args.reference))
        print(text or f"{args.compare}: nothing to compare; systems found: {sorted(users['system'].unique())}")
        return
    data = load_dataset(args.data)
    protocol = Protocol(shots=tuple(int(s) for s in args.shots.split(",")))
    train, _test = split_new_users(data.ratings, protocol.new_fraction, protocol.seed)  # test users dropped
    fit_part, valid = split_new_users(train, protocol.new_fraction, protocol.seed)
    tasks = [shot_task(valid, n) for n in protocol.shots]
    catalogue = IdMap.from_values(pd.concat([data.ratings["item_id"], data.items["item_id"]]))
    fit_data = Dataset(fit_part, data.items, data.users, data.name)
    models = {}
    if args.baselines:
        models["popularity"] = lambda: Popularity().fit(fit_data)
        models["als"] = lambda: ALSFoldIn().fit(fit_data)
        models["item_mean"] = lambda: ItemMeanOffset().fit(fit_data)
    for text in args.configs:
        models[text] = (lambda t: lambda: ColdStartRecommender(Config.from_dict(json.loads(t))).fit(fit_data))(text)
    for name, make in models.items():
        start = time.perf_counter()
        model = make()
        scored = [score_task(model, task, catalogue, protocol, data.users) for task in tasks]
        rows = [row for row, _ in scored]
        if args.users_out:
            append_users(args.users_out, name, tasks, [users for _, users in scored])
        cells = "  ".join(f"{t.shots}: ndcg {r['ndcg@10']:.4f} rec {r['recall@10']:.4f}"
                          + (f" mae {r['mae']:.4f} rmse {r['rmse']:.4f}" if 'mae' in r else '') for t, r in zip(tasks, rows))
        mean = sum(r["ndcg@10"] for r in rows) / len(rows)
        print(f"{mean:.4f}  {cells}  [{time.perf_counter() - start:.0f}s]  {name}", flush=True)


USER_COLUMNS = ["system", "task", "seed", "user_id", "ndcg@10", "recall@10", "hit@10", "ae_sum", "n_rated"]


def append_users(path: Path, name: str, tasks: list, per_task: list[pd.DataFrame]) -> None:
    """Append one system's per-user rows; a JSON config's "seed" key becomes the seed column."""
    overrides = json.loads(name) if name.startswith("{") else {}
    seed = overrides.pop("seed", 0)
    system = json.dumps(overrides, sort_keys=True) if name.startswith("{") else name
    frame = pd.concat([u.assign(system=system, task=t.name, seed=seed) for t, u in zip(tasks, per_task)])
    frame = frame.reindex(columns=USER_COLUMNS)  # the same columns in every append (NaN MAE parts for rankers)
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)


if __name__ == "__main__":
    main()
