"""Training checkpoints: one safetensors file (tensors) with a JSON header (everything else), written atomically.

A checkpoint belongs to one fit: it records the config and a fingerprint of the training data, and a resume
with other data or another config is refused with what differs. Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .config import Config
from .files import atomic_bytes
from .fitted import FittedState
from .persist import header_json
from .train import Snapshot
from .errors import CheckpointError

CHECKPOINT_FORMAT = 2  # 2: no validation record (fit keeps the last epoch)
RESUMABLE_CHANGES = {"epochs", "device"}  # config fields a resume may change (more epochs, another device)


def checkpoint_path(out: str | Path) -> Path:
    """Where `coldstart fit --out DIR` keeps its checkpoint: a file beside DIR."""
    out = Path(out)
    return out.with_name(f"{out.name}.checkpoint.safetensors")


def fingerprint(state: FittedState) -> str:
    """SHA-256 of what the fit learns from: the vocabularies, the logs, the users' features."""
    h = hashlib.sha256()
    for values in (state.items.to_list(), state.users.to_list()):
        h.update(json.dumps(values).encode())
    times = () if state.log.times is None else (state.log.times,)  # the priors read popularity as of each time
    for array in (state.log.indptr, state.log.items, state.log.ratings, *times, state.user_feats.numeric.numpy(),
                  *(t.numpy() for t in state.user_feats.tokens)):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def save_checkpoint(path: Path, snap: Snapshot, config: Config, data: str) -> Path:
    """Write `snap` (after epoch `snap.epoch`) atomically to `path`."""
    optimizer = snap.optimizer
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in snap.net.items()}
    tensors.update({f"optim.{p}.{name}": v.detach().cpu().contiguous()
                    for p, slots in optimizer["state"].items() for name, v in slots.items()})
    header = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "data": data, "epoch": snap.epoch,
              "n_tasks": snap.n_tasks, "seconds": snap.seconds, "losses": snap.losses, "rng": snap.rng,
              "param_groups": optimizer["param_groups"]}
    return atomic_bytes(Path(path), save_tensors(tensors, metadata={"checkpoint": json.dumps(header)}))


def load_checkpoint(path: Path, config: Config, data: str) -> Snapshot:
    """The Snapshot in `path`, refused unless it was made by a fit of `config` (up to RESUMABLE_CHANGES) on the
    data whose fingerprint is `data`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        tensors = load_tensors(raw)
        header = header_json(raw, "checkpoint")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint to resume from") from None
    except Exception as exc:  # safetensors and json raise their own types for foreign bytes
        raise CheckpointError(f"{path}: not a readable coldstart checkpoint ({exc})") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {header.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    _check_same_fit(path, header, config, data)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in header["param_groups"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, p, name = key.split(".", 2)
            state.setdefault(int(p), {})[name] = value
    strip = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
    return Snapshot(epoch=header["epoch"], n_tasks=header["n_tasks"], seconds=header["seconds"],
                    losses=header["losses"], rng=header["rng"], net=strip("net."),
                    optimizer={"state": state, "param_groups": groups})


def _check_same_fit(path: Path, header: dict, config: Config, data: str) -> None:
    if header["data"] != data:
        raise CheckpointError(f"{path}: this checkpoint was made on other training data (or other features); "
                              "resume with the same inputs, or delete it to start afresh")
    saved, now = header["config"], config.to_dict()
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        shown = ", ".join(f"{k}: {saved.get(k)!r} then, {now.get(k)!r} now" for k in changed)
        raise CheckpointError(f"{path}: this checkpoint was made with another config ({shown}); resume with the "
                              "same settings, or delete it to start afresh")
    if header["epoch"] > config.epochs:
        raise CheckpointError(f"{path}: the checkpoint is after epoch {header['epoch']}, past --epochs "
                              f"{config.epochs}")
