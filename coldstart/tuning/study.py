"""The study: `tune` adds TPE trials to a study stored in OUTPUT/study.sqlite3, marked with a fingerprint of the data
and settings so that a study made for others is refused. A trial's value is the validation nDCG@k averaged over the
shots and over `seeds_per_trial` fits (Config.seed = S, S + 1, ...); the validation split stays fixed."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import TrainingDiverged
from ..io import Dataset
from .report import best_trial, trial_line, trials_frame, write_outputs
from .space import base_params, best_config, search_space, searched
from .validation import Validation, validate, validation_split

if TYPE_CHECKING:
    import optuna

STUDY = "coldstart"  # the study's name inside study.sqlite3
STARTUP_TRIALS = 5  # random trials before TPE models the results (Optuna's default, 10, is most of a small budget)
INSTALL = "coldstart tune needs optuna: pip install coldstart-rec[tune]"


@dataclass
class TuneResult:
    """What a tuning run leaves: the best config found so far (over every trial of the study) and the files."""

    best_config: Config | None  # None while no trial has completed
    best_value: float | None
    best_trial: int | None
    trials: pd.DataFrame  # one row per trial of the study (see `trials_frame`)
    files: list[Path]


def tune(data: Dataset, base: Config, trials: int, output: Path, shots: tuple[int, ...] = (1, 3, 5, 10),
         seeds_per_trial: int = 2, new_fraction: float = 0.2, fixed: Collection[str] = (),
         on_trial: Callable[[str], None] | None = None) -> TuneResult:
    """Add `trials` TPE trials to the study in `output`/study.sqlite3 (made on first use), then write the files.

    Args:
        base: the config the trials vary (searched fields) and keep (the rest); its seed seeds the split, the
            first fit of every trial (the others take seed + 1, ...) and the sampler.
        fixed: searched names to keep at the base config's values instead.
        on_trial: called with a line after every trial (number, value, best so far, params).
    Raises:
        ValueError: bad settings, no validation user, or a stored study made for other data or settings.
    """
    optuna = require_optuna()
    if trials < 0 or seeds_per_trial < 1:
        raise ValueError(f"expected trials >= 0 and seeds_per_trial >= 1, found {trials} and {seeds_per_trial}")
    names = searched(base, fixed)
    validation = validation_split(data, shots, new_fraction, base.seed)
    seeds = [base.seed + j for j in range(seeds_per_trial)]
    output.mkdir(parents=True, exist_ok=True)
    objective = _objective(base, fixed, validation, seeds)

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        write_outputs(study, base, output, fixed)
        if on_trial is not None:
            on_trial(trial_line(study, trial))

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" / per-trial INFO: on_trial says it
    try:
        study = open_study(output / "study.sqlite3", fingerprint(validation, base, names, seeds), base.seed)
        if not study.trials:
            study.enqueue_trial(base_params(base, fixed))  # trial 0: the base config, where it lies in the space
        study.optimize(objective, n_trials=trials, catch=(TrainingDiverged,), callbacks=[after])
    finally:
        optuna.logging.set_verbosity(level)
    files = write_outputs(study, base, output, fixed)
    best = best_trial(study)
    if best is None:
        return TuneResult(None, None, None, trials_frame(study), files)
    return TuneResult(best_config(best, base, fixed), best.value, best.number, trials_frame(study), files)


def _objective(base: Config, fixed: Collection[str], validation: Validation,
               seeds: list[int]) -> Callable[[optuna.Trial], float]:
    """A trial's value: the mean over shots of the nDCG@k averaged over one fit per seed; the nDCG per shot count
    is kept as the trial's user attribute "ndcg", a diverged fit's message as "error"."""
    def objective(trial: optuna.Trial) -> float:
        config = search_space(trial, base, fixed)
        try:
            runs = np.array([validate(config.replace(seed=s), validation) for s in seeds])  # (seeds, shots)
        except TrainingDiverged as exc:
            trial.set_user_attr("error", str(exc))
            raise
        per_shot = runs.mean(0)
        trial.set_user_attr("ndcg", {str(n): float(v) for n, v in zip(validation.protocol.shots, per_shot)})
        return float(per_shot.mean())

    return objective


def require_optuna() -> ModuleType:
    """The optuna module, or an ImportError that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise ImportError(INSTALL) from None
    return optuna


def fingerprint(validation: Validation, base: Config, names: list[str], seeds: list[int]) -> dict[str, Any]:
    """What a study's trials depend on, flat: the data (name, sizes, a checksum of the fit and validation ratings),
    the split, the shots, the seeds, the searched names and every other config field (but device and
    eval_batch_size, which change no result)."""
    fit, tasks = validation.fit.ratings, validation.tasks
    scored = set().union(*(set(t.query["user_id"]) for t in tasks))  # the validation users scored at any shots
    digest = hashlib.sha256()
    for frame in (fit, validation.valid):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    kept = {f"config.{k}": v for k, v in base.to_dict().items()
            if k not in (*names, "seed", "device", "eval_batch_size")}
    return {"data": validation.fit.name, "fit_ratings": len(fit), "fit_users": int(fit["user_id"].nunique()),
            "validation_users": len(scored), "items": len(validation.catalogue),
            "checksum": digest.hexdigest()[:16], "learner": base.learner, "shots": list(validation.protocol.shots),
            "new_fraction": validation.protocol.new_fraction, "seeds": seeds, "searched": names, **kept}


def open_study(path: Path, mark: dict[str, Any], seed: int) -> optuna.Study:
    """The study stored at `path` (made, and marked with the fingerprint `mark`, on first use); its sampler a TPE seeded
    by `seed` and the number of trials already run (a resumed run draws new configurations, not the first ones
    again).

    Raises:
        ValueError: the stored study was made for another fingerprint; the message names the file and what differs.
    """
    optuna = require_optuna()
    study = optuna.create_study(storage=f"sqlite:///{path.resolve()}", study_name=STUDY, direction="maximize",
                                load_if_exists=True)
    stored = study.user_attrs.get("fingerprint")
    if stored is None and study.trials:
        raise ValueError(f"{path}: holds a study {STUDY!r} that coldstart tune did not make; use another --output")
    if stored is None:
        study.set_user_attr("fingerprint", mark)
    elif stored != mark:
        keys = [k for k in dict.fromkeys([*stored, *mark]) if stored.get(k) != mark.get(k)]
        diffs = "; ".join(f"{k} {stored.get(k)!r} there, {mark.get(k)!r} now" for k in keys)
        raise ValueError(f"{path}: the study stored there was made for other data or settings ({diffs}); use "
                         f"another --output, or delete the file to start over")
    state = np.random.SeedSequence([seed, len(study.trials)]).generate_state(1)[0]
    study.sampler = optuna.samplers.TPESampler(seed=int(state), n_startup_trials=STARTUP_TRIALS)
    return study
