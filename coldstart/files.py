"""Atomic writes: a file appears complete under its name, or not at all."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_file(path: Path, write: Callable[[str], object]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place; on failure nothing is left."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
