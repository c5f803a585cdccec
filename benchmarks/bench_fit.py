"""Meta-training speed: fit time and tasks/s of each learner (`--learners`, default maml and fomaml), for the
implicit and the rating objective, all measured in one run on the same data.

Each fit starts from the same seed; the figures are `rec.summary_` (`seconds` and `tasks_per_s` of the meta-training
loop, `tasks` = users x epochs) plus the wall time of the whole `fit` call (encoding included). One tiny untimed fit
warms the device first. Prints one row per fit as it finishes, then each learner against maml and rating/implicit
ratios and peak memory.

    python benchmarks/bench_fit.py                              # data/ml-latest-small, 3 epochs, 4 fits
    python benchmarks/bench_fit.py --data ../shared/data/ml-100k --epochs 1
"""
from __future__ import annotations

import argparse
import time

from _common import (
    REPO,
    Timer,
    cuda_peak_mib,
    describe,
    device_and_header,
    load_data,
    memory_line,
    peak_rss_mib,
    reset_cuda_peak,
    table,
)

from coldstart import ColdStartRecommender, Config, make_synthetic
from coldstart.learners import learner_names

BUNDLED = REPO / "data" / "ml-latest-small"
LEARNERS = tuple(learner_names())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help=f"dataset folder or file for coldstart.load_dataset (default: {BUNDLED.name} "
                                  "bundled in data/ when present, else synthetic data)")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data even when the bundled data is there")
    p.add_argument("--synthetic-users", type=int, default=2000, help="users of the synthetic data (default 2000)")
    p.add_argument("--synthetic-items", type=int, default=1000, help="items of the synthetic data (default 1000)")
    p.add_argument("--epochs", type=int, default=3, help="meta-training epochs of each fit (default 3)")
    p.add_argument("--objectives", default="implicit,rating",
                   help="comma-separated objectives to fit (default implicit,rating)")
    p.add_argument("--learners", default="maml,fomaml",
                   help=f"comma-separated, some of {','.join(LEARNERS)} (default maml,fomaml)")
    p.add_argument("--meta-batch-size", type=int, default=Config.meta_batch_size,
                   help=f"users per meta-step (default {Config.meta_batch_size})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and of the model (default 0)")
    args = p.parse_args(argv)
    args.objectives = _choices(p, "--objectives", args.objectives, ("implicit", "rating"))
    args.learners = _choices(p, "--learners", args.learners, LEARNERS)
    for name in ("epochs", "meta_batch_size", "synthetic_users", "synthetic_items"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _choices(p: argparse.ArgumentParser, flag: str, text: str, allowed: tuple[str, ...]) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        p.error(f"{flag}: expected a comma-separated subset of {', '.join(allowed)}, found {text!r}")
    return list(dict.fromkeys(values))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dev = device_and_header(args.device, args.threads)
    start = time.perf_counter()
    path = args.data if args.data or args.synthetic or not BUNDLED.is_dir() else str(BUNDLED)
    data = load_data(path, args.synthetic_users, args.synthetic_items, args.seed)
    print(f"data: {describe(data)} (loaded in {time.perf_counter() - start:.1f} s)")
    base = Config(epochs=args.epochs, device=args.device, seed=args.seed, meta_batch_size=args.meta_batch_size)
    print(f"config: epochs {base.epochs}, meta_batch_size {base.meta_batch_size}, inner_steps {base.inner_steps}, "
          f"n_negatives {base.n_negatives}, embedding_dim {base.embedding_dim}, "
          f"hidden {list(base.hidden)}")

    # untimed warm-up: allocator, kernels and lazy initialisation of every code path measured below
    tiny = make_synthetic(n_users=40, n_items=30, ratings_per_user=(4, 8), seed=1)
    for objective in args.objectives:
        for learner in args.learners:
            ColdStartRecommender(base.replace(epochs=1, objective=objective, learner=learner)).fit(tiny)

    headers = ["objective", "learner", "tasks", "fit s", "wall s", "tasks/s", "final loss", "peak RSS MiB"]
    headers += ["CUDA peak MiB"] if dev.type == "cuda" else []
    print()
    results: dict[tuple[str, str], dict] = {}
    rows, cuda_peaks = [], [0.0]
    for objective in args.objectives:
        for learner in args.learners:
            rec = ColdStartRecommender(base.replace(objective=objective, learner=learner))
            reset_cuda_peak(dev)
            with Timer(dev) as t:
                rec.fit(data)
            s = rec.summary_
            results[objective, learner] = s
            row = [objective, learner, s["tasks"], f"{s['seconds']:.2f}", f"{t.seconds:.2f}", f"{s['tasks_per_s']:.1f}",
                   f"{s['epoch_query_loss'][-1]:.4f}", f"{peak_rss_mib():,.0f}"]
            if dev.type == "cuda":
                cuda_peaks.append(cuda_peak_mib(dev))
                row.append(f"{cuda_peaks[-1]:,.1f}")
            rows.append(row)
            print(f"fitted {objective:8s} {learner}: {s['seconds']:.2f} s, {s['tasks_per_s']:.1f} tasks/s",
                  flush=True)  # progress that survives a timeout

    print()
    print(f"meta-training, {args.epochs} epoch(s), {s['train_users']:,} training users, "
          f"{s['n_items']:,} items, device {s['device']}:")
    print(table(headers, rows))
    print()
    if "maml" in args.learners:
        for objective in args.objectives:
            for other in (name for name in args.learners if name != "maml"):
                sec, fst = results[objective, "maml"], results[objective, other]
                print(f"ratio {other}/maml tasks/s, {objective}: {fst['tasks_per_s'] / sec['tasks_per_s']:.2f}x "
                      f"({fst['tasks_per_s']:.1f} vs {sec['tasks_per_s']:.1f})")
    if {"implicit", "rating"} <= set(args.objectives):
        for learner in args.learners:
            imp, rat = results["implicit", learner], results["rating", learner]
            print(f"ratio rating/implicit tasks/s, {learner}: {rat['tasks_per_s'] / imp['tasks_per_s']:.2f}x "
                  f"({rat['tasks_per_s']:.1f} vs {imp['tasks_per_s']:.1f})")
    print(f"memory: {memory_line(dev, max(cuda_peaks))} (RSS is the process peak so far, so it only grows "
          "down the table)")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
