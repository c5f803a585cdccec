"""coldstart: meta-learned (MeLU-style MAML) recommendations for users with a handful of ratings.

Names are imported on first use (PEP 562), so that `coldstart --help` and `import coldstart.cli` do not wait for
torch to import.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "ColdStartRecommender": "recommender", "NotFittedError": "recommender", "Config": "config",
    "ConfigError": "config", "DataError": "data", "Dataset": "data", "load_features": "data",
    "load_ratings": "data", "IdMap": "ids", "load_dataset": "formats", "ModelFormatError": "persist",
    "make_synthetic": "synthetic", "TrainingDiverged": "train", "CheckpointError": "checkpoint",
    "Interviewer": "interview",
}
__all__ = [
    "CheckpointError", "ColdStartRecommender", "Config", "ConfigError", "DataError", "Dataset", "IdMap",
    "Interviewer", "ModelFormatError", "NotFittedError", "TrainingDiverged", "load_dataset", "load_features", "load_ratings",
    "make_synthetic", "__version__",
]

if TYPE_CHECKING:
    from .checkpoint import CheckpointError
    from .config import Config, ConfigError
    from .data import DataError, Dataset, load_features, load_ratings
    from .formats import load_dataset
    from .ids import IdMap
    from .interview import Interviewer
    from .persist import ModelFormatError
    from .recommender import ColdStartRecommender, NotFittedError
    from .synthetic import make_synthetic
    from .train import TrainingDiverged


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'coldstart' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
