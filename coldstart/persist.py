"""The model directory: `weights.safetensors` (tensors only) + `model.json` (everything else). Never unpickles.

Writes go to a temporary directory beside the target, renamed into place only when complete.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .config import Config, ConfigError
from .features import EncodedFeatures, FeatureEncoder
from .fitted import FittedState, build_net, resolve_device
from .ids import IdMap
from .objectives import objective_from_dict
from .tasks import UserLog

FORMAT_VERSION = 4  # 2: "rating" models hold the user-offset pseudo-count; 3: the config has user_bias_scale;
#                    4: the first layer's item side is shared (item_weight), a learner and an objective are recorded
WEIGHTS, META = "weights.safetensors", "model.json"


class ModelFormatError(ValueError):
    """A model directory is missing, incomplete, or of another format version."""


def coldstart_version() -> str:
    from . import __version__
    return __version__


def save_model(state: FittedState, path: Path) -> Path:
    """Write `state` to the directory `path` atomically (an existing model directory there is replaced)."""
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or (path / META).exists())):
        raise ModelFormatError(f"{path}: exists and is not a coldstart model directory; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(_tensors(state), str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(_metadata(state), indent=1))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _tensors(state: FittedState) -> dict[str, torch.Tensor]:
    out = {f"net.{k}": v.detach().cpu().contiguous() for k, v in state.net.state_dict().items()}
    out.update({f"user_feats.tokens.{j}": t.contiguous() for j, t in enumerate(state.user_feats.tokens)})
    out["user_feats.numeric"] = state.user_feats.numeric.contiguous()
    out.update({f"log.{name}": torch.from_numpy(np.ascontiguousarray(getattr(state.log, name)))
                for name in ("indptr", "items", "ratings")})
    return out


def _metadata(state: FittedState) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "coldstart_version": coldstart_version(),
            "learner": state.config.learner, "objective": state.objective.to_dict(),
            "config": state.config.to_dict(), "items": state.items.to_list(), "users": state.users.to_list(),
            "item_labels": state.item_labels, "item_encoder": state.item_encoder.to_dict(),
            "user_encoder": state.user_encoder.to_dict(), "rating_stats": state.rating_stats,
            "training": state.summary}


def read_metadata(path: Path) -> dict[str, Any]:
    """model.json of a model directory, with its format version checked."""
    meta_file = path / META
    if not path.is_dir():
        raise ModelFormatError(f"{path}: no such model directory")
    if not meta_file.exists() or not (path / WEIGHTS).exists():
        raise ModelFormatError(f"{path}: not a coldstart model directory (expected {META} and {WEIGHTS})")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{meta_file}: not valid JSON ({exc})") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{meta_file}: format_version {version!r} is not supported; this coldstart "
                               f"({coldstart_version()}) reads format_version {FORMAT_VERSION} (re-fit the model "
                               f"with this version)")
    return meta


def load_model(path: Path, device: str | None) -> FittedState:
    """Rebuild a FittedState from `path` (see `save_model`); `device` overrides the saved config's."""
    try:
        return _load(path, device)
    except KeyError as exc:
        raise ModelFormatError(f"{path}: incomplete model directory, {exc.args[0]!r} is missing") from None


def _load(path: Path, device: str | None) -> FittedState:
    meta = read_metadata(path)
    try:
        config = Config.from_dict(meta["config"], source=str(path / META))
    except ConfigError as exc:
        raise ModelFormatError(str(exc)) from None
    config = config.replace(device=device) if device else config
    try:
        tensors = load_file(str(path / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise ModelFormatError(f"{path / WEIGHTS}: not a readable safetensors file ({exc})") from None
    item_encoder = FeatureEncoder.from_dict(meta["item_encoder"])
    user_encoder = FeatureEncoder.from_dict(meta["user_encoder"])
    item_feats = _features(tensors, "net.item_tokens_", len(item_encoder.token_fields), "net.item_numeric")
    items = IdMap(meta["items"])
    net = build_net(config, len(items), item_encoder, user_encoder, item_feats, meta["rating_stats"])
    try:
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    except RuntimeError as exc:
        raise ModelFormatError(f"{path / WEIGHTS}: the weights do not match {META} ({exc})") from None
    net.to(resolve_device(config.device)).eval()
    return FittedState(
        config=config, items=items, users=IdMap(meta["users"]), item_labels=meta["item_labels"],
        item_encoder=item_encoder, user_encoder=user_encoder,
        user_feats=_features(tensors, "user_feats.tokens.", len(user_encoder.token_fields), "user_feats.numeric"),
        log=UserLog(*(tensors[f"log.{n}"].numpy() for n in ("indptr", "items", "ratings"))),
        rating_stats=meta["rating_stats"], objective=objective_from_dict(meta["objective"]), net=net,
        summary=meta["training"])


def _features(tensors: dict[str, torch.Tensor], token_prefix: str, n_token_fields: int,
              numeric_key: str) -> EncodedFeatures:
    return EncodedFeatures([tensors[f"{token_prefix}{j}"] for j in range(n_token_fields)], tensors[numeric_key])
