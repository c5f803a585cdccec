"""Every exception coldstart raises on purpose: a leaf module that every layer may import.

Each is a ValueError (bad input, bad settings, bad files) except NotFittedError, a RuntimeError as scikit-learn's.
"""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A hyperparameter has an illegal value or a config file has an unknown key."""


class DataError(ValueError):
    """Bad input; the message names the file, the line or column, what was expected and what was found."""


class ModelFormatError(ValueError):
    """A model directory is missing, incomplete, altered, or of another format version."""


class CheckpointError(ValueError):
    """A checkpoint that is unreadable or belongs to another fit."""


class NotFittedError(RuntimeError):
    """A recommender was used before `fit` or `load`."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the network holds the last good weights, `summary` says what was done (a
    `train.TrainingSummary`)."""

    def __init__(self, message: str, summary: Any):
        super().__init__(message)
        self.summary = summary


__all__ = ["ConfigError", "DataError", "ModelFormatError", "CheckpointError", "NotFittedError", "TrainingDiverged"]
