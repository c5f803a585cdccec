"""Batched recommend on a large catalogue: new users per second and peak memory against the number of users.

Fits a model (1 epoch by default) on synthetic data with `--items` items, saves it, then for each count in `--users`
runs a fresh process that loads the model and recommends the top 10 of the whole catalogue for that many new users
(5 support ratings each), timing the `recommend` call after a warm-up. Peak RSS is per process, so each row's is
its own: "warm" is the peak after loading the model and a 50-user warm-up call, "peak" after the timed call, so
"peak - warm" is what the larger batch of users added (chunking keeps it at zero). Prints a table and the ratios against the smallest count.

    python benchmarks/bench_catalogue.py                       # 30,000 items; 300, 1000, 3000 users
    python benchmarks/bench_catalogue.py --items 1682 --users 189,1000 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, resource, sys, time
import numpy as np, pandas as pd, torch
torch.set_num_threads({threads})
from coldstart import ColdStartRecommender
rec = ColdStartRecommender.load({model!r})
rng = np.random.default_rng(1)
items = rec.items_.ids(np.arange(len(rec.items_)))
n = {users}
support = pd.DataFrame({{"user_id": np.repeat([f"new{{u}}" for u in range(n)], 5),
                         "item_id": items[rng.integers(0, min(2000, len(items)), 5 * n)],
                         "rating": rng.integers(1, 6, 5 * n).astype(float)}})
rec.recommend(support.head(50), k=10)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
recs = rec.recommend(support, k=10)
seconds = time.perf_counter() - start
print(json.dumps({{"users": n, "seconds": seconds, "users_per_s": n / seconds, "rows": len(recs),
                  "rss_warm_mib": loaded, "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=30_000, help="catalogue size of the synthetic data (default 30000)")
    p.add_argument("--train-users", type=int, default=2000, help="training users (default 2000)")
    p.add_argument("--users", default="300,1000,3000", help="new-user counts, one process each")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of the recommend processes")
    args = p.parse_args()
    counts = [int(v) for v in args.users.split(",")]
    sys.path.insert(0, str(REPO))
    import torch

    from coldstart import ColdStartRecommender, Config, make_synthetic
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = make_synthetic(n_users=args.train_users, n_items=args.items, seed=0)
    rec = ColdStartRecommender(Config(epochs=args.epochs, seed=0)).fit(data)
    print(f"synthetic: {len(data.ratings):,} ratings, {args.items:,} items; fit {args.epochs} epoch(s) in "
          f"{time.perf_counter() - start:.1f} s ({rec.summary_['tasks_per_s']:,.0f} tasks/s); "
          f"{args.threads} thread(s) for recommend")
    with tempfile.TemporaryDirectory() as tmp:
        model = str(rec.save(Path(tmp) / "model"))
        rows = []
        for n in counts:
            code = PROBE.format(threads=args.threads, model=model, users=n)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    first = rows[0]
    print(f"\n{'users':>7s} {'seconds':>8s} {'users/s':>9s} {'RSS warm MiB':>13s} {'RSS peak MiB':>13s} "
          f"{'peak - warm':>12s}")
    for r in rows:
        print(f"{r['users']:7,d} {r['seconds']:8.2f} {r['users_per_s']:9,.0f} {r['rss_warm_mib']:13,.0f} "
              f"{r['rss_peak_mib']:13,.0f} {r['rss_peak_mib'] - r['rss_warm_mib']:12,.0f}")
    last = rows[-1]
    print(f"\n{last['users']:,} vs {first['users']:,} users: users/s x{last['users_per_s'] / first['users_per_s']:.2f}, "
          f"peak RSS x{last['rss_peak_mib'] / first['rss_peak_mib']:.2f}")


if __name__ == "__main__":
    main()
