"""How fast the onboarding interview answers: questions for many new users in one call, and for one user, beside
`recommend` on the same users and answers (ratios measured in the same run).

The model is fitted for `--epochs` on all users but the newest `--users`; each of those has its first `--answers`
ratings as answers so far (every other one marked "not seen", as an interview's would be). Each mode runs `--repeats`
timed rounds after one untimed warm-up; the best round is reported.

    python benchmarks/bench_interview.py --data ../shared/data/ml-100k
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from coldstart import ColdStartRecommender, Config, Dataset, Interviewer, load_dataset, make_synthetic


def best_of(repeats: int, run) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset for coldstart.load_dataset (default: synthetic 2000 users x 1000 items)")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--answers", type=int, default=6)
    p.add_argument("--n", type=int, default=10, help="questions per user")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data) if args.data else make_synthetic(n_users=2000, n_items=1000, seed=0)
    r = data.ratings.sort_values("timestamp", kind="stable")
    newest = r.groupby("user_id")["timestamp"].min().sort_values().index[-args.users:]
    train = r[~r["user_id"].isin(newest)]
    rec = ColdStartRecommender(Config(epochs=args.epochs)).fit(Dataset(train, data.items, data.users, data.name))
    answers = r[r["user_id"].isin(newest)].groupby("user_id").head(args.answers)[["user_id", "item_id", "rating"]]
    answers = answers.assign(rating=answers["rating"].where(np.arange(len(answers)) % 2 == 0))  # half "not seen"
    support = answers.assign(rating=answers["rating"].fillna(rec.rating_stats_["min"]))
    one = answers[answers["user_id"] == newest[0]]
    modes = {
        "recommend (batched)": lambda: rec.recommend(support, k=args.n),
        "interview (batched)": lambda: rec.interview(answers, n=args.n),
        "interview + evidence 0.5 (batched)": lambda: rec.interview(answers, n=args.n,
                                                                   settings=Interviewer(evidence=0.5)),
        "interview, one user": lambda: rec.interview(one, n=args.n),
    }
    seconds = {name: best_of(args.repeats, run) for name, run in modes.items()}
    print(f"{data.name}: {len(rec.items_):,} items, {args.users} new users with {args.answers} answers, "
          f"n = {args.n}, {args.threads} thread(s), best of {args.repeats}")
    for name, s in seconds.items():
        users = 1 if "one user" in name else args.users
        print(f"  {name:<36} {s * 1000:9.1f} ms  {users / s:9.0f} users/s")
    base = seconds["recommend (batched)"]
    print(f"  interview / recommend: {seconds['interview (batched)'] / base:.2f}x; with evidence: "
          f"{seconds['interview + evidence 0.5 (batched)'] / base:.2f}x")


if __name__ == "__main__":
    main()
