"""What the commands share between reading their options and writing their results: bad input as an exit code, the
data read with a note of what it holds, a fit with its progress, a study's report."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .options import UsageError, item_counts, load_data
from .progress import ChunkProgress, FitProgress, note
from .relaunch import leave_process_group
from .render import items_phrase

if TYPE_CHECKING:
    import pandas as pd

    from ..evaluation import Report
    from ..io import Columns, Dataset
    from ..recommender import ColdStartRecommender


@contextmanager
def reported() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 1; a UsageError, exit code 2."""
    from ..errors import NotFittedError
    try:
        yield
    except (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, NotFittedError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        fail(message, code=2 if isinstance(exc, UsageError) else 1)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def read_data(ratings: Path | None, items: Path | None, users: Path | None, columns: tuple[str, str, str, str],
              quiet: bool, categorical: bool = False, k: int | None = None) -> Dataset:
    """The data the options name, saying on stderr what is read and what it holds (and when `k` is capped)."""
    note(quiet, f"reading {ratings or 'the bundled MovieLens latest-small'}")
    data = load_data(ratings, items, users, columns, categorical)
    catalogue, rated = item_counts(data)
    note(quiet, f"{data.name}: {len(data.ratings):,} ratings, {data.ratings['user_id'].nunique():,} users, "
                f"{items_phrase(catalogue, rated)}")
    if k is not None:
        note_cap(quiet, "--k", k, catalogue)
    return data


def note_cap(quiet: bool, option: str, k: int, n_items: int) -> None:
    if k > n_items:
        note(quiet, f"note: {option} {k} is more than the catalogue holds: capped to {n_items:,} items")


def train(rec: ColdStartRecommender, data: Dataset, checkpoint: Path, every: int, resume: bool,
          quiet: bool) -> Exception | None:
    """Fit `rec` with a progress display; a TrainingDiverged it raised (the model is kept to be saved)."""
    from ..distributed import is_main_process
    from ..errors import TrainingDiverged
    if checkpoint.exists() and not resume:
        note(quiet, f"note: {checkpoint} (an earlier, unfinished fit) will be overwritten; --resume continues it")
    diverged = None
    with FitProgress(quiet) as on_step:
        try:
            rec.fit(data, on_step=on_step, checkpoint=checkpoint, checkpoint_every=every, resume=resume)
        except TrainingDiverged as exc:
            diverged = exc
    if not is_main_process():
        leave_process_group()
    return diverged


def fit_notes(quiet: bool, rec: ColdStartRecommender, out: Path, diverged: Exception | None) -> None:
    if diverged is not None:
        fail(f"{diverged}; saved that model to {out}")
    s = rec.summary_
    note(quiet, f"saved {out}: {s['tasks']:,} tasks in {s['seconds']:.1f}s ({s['tasks_per_s']:,.0f} tasks/s) "
                f"on {s['device']}; final query loss {s['epoch_query_loss'][-1]:.4f}")


def recommend_streamed(rec: ColdStartRecommender, ratings: Path, output: Path, k: int, exclude_seen: bool,
                       users: pd.DataFrame | None, cols: Columns, quiet: bool) -> None:
    """`recommend --ratings FILE --output FILE`, a chunk of users at a time."""
    from ..streaming import stream_recommend
    with ChunkProgress(quiet, ratings) as on_chunk:
        done = stream_recommend(rec, ratings, output, k=k, exclude_seen=exclude_seen, users=users, cols=cols,
                                on_chunk=on_chunk)
    note(quiet, f"wrote {output}: {done.users:,} users in {done.seconds:.1f}s ({done.users_per_s:,.0f} users/s)")


def write_study(report: Report, output: Path, quiet: bool) -> None:
    """A study's tables on stdout and its files in `output`."""
    from ..evaluation import format_table, write_report
    files = write_report(report, output)
    typer.echo(format_table(report))
    note(quiet, "wrote " + ", ".join(str(f) for f in files))
