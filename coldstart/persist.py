"""The model directory. Never unpickles; every file is checked against the SHA-256 that model.json records.

    model.json                 format version, config, vocabularies, encoders, training summary, and `files`: the
                               name, size and SHA-256 of each file below (the one switch: it is replaced last)
    weights.safetensors        the network (tensors only)
    user_history.safetensors   the training users' ids, features and rating histories: only `recommend_known`
                               (`recommend --user`) reads them; `save_model(..., user_history=False)` leaves it out

Saving takes a lock on the folder (writers take turns), writes each new file complete under a name the current
model.json does not use (`weights.safetensors` or `weights.alt.safetensors`, alternately), then replaces
model.json, then removes the files it no longer names. A reader therefore always finds a complete model: the old one
or the new one; one that read the old model.json just before a save removed its files reads again.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .config import Config
from .errors import ConfigError, ModelFormatError
from .features import EncodedFeatures, FeatureEncoder
from .files import atomic_bytes, locked
from .fitted import FittedState, build_net, resolve, resolve_device
from .ids import IdMap
from .model_json import FORMAT_VERSION, ROLES, check_keys, check_version, coldstart_version, config_of
from .objectives import objective_from_dict
from .tasks import UserLog

META, WEIGHTS, HISTORY = "model.json", "weights.safetensors", "user_history.safetensors"
LOAD_ATTEMPTS = 20  # reads of a model that concurrent saves keep replacing, before giving up (~2 s)


# --- saving --------------------------------------------------------------------------------------------------
def check_target(path: Path) -> None:
    """Raise ModelFormatError unless a model can be written at `path` (checked before a fit, not after)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ModelFormatError(f"{path}: exists and is not a folder; a model is a directory (choose another --out)")
        if any(path.iterdir()) and not (path / META).exists():
            raise ModelFormatError(f"{path}: exists and is not a coldstart model directory; refusing to overwrite it")
        folder = path
    else:
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ModelFormatError(f"{path}: cannot create it, {folder} is a file and not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ModelFormatError(f"{path}: cannot write there ({folder} is not writable)")


def save_model(state: FittedState, path: Path, user_history: bool = True) -> Path:
    """Write `state` to the folder `path` (an existing model there is replaced, atomically for its readers).
    Without `user_history` the training users' ids, features and histories are left out."""
    path = Path(path)
    check_target(path)
    path.mkdir(parents=True, exist_ok=True)
    blobs = {"weights": save_tensors(_net_tensors(state))}
    if user_history:
        blobs["user_history"] = save_tensors(_history_tensors(state), metadata={"users": json.dumps(
            state.users.to_list())})
    with locked(path):
        in_use = set(_named_files(path))
        files = {}
        for role, data in blobs.items():
            name = next(n for n in ROLES[role] if n not in in_use)
            atomic_bytes(path / name, data)
            files[role] = {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        atomic_bytes(path / META, json.dumps(_metadata(state, files), indent=1).encode())
        for name in {n for names in ROLES.values() for n in names} - {f["name"] for f in files.values()}:
            (path / name).unlink(missing_ok=True)
        for stale in path.glob(".*.tmp"):  # left by a writer that was killed (we hold the lock: none is running)
            stale.unlink(missing_ok=True)
    return path


def _named_files(path: Path) -> list[str]:
    """The file names the current model.json (if any is readable) points to."""
    try:
        files = json.loads((path / META).read_bytes()).get("files", {})
        return [f["name"] for f in files.values()]
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return []


def _net_tensors(state: FittedState) -> dict[str, torch.Tensor]:
    return {f"net.{k}": v.detach().cpu().contiguous() for k, v in state.net.state_dict().items()}


def _history_tensors(state: FittedState) -> dict[str, torch.Tensor]:
    out = {f"user_feats.tokens.{j}": t.contiguous() for j, t in enumerate(state.user_feats.tokens)}
    out["user_feats.numeric"] = state.user_feats.numeric.contiguous()
    out.update({f"log.{name}": torch.from_numpy(np.ascontiguousarray(getattr(state.log, name)))
                for name in ("indptr", "items", "ratings")})
    return out


def _metadata(state: FittedState, files: dict[str, dict]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "coldstart_version": coldstart_version(),
            "learner": state.config.learner, "objective": state.objective.to_dict(),
            "config": state.config.to_dict(), "items": state.items.to_list(),
            "item_labels": state.item_labels, "item_encoder": state.item_encoder.to_dict(),
            "user_encoder": state.user_encoder.to_dict(), "rating_stats": state.rating_stats,
            "training": state.summary, "files": files}


# --- reading -------------------------------------------------------------------------------------------------
def read_metadata(path: Path) -> dict[str, Any]:
    """model.json of a model directory, checked: format version, keys and their types, the files it names."""
    meta, _ = _read_meta(Path(path))
    return meta


def _read_meta(path: Path) -> tuple[dict[str, Any], bytes]:
    meta_file = path / META
    if not path.is_dir():
        raise ModelFormatError(f"{path}: no such model directory")
    try:
        raw = meta_file.read_bytes()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: not a coldstart model directory (expected {META})") from None
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{meta_file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{meta_file}: expected a JSON object, found {type(meta).__name__}")
    check_version(meta, meta_file)
    check_keys(meta, meta_file)
    return meta, raw


def _read_checked(path: Path, entry: dict) -> bytes:
    """A file's bytes, refused unless its size and SHA-256 are those model.json records."""
    file = path / entry["name"]
    data = file.read_bytes()  # FileNotFoundError is handled by the caller
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != entry["bytes"] or digest != entry["sha256"]:
        raise _Mismatch(f"{file}: does not match {META}: expected {entry['bytes']:,} bytes with SHA-256 "
                        f"{entry['sha256'][:16]}..., found {len(data):,} bytes with SHA-256 {digest[:16]}... The file "
                        "was truncated, altered or swapped after the model was saved: re-fit or restore the folder")
    return data


class _Mismatch(ModelFormatError):
    pass


def _read_blobs(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """model.json and the checked bytes of every file it names; retried while a concurrent save replaces them."""
    for attempt in range(LOAD_ATTEMPTS):
        meta, raw = _read_meta(path)
        try:
            return meta, {role: _read_checked(path, entry) for role, entry in meta["files"].items()}
        except (FileNotFoundError, _Mismatch) as exc:
            replaced = _read_bytes_or_none(path / META) != raw
            if replaced and attempt + 1 < LOAD_ATTEMPTS:
                time.sleep(min(0.01 * 2**attempt, 0.2))
                continue
            if isinstance(exc, FileNotFoundError):
                raise ModelFormatError(f"{path}: incomplete model directory, {Path(exc.filename).name} (named in {META})"
                                       " is missing") from None
            raise ModelFormatError(str(exc)) from None
    raise AssertionError("unreachable")


def _read_bytes_or_none(file: Path) -> bytes | None:
    try:
        return file.read_bytes()
    except OSError:
        return None


def load_model(path: Path, device: str | None) -> FittedState:
    """Rebuild a FittedState from `path` (see `save_model`); `device` overrides the saved config's."""
    path = Path(path)
    meta, blobs = _read_blobs(path)
    tensors = _parse(blobs["weights"], path / meta["files"]["weights"]["name"])
    history = None
    if "user_history" in blobs:
        file = path / meta["files"]["user_history"]["name"]
        history = (_parse(blobs["user_history"], file), _users_of(blobs["user_history"], file))
    return _state(path, meta, tensors, history, device)


def upgrade_model(path: Path) -> Path:
    """Re-save a format-4, 5 or 6 model directory in the current format (format 4: adds checksums and splits out
    the user histories; 4 and 5: the config settled and slim; all: the config says it has no priors)."""
    path = Path(path)
    meta_file = path / META
    try:
        meta = json.loads(meta_file.read_bytes())
        version = meta.get("format_version") if isinstance(meta, dict) else None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{meta_file}: cannot read it ({exc})") from None
    if version == FORMAT_VERSION:
        raise ModelFormatError(f"{meta_file}: already format_version {FORMAT_VERSION}; nothing to upgrade")
    if version in (5, 6):
        return save_model(load_model(path, "cpu"), path)
    if version != 4:
        raise ModelFormatError(f"{meta_file}: format_version {version!r} cannot be upgraded (only 4, 5 and 6 can): "
                               f"re-fit")
    try:
        tensors = _parse((path / WEIGHTS).read_bytes(), path / WEIGHTS)
        users = meta.pop("users")
        meta = {**meta, "files": {"weights": {"name": WEIGHTS, "bytes": 0, "sha256": "0" * 64}}}
        check_keys(meta, meta_file)
        net = {k: v for k, v in tensors.items() if k.startswith("net.")}
        history = ({k: v for k, v in tensors.items() if not k.startswith("net.")}, users)
        state = _state(path, meta, net, history, "cpu")
    except (OSError, KeyError, TypeError) as exc:
        raise ModelFormatError(f"{path}: not a readable format-4 model ({exc!r})") from None
    return save_model(state, path)


def _parse(data: bytes, file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_tensors(data)
    except Exception as exc:  # safetensors raises its own error types for foreign bytes
        raise ModelFormatError(f"{file}: not a readable safetensors file ({exc})") from None


def header_json(data: bytes, key: str) -> Any:
    """The JSON value stored under `key` in the header metadata of safetensors bytes (JSON, never code).

    Raises struct.error, ValueError, KeyError or TypeError for bytes that hold none."""
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(json.loads(data[8:8 + size])["__metadata__"][key])


def _users_of(data: bytes, file: Path) -> list[str]:
    """The training user ids kept in the history file's header."""
    try:
        users = header_json(data, "users")
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise ModelFormatError(f"{file}: no list of users in its header ({exc!r})") from None
    if not (isinstance(users, list) and all(isinstance(u, str) for u in users)):
        raise ModelFormatError(f"{file}: its header's users are not a list of id strings")
    return users


def _state(path: Path, meta: dict, tensors: dict[str, torch.Tensor],
           history: tuple[dict[str, torch.Tensor], list[str]] | None, device: str | None) -> FittedState:
    meta_file = path / META
    try:
        values = config_of(meta, meta_file)
        config = Config.from_dict(values, source=str(meta_file))
    except ConfigError as exc:
        raise ModelFormatError(str(exc)) from None
    config = config.replace(device=device) if device else config
    try:
        item_encoder = FeatureEncoder.from_dict(meta["item_encoder"])
        user_encoder = FeatureEncoder.from_dict(meta["user_encoder"])
        objective = objective_from_dict(meta["objective"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{meta_file}: an encoder or the objective is not valid ({exc!r})") from None
    items = IdMap(meta["items"])
    try:
        config = resolve(config, len(items), bool(meta["item_encoder"]["fields"]),
                         objective)
    except ConfigError as exc:
        raise ModelFormatError(f"{meta_file}: {exc}") from None
    try:
        item_feats = _features(tensors, "net.item_tokens_", len(item_encoder.token_fields), "net.item_numeric")
        net = build_net(config, len(items), item_encoder, user_encoder, item_feats, meta["rating_stats"])
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    except (KeyError, RuntimeError) as exc:
        raise ModelFormatError(f"{path}: the weights do not match {META} ({exc})") from None
    net.to(resolve_device(config.device)).eval()
    users, user_feats, log = _history(history, user_encoder, path)
    return FittedState(config=config, items=items, users=users, item_labels=meta["item_labels"],
                       item_encoder=item_encoder, user_encoder=user_encoder, user_feats=user_feats, log=log,
                       rating_stats=meta["rating_stats"], objective=objective, net=net, summary=meta["training"])


def _history(history: tuple[dict[str, torch.Tensor], list[str]] | None, user_encoder: FeatureEncoder, path: Path
             ) -> tuple[IdMap, EncodedFeatures, UserLog]:
    """The training users, their features and logs; none when the folder was saved without them."""
    if history is None:
        empty = np.zeros(0, np.int64)
        return IdMap([]), user_encoder.empty(0), UserLog(np.zeros(1, np.int64), empty, empty.astype(np.float32))
    tensors, users = history
    try:
        feats = _features(tensors, "user_feats.tokens.", len(user_encoder.token_fields), "user_feats.numeric")
        log = UserLog(*(tensors[f"log.{n}"].numpy() for n in ("indptr", "items", "ratings")))
    except KeyError as exc:
        raise ModelFormatError(f"{path}: the user history lacks {exc.args[0]!r}") from None
    if log.n_users != len(users) or len(feats.numeric) != len(users):
        raise ModelFormatError(f"{path}: the user history holds {len(users)} ids for {log.n_users} histories")
    return IdMap(users), feats, log


def _features(tensors: dict[str, torch.Tensor], token_prefix: str, n_token_fields: int,
              numeric_key: str) -> EncodedFeatures:
    return EncodedFeatures([tensors[f"{token_prefix}{j}"] for j in range(n_token_fields)], tensors[numeric_key])
