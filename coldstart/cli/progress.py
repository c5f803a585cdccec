"""What a person watching sees on stderr: notes, the library's log messages, and the two progress displays.

On a terminal the displays are rich bars; without one (batch jobs, `nohup`, `> log`) they are plain lines, at most
every PROGRESS_EVERY_S seconds. `--quiet` leaves errors only. Results go to stdout (render.py), never here.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..streaming import Progress
    from ..train import StepReport

PROGRESS_EVERY_S = 30.0  # without a terminal: a progress line per epoch, and at least this often within one
SHOWN_AS_PROGRESS = ("coldstart.train",)  # loggers whose INFO lines (a line per epoch) FitProgress shows in its own way


def note(quiet: bool, message: str) -> None:
    if not quiet:
        typer.echo(message, err=True)


def show_messages(quiet: bool, threads: int | None = None) -> None:
    """The library's log on stderr: coldstart's INFO messages (a fit's stages: the teacher, ...) as the bare message
    (but for SHOWN_AS_PROGRESS), every logger's warnings as `WARNING: message`; errors only with --quiet. Sets
    torch's CPU threads when given."""
    def shown(r: logging.LogRecord) -> bool:
        if quiet or r.levelno >= logging.WARNING:
            return r.levelno >= (logging.ERROR if quiet else logging.WARNING)
        ours = r.name.split(".")[0] == "coldstart" and r.name not in SHOWN_AS_PROGRESS
        return ours and r.levelno >= logging.INFO

    handler = _Stderr()
    handler.addFilter(shown)
    handler.setFormatter(_Compact())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("coldstart").setLevel(logging.INFO)  # quiet or not: the handler filters (see tests' caplog)
    if threads is not None:
        import torch
        torch.set_num_threads(threads)


class _Stderr(logging.Handler):
    """Writes to the sys.stderr of the moment: the one a rich bar redirects (messages print above the bar), or
    CliRunner's."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 (logging's own policy: report, never raise)
            self.handleError(record)


class _Compact(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno == logging.INFO else f"{record.levelname}: {message}"


class FitProgress:
    """Progress of meta-training: a rich bar on a terminal; without one a plain line after every epoch
    (`per_epoch`) and at least every PROGRESS_EVERY_S seconds; nothing with --quiet. The loss shown is the mean
    over the epoch so far (StepReport.epoch_loss)."""

    def __init__(self, quiet: bool, per_epoch: bool = True):
        self.quiet, self.tty, self.per_epoch = quiet, sys.stderr.isatty(), per_epoch
        self.bar = None

    def __enter__(self):
        if self.quiet:
            return None
        self.task, self.last = None, None
        if not self.tty:
            return self.line
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:,.0f} tasks/s"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        return self.update

    def update(self, r: StepReport) -> None:
        if self.task is None or (r.epoch == 0 and r.step == 0):  # a new fit starts a new bar
            self.task = self.bar.add_task("fit", total=r.steps_per_epoch * r.epochs, epoch="", loss=0.0, rate=0.0)
        self.bar.update(self.task, advance=1, epoch=f"{r.epoch + 1}/{r.epochs}", loss=epoch_loss(r),
                        rate=r.tasks_per_s)

    def line(self, r: StepReport) -> None:
        now, end = time.monotonic(), r.step + 1 == r.steps_per_epoch
        self.last = now if self.last is None else self.last  # the clock starts at the first step (not before the
        #                                                       teacher's fit, which has its own messages)
        if (end and self.per_epoch) or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            where = "done" if end else f"step {r.step + 1:,}/{r.steps_per_epoch:,}"
            typer.echo(f"epoch {r.epoch + 1}/{r.epochs} {where}: loss {epoch_loss(r):.4f} (epoch mean), "
                       f"{r.tasks_per_s:,.0f} tasks/s", err=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def epoch_loss(r: StepReport) -> float:
    """The mean loss of the epoch so far (one batch's loss from a library that does not report it)."""
    return getattr(r, "epoch_loss", r.loss)


class ChunkProgress:
    """Progress of a streamed recommend: a rich bar over the support rows on a terminal (its total from the
    Parquet footer), else a plain line at most every PROGRESS_EVERY_S seconds; nothing with --quiet."""

    def __init__(self, quiet: bool, source: Path):
        self.quiet, self.source, self.bar, self.last = quiet, source, None, float("-inf")

    def __enter__(self):
        if self.quiet or not sys.stderr.isatty():
            return self.line
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("scoring"), BarColumn(), TextColumn("{task.completed:,} of {task.total:,} rows"
                            "  {task.fields[users]:,} users  {task.fields[rate]:,.0f} users/s"),
                            TimeRemainingColumn(), console=Console(stderr=True))
        self.bar.start()
        self.task = self.bar.add_task("score", total=rows_in(self.source), users=0, rate=0.0)
        return self.update

    def update(self, p: Progress) -> None:
        self.bar.update(self.task, completed=p.rows, users=p.users, rate=p.users_per_s)

    def line(self, p: Progress) -> None:
        if not self.quiet and p.seconds - self.last >= PROGRESS_EVERY_S:
            self.last = p.seconds
            typer.echo(f"scored {p.users:,} users ({p.rows:,} support rows) in {p.seconds:.0f}s, "
                       f"{p.users_per_s:,.0f} users/s", err=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def rows_in(source: Path) -> int | None:
    """The number of rows of a Parquet file (from its footer); None for other files."""
    if source.suffix.lower() not in (".parquet", ".pq"):
        return None
    import pyarrow.parquet as pq
    return pq.ParquetFile(source).metadata.num_rows
