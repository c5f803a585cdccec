"""Data in: interaction logs and side features from files, validated, as DataFrames with string ids.

Where each part lives, bottom layer first (each module imports only from those above it in this list):

    values.py    one policy for ids, numbers, times (`id_text`, `to_float`, `to_seconds`); `frames.py` shares it
    validate.py  raw table -> standard columns; errors name file, line, column, expected, found
    readers.py   CSV/TSV/Parquet/RecBole, compressed or on stdin, whole or in chunks (`read_any`)
    dataset.py   the `Dataset` container; `load_ratings` and `load_features` (read, then validate)
    formats.py   known layouts (MovieLens 100K/1M/latest, RecBole folders, Last.fm) and `load_dataset`

Every reader reports bad input as a `coldstart.errors.DataError`. (Inside coldstart, `import io` is still the
standard library's: imports are absolute.)
"""
from __future__ import annotations

from .dataset import Dataset, load_features, load_ratings
from .formats import load_dataset
from .readers import read_any
from .validate import ITEM, RATING, TIME, USER, Columns

__all__ = ["ITEM", "RATING", "TIME", "USER", "Columns", "Dataset", "load_dataset", "load_features",
           "load_ratings", "read_any"]
