"""Speed of two versions of coldstart side by side in one run: meta-training tasks/s and batched recommend users/s.

The other version is checked out from git (`--before REV`, default HEAD) into a temporary worktree; each version
runs in its own subprocess (so each imports its own code), alternating round by round so that both see the same
machine load. Only API common to every version is used: `ColdStartRecommender(Config(...)).fit(data)`,
`summary_["tasks_per_s"]` and `recommend(support, k=10)`. Prints each round and the after/before ratios.

    python benchmarks/bench_versions.py --before 684a1a6 --data ../shared/data/ml-100k
    python benchmarks/bench_versions.py --before 684a1a6 --synthetic-items 30000 --users 300
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from coldstart import ColdStartRecommender, Config, Dataset, load_dataset, make_synthetic
try:
    from coldstart.evaluation import shot_task, split_new_users
except ImportError:  # a version from before coldstart/evaluation/
    from coldstart.evaluate import shot_task, split_new_users
path, n_items = {data!r}, {items}
data = load_dataset(path) if path else make_synthetic(n_users=2000, n_items=n_items, seed=0)
train, new = split_new_users(data.ratings, 0.2, 0)
support = shot_task(new, 5).support
support = support[support["user_id"].isin(support["user_id"].unique()[:{users}])]
rec = ColdStartRecommender(Config(epochs={epochs}, seed=0)).fit(Dataset(train, data.items, data.users, data.name))
rec.recommend(support.head(50), k=10)  # warm-up
start = time.perf_counter()
recs = rec.recommend(support, k=10)
seconds = time.perf_counter() - start
import coldstart
assert coldstart.__file__.startswith(TREE), coldstart.__file__  # this version's code, not an installed one
print(json.dumps({{"tasks_per_s": rec.summary_["tasks_per_s"], "users": int(support["user_id"].nunique()),
                  "users_per_s": support["user_id"].nunique() / seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="HEAD", help="git revision of the other version (default HEAD)")
    p.add_argument("--data", help="dataset for load_dataset (default: synthetic, 2000 users)")
    p.add_argument("--synthetic-items", type=int, default=1000, help="catalogue of the synthetic data")
    p.add_argument("--users", type=int, default=1000, help="at most this many new users to recommend for")
    p.add_argument("--epochs", type=int, default=1, help="meta-training epochs of each fit (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, each running both versions (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads in each version (default 1)")
    args = p.parse_args()
    data = str(Path(args.data).resolve()) if args.data else None  # each version runs in its own folder
    code = PROBE.format(threads=args.threads, data=data, items=args.synthetic_items, users=args.users,
                        epochs=args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(before), args.before],
                       check=True)
        try:
            results = run_rounds(code, {"before": before, "after": REPO}, args.rounds)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)
    report(results, args)


def run_rounds(code: str, trees: dict[str, Path], rounds: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(rounds):
        for name, tree in trees.items():
            out = subprocess.run([sys.executable, "-c", f"TREE = {str(tree)!r}\n" + code], capture_output=True,
                                 text=True, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"})
            if out.returncode:
                raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {name:6s} {results[name][-1]}", flush=True)
    return results


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    print(f"\n{args.data or f'synthetic, {args.synthetic_items:,} items'}, {args.threads} thread(s), "
          f"before = {args.before}, best of {args.rounds} rounds")
    print(f"{'':14s}{'before':>12s}{'after':>12s}{'after/before':>14s}")
    for key, better in (("tasks_per_s", max), ("users_per_s", max), ("peak_rss_mib", min)):
        b = better(r[key] for r in results["before"])
        a = better(r[key] for r in results["after"])
        ratios = [x[key] / y[key] for x, y in zip(results["after"], results["before"])]
        print(f"{key:14s}{b:12,.1f}{a:12,.1f}{a / b:13.2f}x  (per-round median {statistics.median(ratios):.2f}x)")


if __name__ == "__main__":
    main()
