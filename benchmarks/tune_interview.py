"""Choose the interview's settings (coldstart.Interviewer) on VALIDATION users carved from the training users only.

The evaluation's new users (the newest 20%) are dropped first and never read; of the remaining users, the newest 20%
are the validation new users of `interview_study`, and the model is fitted on the rest (once per seed, then shared by
every setting). Prints one line per (setting, questions): mean nDCG@10, Recall@10 and share answered, and the
paired difference against the first setting.

    python benchmarks/tune_interview.py ../shared/data/ml-100k --seeds 0,1 \
        '{}' '{"evidence": 0}' '{"diversity": 0}' '{"unseen": "ignore"}'
"""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import torch

from coldstart import ColdStartRecommender, Config, Dataset, Interviewer, load_dataset
from coldstart.evaluation import Protocol, format_paired, interview_study, paired_differences, split_new_users


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("settings", nargs="*", default=["{}"], help="JSON objects of Interviewer fields")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--questions", default="3,5,10")
    parser.add_argument("--config", default="{}", help="JSON object of Config overrides")
    parser.add_argument("--page", type=int, default=1, help="questions asked at once")
    parser.add_argument("--baselines", action="store_true", help="also the popular / liked / random strategies")
    args = parser.parse_intermixed_args()
    torch.set_num_threads(1)
    data = load_dataset(args.data)
    protocol = Protocol()
    train, _test = split_new_users(data.ratings, protocol.new_fraction, protocol.seed)  # test users dropped
    valid_data = Dataset(train, data.items, data.users, data.name, data.implicit)
    fit_part, _valid = split_new_users(train, protocol.new_fraction, protocol.seed)
    questions = tuple(int(q) for q in args.questions.split(","))
    tables = []
    for seed in (int(s) for s in args.seeds.split(",")):
        config = Config.from_dict({**json.loads(args.config), "seed": seed})
        start = time.perf_counter()
        model = ColdStartRecommender(config).fit(Dataset(fit_part, data.items, data.users, data.name, data.implicit))
        print(f"seed {seed}: fitted in {time.perf_counter() - start:.0f}s", flush=True)
        for j, text in enumerate(args.settings):
            strategies = ("coldstart", "popular", "liked", "random") if args.baselines and j == 0 else ("coldstart",)
            start = time.perf_counter()
            report = interview_study(valid_data, config, questions, protocol, strategies,
                                     Interviewer(**json.loads(text)), model=model, page=args.page)
            users = report.users.assign(system=report.users["system"].where(report.users["system"] != "coldstart",
                                                                             text))
            tables.append(users)
            for _, row in report.rows.iterrows():
                name = text if row["system"] == "coldstart" else row["system"]
                print(f"  {row['task']:>12}  ndcg {row['ndcg@10']:.4f}  recall {row['recall@10']:.4f}  "
                      f"answered {row['answered']:.3f}  [{time.perf_counter() - start:.0f}s]  {name}", flush=True)
    users = pd.concat(tables, ignore_index=True)
    print(format_paired(paired_differences(users, ["ndcg@10", "recall@10"], args.settings[0])))


if __name__ == "__main__":
    main()
