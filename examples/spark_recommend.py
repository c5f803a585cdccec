"""Top-k recommendations for a file of new users' support ratings, scored by Spark (local mode by default).

    coldstart fit --out model
    python examples/spark_recommend.py --model model --ratings new_users.csv --output recs

--ratings is a CSV with a header (user_id, item_id, optional rating) or Parquet; --users, optional, holds the
users' features (user_id + the feature columns the model was trained with). --output is a folder of Parquet part
files (CSV with --format csv), Spark's usual output. See examples/README.md for a cluster.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from coldstart.batch import ModelDir, spark_recommend

# pyspark 4.3 warns on every pandas conversion under pandas >= 3; scoring is checked equal to in-process recommend
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder written by `coldstart fit`")
    parser.add_argument("--ratings", required=True, help="support ratings of the new users (CSV or Parquet)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--users", help="user features (CSV or Parquet), joined on user_id")
    parser.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--partitions", type=int, help="partitions of the users (default: Spark's setting)")
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*], on loopback)")
    parser.add_argument("--ship-model", action="store_true",
                        help="copy the model folder to every executor (SparkContext.addFile) instead of reading "
                             "--model's path there")
    return parser.parse_args(argv)


def session(master: str = "local[*]") -> Any:
    """A SparkSession; in local mode bound to loopback, with the UI off and workers on this Python."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("coldstart-recommend")
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false"))
    return builder.getOrCreate()


def read_table(spark: Any, path: str) -> Any:
    """A CSV (every column read as text, so ids keep leading zeros) or Parquet file/folder as a Spark DataFrame."""
    if path.endswith((".csv", ".csv.gz")):
        return spark.read.csv(path, header=True)
    return spark.read.parquet(path)


def recommend(spark: Any, ratings: str, model: str, output: str, users: str | None = None, k: int = 10,
              partitions: int | None = None, fmt: str = "parquet", ship_model: bool = False) -> None:
    """Read the support ratings (and features), score them with `spark_recommend`, write the top-k."""
    model_dir: ModelDir = str(Path(model).resolve())
    if ship_model:
        from pyspark import SparkFiles

        spark.sparkContext.addFile(model_dir, recursive=True)
        model_dir = partial(SparkFiles.get, Path(model_dir).name)  # the executor's copy, found on the executor
    support = read_table(spark, ratings)
    if "rating" in support.columns:
        support = support.withColumn("rating", support["rating"].cast("double"))
    columns: list[str] = []
    if users:
        features = read_table(spark, users)
        columns = [c for c in features.columns if c != "user_id"]
        support = support.join(features, on="user_id", how="left")
    recs = spark_recommend(support, model_dir, k=k, user_columns=columns, partitions=partitions)
    writer = recs.write.mode("overwrite")
    writer.option("header", True).csv(output) if fmt == "csv" else writer.parquet(output)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = session(args.master)
    try:
        recommend(spark, args.ratings, args.model, args.output, args.users, args.k, args.partitions, args.format,
                  args.ship_model)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
