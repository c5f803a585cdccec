"""Compare coldstart configurations on a VALIDATION split carved out of the training users only.

The evaluation's new users (the newest 20%) are removed first and never seen here; of the remaining (older) users,
the newest 20% become validation new users. This is how the defaults were chosen, so that no reported query set
was used for tuning.

    python benchmarks/tune_validation.py ../shared/data/ml-100k '{"epochs": 20}' '{"epochs": 20, "n_negatives": 4096}'
"""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from coldstart import Config, Dataset, load_dataset
from coldstart.baselines import ALSFoldIn, ItemMeanOffset, Popularity
from coldstart.evaluate import Protocol, shot_task, split_new_users, score_task
from coldstart.ids import IdMap
from coldstart.recommender import ColdStartRecommender


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("configs", nargs="+", help="JSON objects of Config overrides")
    parser.add_argument("--shots", default="3,5,10")
    parser.add_argument("--baselines", action="store_true")
    args = parser.parse_args()
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
        rows = [score_task(model, task, catalogue, protocol)[0] for task in tasks]
        cells = "  ".join(f"{t.shots}: ndcg {r['ndcg@10']:.4f} rec {r['recall@10']:.4f}"
                          + (f" mae {r['mae']:.4f} rmse {r['rmse']:.4f}" if 'mae' in r else '') for t, r in zip(tasks, rows))
        mean = sum(r["ndcg@10"] for r in rows) / len(rows)
        print(f"{mean:.4f}  {cells}  [{time.perf_counter() - start:.0f}s]  {name}", flush=True)


if __name__ == "__main__":
    main()
