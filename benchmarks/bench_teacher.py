"""What the teacher prior costs a fit: the default `coldstart fit` with `--teacher auto` against `--teacher none`,
each in its own process (wall seconds and peak RSS), on the bundled ml-latest-small and on ML-100K; and the EASE
teacher's own fit, timed alone (the (U, U) Woodbury form it uses with fewer users than items, beside the (I, I)
float64 inverse it replaced).

    python benchmarks/bench_teacher.py [--data DIR ...] [--epochs 40] [--threads 1]

Machines here are noisy: read the ratios, measured in one run, more than the seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = [str(REPO / "data" / "ml-latest-small"), str(REPO.parent / "shared" / "data" / "ml-100k")]

FIT = """
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from coldstart import ColdStartRecommender, Config, load_dataset
data = load_dataset({data!r})
start = time.perf_counter()
rec = ColdStartRecommender(Config(teacher={teacher!r}, epochs={epochs}, device="cpu")).fit(data)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "teacher": rec.state_.config.teacher}}))
"""

TEACHER = """
import json, time, numpy as np, scipy.linalg, threadpoolctl, torch
torch.set_num_threads({threads})
from coldstart import ColdStartRecommender, Config, load_dataset
from coldstart.fitted import initial_state
from coldstart.frames import check_frame
from coldstart.teacher import fit_ease, interactions
data = load_dataset({data!r})
state = initial_state(Config(teacher="none", device="cpu"), check_frame(data.ratings, "r"), data.items, data.users)
x = interactions(state.log, len(state.items))
with threadpoolctl.threadpool_limits({threads}):
    start = time.perf_counter(); fit_ease(x, 0); new = time.perf_counter() - start
    start = time.perf_counter()
    gram = (x.T @ x).toarray().astype(np.float64); gram[np.diag_indices_from(gram)] += 500.0
    scipy.linalg.inv(gram, overwrite_a=True, check_finite=False); old = time.perf_counter() - start
print(json.dumps({{"users": x.shape[0], "items": x.shape[1], "ease_s": new, "old_inverse_s": old}}))
"""


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    print("| data | users x items | EASE teacher fit (s) | its old (I, I) inverse alone (s) | fit, teacher (s) | "
          "fit, none (s) | time ratio | peak RSS, teacher (GiB) | peak RSS, none (GiB) | memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for data in args.data:
        if not Path(data).exists():
            print(f"| {data} | missing | | | | | | | | |")
            continue
        kw = {"data": data, "epochs": args.epochs, "threads": args.threads}
        cost = run(TEACHER.format(**kw))
        with_t, without = run(FIT.format(teacher="auto", **kw)), run(FIT.format(teacher="none", **kw))
        print(f"| {Path(data).name} | {cost['users']} x {cost['items']} | {cost['ease_s']:.1f} | "
              f"{cost['old_inverse_s']:.1f} | {with_t['seconds']:.1f} ({with_t['teacher']}) | "
              f"{without['seconds']:.1f} | {with_t['seconds'] / without['seconds']:.2f} | {with_t['rss_gib']:.2f} | "
              f"{without['rss_gib']:.2f} | {with_t['rss_gib'] / without['rss_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
