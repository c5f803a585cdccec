"""Streaming batch scoring: support ratings read in chunks (Parquet record batches, CSV blocks), recommendations
written as they are made (Parquet row groups, CSV blocks), so memory does not grow with the number of users.

A user's rows must be together in the file (any order of users): the last user of a chunk is carried over to the
next one, and a user met again after other users is an error. Each user is scored exactly as
`ColdStartRecommender.recommend` scores it (per-user negatives: the result never depends on the chunking).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import DataError
from .io.readers import read_csv_chunks
from .io.validate import Columns, _Source, standardize_ratings
from .files import atomic_file

CHUNK_ROWS = 1 << 18  # support rows read at once (about 260k: ~50 MB of frames, whatever the file's size)
STREAMABLE = (".parquet", ".pq", ".csv")


@dataclass
class Progress:
    """After each chunk: what was scored so far."""

    users: int
    rows: int
    seconds: float

    @property
    def users_per_s(self) -> float:
        return self.users / max(self.seconds, 1e-9)


def streamable(path: Path) -> bool:
    """Whether `stream_recommend` can read (or write) `path`: Parquet or plain CSV."""
    return Path(path).suffix.lower() in STREAMABLE


def stream_recommend(rec, support: Path, output: Path, k: int = 10, exclude_seen: bool = True,
                     users: pd.DataFrame | None = None, cols: Columns = Columns(), chunk_rows: int = CHUNK_ROWS,
                     on_chunk: Callable[[Progress], None] | None = None) -> Progress:
    """Top-k items for every user of the support file `support`, written to `output` (Parquet or CSV, by its
    extension) chunk by chunk; the output appears complete under its name at the end, or not at all."""
    output = Path(output)
    if not streamable(output):
        raise ValueError(f"{output}: streaming writes .parquet or .csv, found {output.suffix or 'no extension'!r}")
    start, done = time.perf_counter(), Progress(0, 0, 0.0)

    def write(tmp: str) -> None:
        nonlocal done
        writer = _Writer(Path(tmp), output.suffix.lower())
        try:
            for chunk in user_chunks(support, cols, chunk_rows):
                writer.write(rec.recommend(chunk, k=k, exclude_seen=exclude_seen, users=users))
                done = Progress(done.users + chunk["user_id"].nunique(), done.rows + len(chunk),
                                time.perf_counter() - start)
                if on_chunk is not None:
                    on_chunk(done)
        finally:
            writer.close()

    atomic_file(output, write)  # complete under its name at the end (umask permissions), or not at all
    return done


def user_chunks(path: Path, cols: Columns = Columns(), chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Checked support frames of about `chunk_rows` rows, each holding whole users."""
    finished: set[str] = set()
    checked = (standardize_ratings(raw, src, cols) for raw, src in _raw_chunks(Path(path), cols, chunk_rows))
    for frame in whole_users(checked):
        _check_grouped(frame, finished, str(path))
        yield frame.reset_index(drop=True)


def whole_users(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Re-cut a stream of frames whose rows are grouped by `user_id` so that no user's rows span two frames: each
    frame's last user waits for the next frame (a file read in chunks; Spark's `mapInPandas`, which cuts a
    partition every 10,000 rows)."""
    pending = None
    for batch in batches:
        if pending is not None:
            batch = pd.concat([pending, batch], ignore_index=True)
        if batch.empty:
            continue
        last = (batch["user_id"] == batch["user_id"].iloc[-1]).to_numpy()
        pending = batch[last]
        if not last.all():
            yield batch[~last]
    if pending is not None and not pending.empty:
        yield pending


def _check_grouped(frame: pd.DataFrame, finished: set[str], name: str) -> None:
    """Refuse a user whose rows are not together: met again after other users (in this frame or an earlier one)."""
    ids = frame["user_id"].to_numpy()
    starts = ids[1:] != ids[:-1]
    runs = [ids[0], *ids[1:][starts]] if len(ids) else []
    again = [u for u in runs if u in finished]
    if len(again) or len(runs) != len(set(runs)):
        user = again[0] if again else pd.Series(runs)[pd.Series(runs).duplicated()].iloc[0]
        raise DataError(f"{name}: user {user!r} appears again after other users; streaming needs each user's "
                        "rows together (sort the file by user_id)")
    finished.update(runs)


def _raw_chunks(path: Path, cols: Columns, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, _Source]]:
    """Raw frames of a Parquet or CSV file, each with a _Source whose row numbers are those of the whole file."""
    if not path.is_file():
        raise DataError(f"{path}: expected a support ratings file, found {'a folder' if path.is_dir() else 'nothing'}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from _parquet_chunks(path, chunk_rows)
    elif suffix == ".csv":
        yield from _csv_chunks(path, cols, chunk_rows)
    else:
        raise DataError(f"{path}: streaming reads .parquet or .csv, found {suffix or 'no extension'!r}")


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, _Source]]:
    import pyarrow.parquet as pq
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
        first = 1
        for batch in batches:
            frame = batch.to_pandas()
            yield frame, _Source(str(path), "row", first)
            first += len(frame)
    except (OSError, ValueError) as exc:  # pyarrow's errors for a file that is not Parquet
        raise DataError(f"{path}: expected a Parquet file: {exc}") from exc


def _csv_chunks(path: Path, cols: Columns, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, _Source]]:
    return read_csv_chunks(path, str(path), sep=",", text_cols=(cols.user, cols.item), rows=chunk_rows)


class _Writer:
    """Appends recommendation frames to a Parquet file (a row group each) or a CSV file (one header)."""

    def __init__(self, path: Path, suffix: str):
        self.path, self.parquet, self.sink, self.open = path, suffix in (".parquet", ".pq"), None, True

    def write(self, recs: pd.DataFrame) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.Table.from_pandas(recs, preserve_index=False)
            if self.sink is None:
                self.sink = pq.ParquetWriter(self.path, table.schema)
            self.sink.write_table(table)
        else:
            header = self.sink is None
            if header:
                self.sink = open(self.path, "w", encoding="utf-8", newline="")
            recs.to_csv(self.sink, index=False, header=header)

    def close(self) -> None:
        if not self.open:
            return
        self.open = False
        if self.sink is None:  # no user at all: still a valid, empty file
            self.write(pd.DataFrame({"user_id": pd.Series(dtype=object), "rank": pd.Series(dtype="int64"),
                                     "item_id": pd.Series(dtype=object), "score": pd.Series(dtype="float64")}))
        self.sink.close()
