"""Scale: load + prepare time, meta-training speed, peak memory and streaming recommend against the log's size.

For each size (ratings) it writes a synthetic Parquet log (`coldstart.synthetic.write_synthetic`: power-law items,
30,000 items by default, ~143 ratings per user), then runs, each in a fresh process so that each peak RSS is its own:

  fit       load the log with the project's reader, build everything fit builds (`initial_state`), and meta-train
            for `--steps` meta-steps (tasks/s; an epoch's time is users / tasks/s); peak RSS of that process; then
            save the model (without user histories) for the next step
  recommend load a model, stream `--new-users` new users (5 support ratings each, a Parquet file) through
            `coldstart.streaming.stream_recommend` to a Parquet file; users/s and peak RSS

and prints a table with the log-log slope of each column against the number of ratings (1: linear; 0: flat).

    python benchmarks/bench_scale.py                                # 100k, 1M, 5M, 20M ratings
    python benchmarks/bench_scale.py --sizes 100000,1000000 --new-users 20000
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PER_USER = (10, 276)  # ratings per user: 143 on average, as MovieLens-20M's 20M ratings over 138k users

PEAK_RSS = r"""
def peak_rss():
    # GiB: this process's own high-water mark (VmHWM). Not ru_maxrss: Linux carries the parent's RSS at fork into a
    # child's ru_maxrss across exec, which made a small process look as big as the script that started it.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
"""

FIT = PEAK_RSS + r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from coldstart import Config, load_dataset
from coldstart.fitted import initial_state
from coldstart.frames import check_frame
from coldstart.features import features_to
from coldstart.train import meta_train
folder, steps, device = sys.argv[1], int(sys.argv[2]), sys.argv[4]
t = time.perf_counter()
data = load_dataset(folder + "/ratings.parquet", categorical=True)  # as `coldstart fit` reads it
ratings = check_frame(data.ratings, "ratings")
config = Config(epochs=1, seed=0, device=device)
state = initial_state(config, ratings, None, None)
del data, ratings
prepare = time.perf_counter() - t
rate = []
class Stop(Exception):
    pass
def on_step(r):
    rate.append(r.tasks_per_s)
    if r.step + 1 >= steps:
        raise Stop
try:
    dev = state.net.item_bias.device
    meta_train(state.net, state.learner, state.objective, state.log, features_to(state.user_feats, dev),
               np.random.default_rng(0), dev, on_step)
except Stop:
    pass
rss = peak_rss()
from coldstart.persist import save_model
save_model(state, sys.argv[3], user_history=False)  # the model the recommend step streams users through
gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
print(json.dumps({"prepare_s": prepare, "tasks_per_s": rate[-1], "users": len(state.users),
                  "rss_gib": rss, "gpu_gib": gpu}))
"""

RECOMMEND = PEAK_RSS + r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from coldstart import ColdStartRecommender
from coldstart.streaming import stream_recommend
rec = ColdStartRecommender.load(sys.argv[1], device=sys.argv[4])
done = stream_recommend(rec, sys.argv[2], sys.argv[3], k=10)
gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
print(json.dumps({"users_per_s": done.users_per_s, "seconds": done.seconds,
                  "rss_gib": peak_rss(), "gpu_gib": gpu}))
"""


def run(script: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def new_users(n: int, n_items: int, path: Path) -> None:
    """A Parquet support file of `n` new users, 5 ratings each, grouped by user."""
    import pandas as pd
    rng = np.random.default_rng(1)
    user = np.repeat(np.arange(n), 5)
    pd.DataFrame({"user_id": [f"new{u}" for u in user], "item_id": [f"i{i}" for i in rng.integers(n_items, size=len(user))],
                  "rating": rng.integers(1, 6, size=len(user)).astype(float)}).to_parquet(path, index=False)


def slope(x: list[float], y: list[float]) -> str:
    if len(x) < 2 or min(y) <= 0:
        return "-"
    return f"{np.polyfit(np.log(x), np.log(y), 1)[0]:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000,5000000,20000000", help="ratings per log, comma-separated")
    p.add_argument("--items", type=int, default=30_000)
    p.add_argument("--steps", type=int, default=100, help="meta-steps timed per size")
    p.add_argument("--new-users", type=int, default=100_000, help="users streamed through recommend")
    p.add_argument("--work", default=None, help="folder for the logs (default: a temporary one)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (GPU columns: peak allocated memory)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_scale."))
    work.mkdir(parents=True, exist_ok=True)
    support = work / "new_users.parquet"
    new_users(args.new_users, args.items, support)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        folder = work / f"log_{size}"
        n_users = max(2, round(size / np.mean(PER_USER)))
        t = time.perf_counter()
        if not (folder / "ratings.parquet").exists():
            from coldstart.synthetic import write_synthetic
            write_synthetic(folder, n_users, args.items, ratings_per_user=PER_USER, seed=0)
        generate = time.perf_counter() - t
        model = folder / "model"
        fit = run(FIT, str(folder), str(args.steps), str(model), args.device)
        rec = run(RECOMMEND, str(model), str(support), str(work / "recs.parquet"), args.device)
        rows.append({"ratings": size, "users": fit["users"], "generate_s": generate, **{f"fit_{k}": v for k, v in
                     fit.items() if k != "users"}, **{f"rec_{k}": v for k, v in rec.items()}})
        r = rows[-1]
        r["epoch_s"] = r["users"] / r["fit_tasks_per_s"]
        print(json.dumps(r), flush=True)
    print_table(rows, args.new_users)


def print_table(rows: list[dict], new: int) -> None:
    cols = [("generate_s", "generate s"), ("fit_prepare_s", "load+prepare s"), ("fit_tasks_per_s", "tasks/s"),
            ("epoch_s", "epoch s"), ("fit_rss_gib", "fit peak RSS GiB"), ("rec_users_per_s", "recommend users/s"),
            ("rec_rss_gib", "recommend peak RSS GiB"), ("fit_gpu_gib", "fit GPU GiB"), ("rec_gpu_gib", "recommend GPU GiB")]
    print(f"\n| ratings | users | {' | '.join(name for _, name in cols)} |")
    print("|---:|---:|" + "---:|" * len(cols))
    for r in rows:
        print(f"| {r['ratings']:,} | {r['users']:,} | " + " | ".join(f"{r[k]:,.2f}" if r[k] < 100 else f"{r[k]:,.0f}"
                                                                   for k, _ in cols) + " |")
    x = [r["ratings"] for r in rows]
    print("| log-log slope | | " + " | ".join(slope(x, [r[k] for r in rows]) for k, _ in cols) + " |")
    print(f"\nrecommend streams {new:,} new users (5 ratings each) in every row: its columns should be flat.")


if __name__ == "__main__":
    main()
