"""The `coldstart` command line: a thin Typer layer over the Python API, and the only part of coldstart that prints.

    main.py      the app and its commands, a screenful each
    options.py   the options several commands share (data columns, config flags, ...) and their parsers
    progress.py  stderr: progress bars or lines, notes, the library's log messages
    render.py    stdout and --output: tables, CSV/JSON/Parquet, `info`'s listing; item titles -> ids
    steps.py     what commands share: bad input -> exit code, reading the data, a fit with progress, a report
    relaunch.py  `fit --nproc N`: the same command under torchrun
"""
from .main import app, main

__all__ = ["app", "main"]
