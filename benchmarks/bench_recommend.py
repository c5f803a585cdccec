"""New users per second: one batched `ColdStartRecommender.recommend` call versus one call per user.

The newest `--users` users (by their first timestamp) are the new users; the model is fitted on all the others for
`--epochs` epochs. Each new user's support set is its first `--shots` ratings in time. Both modes run on the same
fitted model and the same support sets; each of `--repeats` rounds times the batched call, then the loop, after one
untimed warm-up of each. Prints a table (best round of each mode), the batched/loop ratio and peak memory, and
whether both modes return the same top-k.

    python benchmarks/bench_recommend.py                                   # synthetic 2000 users x 1000 items
    python benchmarks/bench_recommend.py --data ../shared/data/ml-100k --users 300
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from _common import (
    Timer,
    cuda_peak_mib,
    describe,
    device_and_header,
    load_data,
    memory_line,
    reset_cuda_peak,
    table,
)

from coldstart import ColdStartRecommender, Config, Dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset folder or file for coldstart.load_dataset (default: synthetic data)")
    p.add_argument("--synthetic-users", type=int, default=2000, help="users of the synthetic data (default 2000)")
    p.add_argument("--synthetic-items", type=int, default=1000, help="items of the synthetic data (default 1000)")
    p.add_argument("--users", type=int, default=500, help="new users: the newest by first timestamp (default 500)")
    p.add_argument("--shots", type=int, default=5, help="support ratings per new user, earliest first (default 5)")
    p.add_argument("--k", type=int, default=10, help="items recommended per user (default 10)")
    p.add_argument("--epochs", type=int, default=3, help="meta-training epochs on the other users (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds of each mode; the best is reported (default 3)")
    p.add_argument("--eval-batch-size", type=int, default=Config.eval_batch_size,
                   help=f"users scored at once inside recommend (default {Config.eval_batch_size})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and of the model (default 0)")
    args = p.parse_args(argv)
    for name in ("users", "shots", "k", "epochs", "repeats", "eval_batch_size", "synthetic_users",
                 "synthetic_items"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def split_new_users(data: Dataset, n_new: int) -> tuple[Dataset, list[str], str]:
    """(training data without the new users, the `n_new` newest users by first timestamp, newest last, the rule)."""
    r = data.ratings
    if "timestamp" in r.columns:
        first = r.groupby("user_id", sort=False)["timestamp"].min()
        order = first.sort_values(kind="stable").index.tolist()  # oldest first
        rule = "newest by first timestamp"
    else:  # no timestamps: the last users to appear in the log
        order = r["user_id"].drop_duplicates().tolist()
        rule = "last to appear in the log (no timestamps)"
    if n_new >= len(order):
        raise SystemExit(f"--users {n_new}: the data has only {len(order)} users; leave some to fit on")
    new = order[-n_new:]
    train = Dataset(r[~r["user_id"].isin(new)].reset_index(drop=True), data.items, data.users, data.name,
                    data.implicit)
    return train, new, rule


def support_sets(data: Dataset, new: list[str], shots: int, rec: ColdStartRecommender) -> pd.DataFrame:
    """Each new user's first `shots` ratings in time (items the model knows), users contiguous in `new` order."""
    r = data.ratings
    rows = r[r["user_id"].isin(new)]
    if "timestamp" in rows.columns:
        rows = rows.sort_values("timestamp", kind="stable")
    rows = rows[rec.items_.index(rows["item_id"]) >= 0]
    support = rows.groupby("user_id", sort=False).head(shots)
    position = pd.Series(np.arange(len(new)), index=new)
    support = support.iloc[np.argsort(position.loc[support["user_id"]].to_numpy(), kind="stable")]
    return support[["user_id", "item_id", "rating"]].reset_index(drop=True)


def compare(batched: pd.DataFrame, loop: pd.DataFrame) -> tuple[bool, int, float]:
    """(identical user/rank/item lists, users whose lists differ, max |score difference| on shared rows)."""
    key = ["user_id", "rank", "item_id"]
    a, b = batched[key].reset_index(drop=True), loop[key].reset_index(drop=True)
    identical = a.equals(b)
    lists_a = batched.groupby("user_id", sort=False)["item_id"].agg(tuple)
    lists_b = loop.groupby("user_id", sort=False)["item_id"].agg(tuple)
    both = lists_a.index.union(lists_b.index)
    differ = int((lists_a.reindex(both) != lists_b.reindex(both)).sum())
    merged = batched.merge(loop, on=["user_id", "rank"], suffixes=("_b", "_l"))
    diff = float((merged["score_b"] - merged["score_l"]).abs().max()) if len(merged) else float("nan")
    return identical, differ, diff


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dev = device_and_header(args.device, args.threads)
    start = time.perf_counter()
    data = load_data(args.data, args.synthetic_users, args.synthetic_items, args.seed)
    print(f"data: {describe(data)} (loaded in {time.perf_counter() - start:.1f} s)")
    train, new, rule = split_new_users(data, args.users)
    print(f"fit on {train.ratings['user_id'].nunique():,} users ({len(train.ratings):,} ratings), "
          f"{args.epochs} epoch(s); new users: {len(new):,}, {rule}")

    rec = ColdStartRecommender(Config(epochs=args.epochs, device=args.device, seed=args.seed,
                                      eval_batch_size=args.eval_batch_size))
    with Timer(dev) as t_fit:
        rec.fit(train)
    s = rec.summary_
    fit_peak = cuda_peak_mib(dev)
    print(f"fit: {t_fit.seconds:.1f} s wall, meta-training {s['seconds']} s, {s['tasks_per_s']} tasks/s, "
          f"{len(rec.items_):,} items in the catalogue; {memory_line(dev)}")

    support = support_sets(data, new, args.shots, rec)
    new = support["user_id"].drop_duplicates().tolist()  # users with no known support item drop out
    per_user = [g for _, g in support.groupby("user_id", sort=False)]
    feats = per_user_feats = None
    if data.users is not None:
        feats = data.users[data.users["user_id"].isin(new)].reset_index(drop=True)
        by_user = dict(tuple(feats.groupby("user_id", sort=False)))
        per_user_feats = [by_user.get(u) for u in new]
    print(f"support: {len(support):,} ratings of {len(new):,} new users "
          f"(shots {args.shots}, mean {len(support) / max(len(new), 1):.2f}), k {args.k}, "
          f"eval_batch_size {args.eval_batch_size}, user features {'yes' if feats is not None else 'no'}")

    def batched() -> pd.DataFrame:
        return rec.recommend(support, k=args.k, users=feats)

    def loop() -> list[pd.DataFrame]:
        if per_user_feats is None:
            return [rec.recommend(g, k=args.k) for g in per_user]
        return [rec.recommend(g, k=args.k, users=f) for g, f in zip(per_user, per_user_feats)]

    # untimed warm-up of both code paths (allocator, kernels, lazy initialisation)
    rec.recommend(support[support["user_id"].isin(new[:16])], k=args.k,
                  users=None if feats is None else feats[feats["user_id"].isin(new[:16])])
    for i in range(min(2, len(per_user))):
        rec.recommend(per_user[i], k=args.k, users=None if per_user_feats is None else per_user_feats[i])

    times: dict[str, list[float]] = {"batched": [], "loop": []}
    peaks: dict[str, float] = {"batched": 0.0, "loop": 0.0}
    outputs: dict[str, pd.DataFrame] = {}
    for _ in range(args.repeats):
        for mode, fn in (("batched", batched), ("loop", loop)):
            reset_cuda_peak(dev)
            with Timer(dev) as t:
                out = fn()
            times[mode].append(t.seconds)
            peaks[mode] = max(peaks[mode], cuda_peak_mib(dev) or 0.0)
            outputs.setdefault(mode, out if mode == "batched" else pd.concat(out, ignore_index=True))

    n = len(new)
    rows = []
    for mode in ("batched", "loop"):
        best = min(times[mode])
        row = [mode, n, f"{best:.3f}", f"{n / best:,.1f}"]
        if dev.type == "cuda":
            row.append(f"{peaks[mode]:,.1f}")
        rows.append(row)
    headers = ["mode", "users", "seconds", "users/s"] + (["CUDA peak MiB"] if dev.type == "cuda" else [])
    print()
    print(f"recommend, best of {args.repeats} round(s):")
    print(table(headers, rows))
    print("rounds (s): " + "; ".join(f"{m} " + ", ".join(f"{x:.3f}" for x in times[m]) for m in times))
    ratio = min(times["loop"]) / min(times["batched"])
    paired = statistics.median(lo / ba for lo, ba in zip(times["loop"], times["batched"]))
    print(f"ratio batched/loop (users/s): {ratio:.1f}x (best rounds); median of per-round ratios {paired:.1f}x")
    identical, differ, diff = compare(outputs["batched"], outputs["loop"])
    print(f"identical top-k: {'yes' if identical else 'no'}"
          + ("" if identical else f" ({differ} of {n} users differ)")
          + f"; max |score difference| {diff:.2e}")
    print(f"memory: {memory_line(dev, None if fit_peak is None else max(fit_peak, *peaks.values()))}"
          + ("" if fit_peak is None else f" (fit {fit_peak:,.1f}, batched {peaks['batched']:,.1f}, "
                                         f"loop {peaks['loop']:,.1f})"))
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
