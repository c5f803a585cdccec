"""Bayesian optimisation (Optuna's TPE) of the coldstart learner's hyperparameters on validation users carved out of
the training users only: `coldstart tune`.

The study lives in OUTPUT/study.sqlite3: the same command adds trials to it, and one made for other data or settings
is refused. After every trial OUTPUT holds best.toml (a config file for `coldstart fit --config`), trials.csv and
trials.png. Optuna is imported inside the functions: the package imports without it.

Where each part lives, read top to bottom (each imports only the ones above it):
    space.py       the searched hyperparameters and their ranges; the config a trial's draws make
    validation.py  the validation split (the evaluation's new users never read) and one fit's score on it
    report.py      best.toml, trials.csv, trials.png and the progress line
    study.py       `tune`: the stored, fingerprinted study and the objective of a trial
"""
from __future__ import annotations

from .report import best_toml, trials_frame
from .space import HIDDEN, search_space, searched
from .study import INSTALL, STUDY, TuneResult, require_optuna, tune
from .validation import Validation, validation_split

__all__ = ["HIDDEN", "INSTALL", "STUDY", "TuneResult", "Validation", "best_toml", "require_optuna", "search_space",
           "searched", "trials_frame", "tune", "validation_split"]
