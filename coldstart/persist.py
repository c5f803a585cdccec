"""The model directory: `weights.safetensors` (tensors only) + `model.json` (everything else). Never unpickles.

Writes go to a temporary directory beside the target, renamed into place only when complete.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .config import Config, ConfigError
from .ids import IdMap
from .features import EncodedFeatures, FeatureEncoder
from .tasks import UserLog

if TYPE_CHECKING:
    from .recommender import ColdStartRecommender

FORMAT_VERSION = 3  # 2: "rating" models hold the user-offset pseudo-count (log_user_shrinkage); 3: the config
#                    has user_bias_scale (a format-2 model, read with its default, would score differently)
WEIGHTS, META = "weights.safetensors", "model.json"


class ModelFormatError(ValueError):
    """A model directory is missing, incomplete, or of another format version."""


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


def coldstart_version() -> str:
    from . import __version__
    return __version__


def save_model(rec: ColdStartRecommender, path: Path) -> Path:
    """Write `rec` to the directory `path` atomically (an existing model directory there is replaced)."""
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or (path / META).exists())):
        raise ModelFormatError(f"{path}: exists and is not a coldstart model directory; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(_tensors(rec), str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(_metadata(rec), indent=1))
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


def _tensors(rec: ColdStartRecommender) -> dict[str, torch.Tensor]:
    out = {f"net.{k}": v.detach().cpu().contiguous() for k, v in rec.net_.state_dict().items()}
    out.update({f"user_feats.tokens.{j}": t.contiguous() for j, t in enumerate(rec.user_feats_.tokens)})
    out["user_feats.numeric"] = rec.user_feats_.numeric.contiguous()
    out.update({f"log.{name}": torch.from_numpy(np.ascontiguousarray(getattr(rec.log_, name)))
                for name in ("indptr", "items", "ratings")})
    return out


def _metadata(rec: ColdStartRecommender) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "coldstart_version": coldstart_version(),
            "config": rec.config.to_dict(), "items": rec.items_.to_list(), "users": rec.users_.to_list(),
            "item_labels": rec.item_labels_, "item_encoder": rec.item_encoder_.to_dict(),
            "user_encoder": rec.user_encoder_.to_dict(), "rating_stats": rec.rating_stats_,
            "training": rec.summary_}


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
                               f"({coldstart_version()}) reads format_version {FORMAT_VERSION}")
    return meta


def load_model(cls: type[ColdStartRecommender], path: Path, device: str | None) -> ColdStartRecommender:
    """Rebuild a recommender from `path` (see `save_model`)."""
    try:
        return _load(cls, path, device)
    except KeyError as exc:
        raise ModelFormatError(f"{path}: incomplete model directory, {exc.args[0]!r} is missing") from None


def _load(cls: type[ColdStartRecommender], path: Path, device: str | None) -> ColdStartRecommender:
    from .recommender import resolve_device
    meta = read_metadata(path)
    try:
        config = Config.from_dict(meta["config"], source=str(path / META))
    except ConfigError as exc:
        raise ModelFormatError(str(exc)) from None
    try:
        tensors = load_file(str(path / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise ModelFormatError(f"{path / WEIGHTS}: not a readable safetensors file ({exc})") from None
    rec = cls(config.replace(device=device) if device else config)
    rec.items_, rec.users_ = IdMap(meta["items"]), IdMap(meta["users"])
    rec.item_labels_ = meta["item_labels"]
    rec.item_encoder_ = FeatureEncoder.from_dict(meta["item_encoder"])
    rec.user_encoder_ = FeatureEncoder.from_dict(meta["user_encoder"])
    rec.rating_stats_, rec.summary_ = meta["rating_stats"], meta["training"]
    rec.user_feats_ = _features(tensors, "user_feats.", len(rec.user_encoder_.token_fields))
    rec.log_ = UserLog(*(tensors[f"log.{n}"].numpy() for n in ("indptr", "items", "ratings")))
    item_feats = EncodedFeatures([tensors[f"net.item_tokens_{j}"] for j in range(len(rec.item_encoder_.token_fields))],
                                 tensors["net.item_numeric"])
    rec.device_ = resolve_device(rec.config.device)
    rec.net_ = rec._build_net(item_feats)
    try:
        rec.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    except RuntimeError as exc:
        raise ModelFormatError(f"{path / WEIGHTS}: the weights do not match {META} ({exc})") from None
    rec.net_.to(rec.device_).eval()
    return rec


def _features(tensors: dict[str, torch.Tensor], prefix: str, n_token_fields: int) -> EncodedFeatures:
    return EncodedFeatures([tensors[f"{prefix}tokens.{j}"] for j in range(n_token_fields)], tensors[f"{prefix}numeric"])
