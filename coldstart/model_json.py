"""model.json's schema: its format version, its keys and their types, the files it may name, and a format-5
config read as the current format's. Checked before anything is built from it (persist.py)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .errors import ModelFormatError

FORMAT_VERSION = 7  # 2: "rating" models hold the user-offset pseudo-count; 3: the config has user_bias_scale;
#                    4: the first layer's item side is shared (item_weight), a learner and an objective are recorded;
#                    5: a SHA-256 of each file; the training users' histories in their own file;
#                    6: the config is settled and slim (`config_of_v5` reads a format-5 one, same files);
#                    7: the priors' tables and the gate (`net.priors.*`, `net.gate.*`; a format-6 model has none)
READABLE = (5, 6, FORMAT_VERSION)  # read as they are; format 4 needs `coldstart upgrade`
REMOVED = {"adapt": "head+user", "user_bias_scale": None, "task_split": None, "validation_fraction": None,
           "teacher_min_rating": None, "teacher_init": None}  # config fields of format 5 that lost (their value
#                                                               in a model that still loads: None = any; training only)
ROLES = {"weights": ("weights.safetensors", "weights.alt.safetensors"),
         "user_history": ("user_history.safetensors", "user_history.alt.safetensors")}
_KEYS = {"format_version": int, "coldstart_version": str, "learner": str, "objective": dict, "config": dict,
         "items": list, "item_labels": (list, type(None)), "item_encoder": dict, "user_encoder": dict,
         "rating_stats": dict, "training": dict, "files": dict}


def coldstart_version() -> str:
    from . import __version__
    return __version__


def check_version(meta: dict, meta_file: Path) -> None:
    version = meta.get("format_version")
    if version in READABLE:
        return
    if version == 4:
        raise ModelFormatError(
            f"{meta_file}: format_version 4 is older than the format_version {FORMAT_VERSION} this coldstart "
            f"({coldstart_version()}) reads. Format 4 records no checksums; if you trust the folder, re-save it in "
            f"format {FORMAT_VERSION} with `coldstart upgrade --model {meta_file.parent}` (or re-fit the model)")
    raise ModelFormatError(f"{meta_file}: format_version {version!r} is not supported; this coldstart "
                           f"({coldstart_version()}) reads format_version {FORMAT_VERSION} (re-fit the model "
                           f"with this version)")


def check_keys(meta: dict, meta_file: Path) -> None:
    missing, unknown = sorted(set(_KEYS) - set(meta)), sorted(set(meta) - set(_KEYS))
    if missing or unknown:
        what = "; ".join(p for p in (missing and f"missing key(s) {missing}", unknown and f"unknown key(s) {unknown}")
                         if p)
        raise ModelFormatError(f"{meta_file}: {what} (expected exactly {sorted(_KEYS)})")
    for key, kind in _KEYS.items():
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise ModelFormatError(f"{meta_file}: key {key!r}: expected {_kind_name(kind)}, found "
                                   f"{type(meta[key]).__name__}")
    if not all(isinstance(v, str) for v in meta["items"]):
        raise ModelFormatError(f"{meta_file}: key 'items': expected a list of id strings")
    labels = meta["item_labels"]
    if labels is not None and (len(labels) != len(meta["items"]) or not all(isinstance(v, str) for v in labels)):
        raise ModelFormatError(f"{meta_file}: key 'item_labels': expected one string per item")
    stats = meta["rating_stats"]
    for name in ("min", "max", "mean", "std"):
        if not (isinstance(stats.get(name), (int, float)) and math.isfinite(stats[name])):
            raise ModelFormatError(f"{meta_file}: key 'rating_stats': expected a finite number {name!r}, found "
                                   f"{stats.get(name)!r}")
    check_files(meta["files"], meta_file)


def check_files(files: dict, meta_file: Path) -> None:
    if "weights" not in files or set(files) - set(ROLES):
        raise ModelFormatError(f"{meta_file}: key 'files': expected 'weights' and optionally 'user_history', found "
                               f"{sorted(files)}")
    for role, entry in files.items():
        ok = (isinstance(entry, dict) and entry.get("name") in ROLES[role] and isinstance(entry.get("bytes"), int)
              and isinstance(entry.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]))
        if not ok:
            raise ModelFormatError(f"{meta_file}: key 'files', entry {role!r}: expected a name among "
                                   f"{list(ROLES[role])}, a size in bytes and a SHA-256, found {entry!r}")


def _kind_name(kind: type | tuple) -> str:
    names = {int: "an integer", str: "a string", dict: "an object", list: "a list", type(None): "null"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names[k] for k in kinds)


def config_of(meta: dict, meta_file: Path) -> dict[str, Any]:
    """The config of a readable model as the current format has it: a format-6 or older model was fitted without
    priors (its weights hold no gate)."""
    values = dict(meta["config"]) if meta["format_version"] >= 6 else config_of_v5(meta, meta_file)
    values.setdefault("priors", "none")
    return values


def config_of_v5(meta: dict, meta_file: Path) -> dict[str, Any]:
    """A format-5 (or 4) model's config as format 6 has it: the fields that lost dropped (an error when the model
    used a value this coldstart no longer has), proximal_l2 moved into learner_options, no teacher as "none"."""
    values = {"teacher": None, **meta["config"]}  # older models were fitted without one
    for name, kept in REMOVED.items():
        value = values.pop(name, None)
        if name == "user_bias_scale" and value is not None:
            kept = values.get("objective", "implicit") == "implicit"
        if value is not None and kept is not None and value != kept:
            raise ModelFormatError(f"{meta_file}: the model was fitted with {name} = {value!r}, which this "
                                   f"coldstart ({coldstart_version()}) no longer has (docs/experiments.md): re-fit it")
    l2 = values.pop("proximal_l2", None)
    if values.get("learner") == "proximal" and l2 is not None:
        values["learner_options"] = {"l2": l2}
    return values
