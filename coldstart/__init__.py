"""coldstart: meta-learned (MeLU-style MAML) recommendations for users with a handful of ratings.

Names are imported on first use (PEP 562), so that `coldstart --help` and `import coldstart.cli` do not wait for
torch to import.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "ColdStartRecommender": "recommender", "Config": "config", "Dataset": "io", "load_features": "io",
    "load_ratings": "io", "IdMap": "ids", "load_dataset": "io", "make_synthetic": "synthetic",
    "Interviewer": "interview", "NotFittedError": "errors", "ConfigError": "errors", "DataError": "errors",
    "ModelFormatError": "errors", "TrainingDiverged": "errors", "CheckpointError": "errors",
}
__all__ = [
    "CheckpointError", "ColdStartRecommender", "Config", "ConfigError", "DataError", "Dataset", "IdMap",
    "Interviewer", "ModelFormatError", "NotFittedError", "TrainingDiverged", "load_dataset", "load_features", "load_ratings",
    "make_synthetic", "__version__",
]

if TYPE_CHECKING:
    from .config import Config
    from .errors import (CheckpointError, ConfigError, DataError, ModelFormatError, NotFittedError,
                         TrainingDiverged)
    from .ids import IdMap
    from .interview import Interviewer
    from .io import Dataset, load_dataset, load_features, load_ratings
    from .recommender import ColdStartRecommender
    from .synthetic import make_synthetic


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'coldstart' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names only (not this module's own imports)."""
    return sorted(__all__)
