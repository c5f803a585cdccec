"""Does bf16 scoring keep the top-10? Fits coldstart on ML-100K's training users, recommends the top 10 for the new
users (5 support ratings each) in float32 and again with the scoring (adapted parameters, item projections, biases)
in bfloat16, and prints how many users get the identical list, the mean overlap and the largest score difference.

    python benchmarks/bench_precision.py --data ../shared/data/ml-100k --epochs 10
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from coldstart import ColdStartRecommender, Config, load_dataset
from coldstart.evaluation import split_new_users


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ml-100k")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.data)
    train, new = split_new_users(data.ratings, 0.2, 0)
    rec = ColdStartRecommender(Config(epochs=args.epochs, device=args.device)).fit(train, items=data.items,
                                                                                     users=data.users)
    support = new.groupby("user_id", sort=False).head(args.shots)[["user_id", "item_id", "rating"]]
    full = rec.recommend(support, k=10)
    float32 = rec.net_.scores_of

    def bf16(params, proj, bias):
        cast = {k: v.to(torch.bfloat16) for k, v in params.items()}
        return float32(cast, proj.to(torch.bfloat16), bias.to(torch.bfloat16)).float()

    rec.net_.scores_of = bf16
    half = rec.recommend(support, k=10)
    a, b = (r.groupby("user_id", sort=False)["item_id"].apply(list) for r in (full, half))
    same = np.mean([x == y for x, y in zip(a, b)])
    overlap = np.mean([len(set(x) & set(y)) for x, y in zip(a, b)])
    print(f"{len(a)} new users on {rec.device_}: identical top-10 lists {same:.1%}, mean overlap {overlap:.2f} of 10, "
          f"largest score difference {np.abs(full['score'].to_numpy() - half['score'].to_numpy()).max():.4f}")


if __name__ == "__main__":
    main()
