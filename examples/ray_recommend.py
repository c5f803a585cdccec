"""Top-k recommendations for a file of new users' support ratings, scored by Ray Data (a local Ray by default).

    coldstart fit --out model
    python examples/ray_recommend.py --model model --ratings new_users.csv --output recs

--ratings is a CSV with a header (user_id, item_id, optional rating) or Parquet; --users, optional, holds the
users' features (user_id + the feature columns the model was trained with), read on the driver and joined with
pandas (a small table). --output is a folder of Parquet files (CSV with --format csv). See examples/README.md for
a cluster.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pandas as pd

from coldstart.batch import ray_recommend


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder written by `coldstart fit`")
    parser.add_argument("--ratings", required=True, help="support ratings of the new users (CSV or Parquet)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--users", help="user features (CSV or Parquet), joined on user_id")
    parser.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--partitions", type=int, default=16, help="blocks the users are hashed into (default 16)")
    parser.add_argument("--workers", type=int, default=1, help="scoring actors, at most (default 1)")
    parser.add_argument("--address", help="an existing Ray cluster (e.g. auto); default: start one on loopback")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    return parser.parse_args(argv)


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address`, or start a local one on loopback without dashboard or usage reports."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False


def read_support(path: str) -> Any:
    """A CSV (ids read as text, so they keep leading zeros) or Parquet file/folder as a Ray Dataset."""
    import pyarrow as pa
    import pyarrow.csv
    import ray.data

    if path.endswith((".csv", ".csv.gz")):
        text = pyarrow.csv.ConvertOptions(column_types={"user_id": pa.string(), "item_id": pa.string()})
        return ray.data.read_csv(path, convert_options=text)
    return ray.data.read_parquet(path)


def read_features(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"user_id": str}) if path.endswith((".csv", ".csv.gz")) else pd.read_parquet(path)
    return frame.assign(user_id=frame["user_id"].astype(str))


def recommend(ratings: str, model: str, output: str, users: str | None = None, k: int = 10,
              partitions: int = 16, workers: int = 1, fmt: str = "parquet") -> None:
    """Read the support ratings (and features), score them with `ray_recommend`, write the top-k."""
    support = read_support(ratings)
    columns: list[str] = []
    if users:
        features = read_features(users)
        columns = [c for c in features.columns if c != "user_id"]
        support = support.map_batches(lambda b: b.merge(features, on="user_id", how="left"), batch_format="pandas")
    recs = ray_recommend(support, str(Path(model).resolve()), k=k, user_columns=columns, partitions=partitions,
                         workers=workers)
    recs.write_csv(output) if fmt == "csv" else recs.write_parquet(output)


def main(argv: list[str] | None = None) -> None:
    import ray

    args = parse_args(argv)
    start_ray(args.address, args.num_cpus)
    try:
        recommend(args.ratings, args.model, args.output, args.users, args.k, args.partitions, args.workers,
                  args.format)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
