"""Helpers shared by the benchmark scripts: data loading, device set-up, timing and memory read-outs.

Not part of the package; imported as `_common` by scripts run as `python benchmarks/<script>.py`.
"""
from __future__ import annotations

import platform
import resource
import sys
import time
from pathlib import Path

import torch

import coldstart
from coldstart import Dataset, load_dataset, make_synthetic
from coldstart.fitted import resolve_device

REPO = Path(__file__).resolve().parents[1]


def load_data(path: str | None, n_users: int, n_items: int, seed: int) -> Dataset:
    """The dataset folder/file at `path`, or seeded synthetic data of the given size when `path` is None."""
    if path is None:
        return make_synthetic(n_users=n_users, n_items=n_items, seed=seed)
    return load_dataset(path)


def describe(data: Dataset) -> str:
    r = data.ratings
    return (f"{data.name}: {len(r):,} ratings, {r['user_id'].nunique():,} users, {r['item_id'].nunique():,} rated items"
            f"{'' if data.items is None else f', item features {list(data.items.columns[1:])}'}"
            f"{'' if data.users is None else f', user features {list(data.users.columns[1:])}'}")


def device_and_header(device: str, threads: int | None = None) -> torch.device:
    """Resolve `device` as the recommender does, set torch's CPU threads when given, print what the run is on."""
    dev = resolve_device(device)
    if threads is not None:
        if threads < 1:
            raise SystemExit(f"--threads must be >= 1, found {threads}")
        torch.set_num_threads(threads)
    print(f"coldstart {coldstart.__version__}, torch {torch.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}")
    line = f"device: {dev}, torch CPU threads: {torch.get_num_threads()}"
    if dev.type == "cuda":
        line += f", GPU: {torch.cuda.get_device_name(dev)}"
    print(line)
    return dev


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Timer:
    """Wall-clock seconds of a block, with the device synchronised at both ends."""

    def __init__(self, dev: torch.device):
        self.dev, self.seconds = dev, float("nan")

    def __enter__(self) -> Timer:
        sync(self.dev)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.dev)
        self.seconds = time.perf_counter() - self._start


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def reset_cuda_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def cuda_peak_mib(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None


def memory_line(dev: torch.device, cuda_peak: float | None = None) -> str:
    """`peak RSS ... MiB` plus the CUDA peak (given, or read now) on a CUDA device."""
    line = f"peak RSS {peak_rss_mib():,.0f} MiB"
    if dev.type == "cuda":
        peak = cuda_peak_mib(dev) if cuda_peak is None else cuda_peak
        line += f", CUDA max_memory_allocated {peak:,.1f} MiB"
    return line


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain fixed-width text table, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False
