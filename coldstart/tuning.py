"""Bayesian optimisation (Optuna's TPE) of the coldstart learner's hyperparameters on validation users carved out of
the training users only.

The split is the one `benchmarks/tune_validation.py` uses: the evaluation's new users (the newest `new_fraction` by
first interaction, split as `coldstart evaluate --seed S` splits them; on MeLU's layout, every scenario but
`meta_training`) are dropped first and never read; of the remaining users, the newest `new_fraction` become
validation new users, and every trial fits on the rest. A trial's value is the validation nDCG@k averaged over the
shots and over `seeds_per_trial` fits (Config.seed = S, S + 1, ...); the validation split stays fixed. (Without
timestamps the split is random per seed, so `evaluate` under another seed holds out other users, some of whom tuning
has seen.)

The study lives in OUTPUT/study.sqlite3: the same command adds trials to it, and one made for other data or settings
is refused. After every trial OUTPUT holds best.toml (a config file for `coldstart fit --config`), trials.csv and
trials.png. Optuna is imported inside the functions: the package imports without it.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .config import INNER_LR, Config
from .data import Dataset
from .evaluation import Protocol, Task, score_task, shot_task, split_new_users
from .evaluation.protocol import MELU_SCENARIOS
from .files import atomic_file
from .ids import IdMap
from .recommender import ColdStartRecommender
from .errors import TrainingDiverged

if TYPE_CHECKING:
    import optuna


STUDY = "coldstart"  # the study's name inside study.sqlite3
STARTUP_TRIALS = 5  # random trials before TPE models the results (Optuna's default, 10, is most of a small budget)
HIDDEN = {"16": (16,), "32,16": (32, 16), "64,32": (64, 32)}  # widths of the MLP tried, by name
INSTALL = "coldstart tune needs optuna: pip install coldstart-rec[tune]"


# --- the search space ------------------------------------------------------------------------------------------
def space(base: Config) -> dict[str, Callable[[optuna.Trial, str], Any]]:
    """The one place the searched hyperparameters and their ranges are written: name -> draw(trial, name).

    inner_lr spans a tenth to ten times the objective's default step size (log scale); inner_steps 1-4 (0 would be
    the plain network); n_negatives and prior_recent_share only for "implicit", proximal_l2 only for "proximal".
    """
    lr = INNER_LR[base.objective]
    low = max(5, base.support_min)
    draws = {
        "inner_lr": lambda t, n: t.suggest_float(n, lr / 10, lr * 10, log=True),
        "inner_steps": lambda t, n: t.suggest_int(n, 1, 4),
        "meta_lr": lambda t, n: t.suggest_float(n, 1e-4, 1e-2, log=True),
        "weight_decay": lambda t, n: t.suggest_float(n, 1e-6, 1e-2, log=True),
        "embedding_dim": lambda t, n: t.suggest_categorical(n, [16, 32, 64]),
        "hidden": lambda t, n: HIDDEN[t.suggest_categorical(n, list(HIDDEN))],
        "support_max": lambda t, n: t.suggest_int(n, low, max(low, 20)),
        "epochs": lambda t, n: t.suggest_int(n, 10, 40, step=10),
    }
    if base.objective == "implicit":
        draws["n_negatives"] = lambda t, n: t.suggest_categorical(n, [128, 256, 512, 1024, 2048])
        draws["prior_recent_share"] = lambda t, n: t.suggest_float(n, 0.1, 1.0)
    if base.learner == "proximal":
        draws["proximal_l2"] = lambda t, n: t.suggest_float(n, 0.1, 10.0, log=True)
    return draws


def searched(base: Config, fixed: Collection[str] = ()) -> list[str]:
    """The names the search draws: the space less the `fixed` ones (kept at the base config's values).

    Raises:
        ValueError: a fixed name is not in the space.
    """
    names = list(space(base))
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ValueError(f"--fix: {', '.join(map(repr, unknown))} not searched; expected some of: {', '.join(names)}")
    return [n for n in names if n not in fixed]


def search_space(trial: optuna.Trial, base: Config, fixed: Collection[str] = ()) -> Config:
    """The trial's config: the base config with every searched hyperparameter drawn by `trial`."""
    draws = space(base)
    return base.replace(**{name: draws[name](trial, name) for name in searched(base, fixed)})


def base_params(base: Config, fixed: Collection[str] = ()) -> dict[str, Any]:
    """The base config's values of the searched names that lie in the space (a study's first trial tries them, so
    that the best is never worse on validation than the config the search started from)."""
    import optuna
    probe = optuna.create_study().ask()  # an in-memory trial, to read the distributions the space draws from
    search_space(probe, base, fixed)
    values = {**base.to_dict(), "inner_lr": base.step_size(), "hidden": ",".join(map(str, base.hidden))}
    return {name: values[name] for name, dist in probe.distributions.items() if _inside(dist, values[name])}


def _inside(dist: optuna.distributions.BaseDistribution, value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    return getattr(dist, "step", None) is None or (value - dist.low) % dist.step == 0


# --- the validation split --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Validation:
    """What every trial fits on and is scored on; the evaluation's new users are in neither."""

    fit: Dataset  # the training users less the validation users
    valid: pd.DataFrame  # the validation users' ratings, each user's in time order
    tasks: list[Task]  # the validation users, one task per shot count
    catalogue: IdMap  # the items ranked: of the fit and validation ratings, and of the item table
    protocol: Protocol


def validation_split(data: Dataset, shots: tuple[int, ...] = (1, 3, 5, 10), new_fraction: float = 0.2,
                     seed: int = 0) -> Validation:
    """Drop the evaluation's new users (`split_new_users(ratings, new_fraction, seed)`, as `coldstart evaluate`
    splits them; on data with MeLU's `split` column, every row but `meta_training`), then hold out the newest
    `new_fraction` of the rest as validation new users.

    Raises:
        ValueError: no validation user has more than min(shots) interactions.
    """
    protocol = Protocol(shots=tuple(shots), new_fraction=new_fraction, seed=seed,
                        threshold=None if data.implicit else Protocol.threshold)
    ratings = data.ratings
    if "split" in ratings and ratings["split"].isin(MELU_SCENARIOS).any():  # evaluate runs MeLU's protocol
        train = ratings[ratings["split"] == "meta_training"].reset_index(drop=True)
    else:
        train, _test = split_new_users(ratings, new_fraction, seed)  # the test users: never looked at again
    fit, valid = split_new_users(train, new_fraction, seed)
    tasks = [shot_task(valid, n) for n in protocol.shots]
    if all(t.query.empty for t in tasks):
        raise ValueError(f"{data.name}: no validation user to score; each needs more than {min(shots)} "
                         f"interactions ({valid['user_id'].nunique()} validation users)")
    known = set(train["user_id"])
    users = None if data.users is None else data.users[data.users["user_id"].isin(known)].reset_index(drop=True)
    items = [train["item_id"]] + ([data.items["item_id"]] if data.items is not None else [])
    return Validation(Dataset(fit, data.items, users, data.name, data.implicit), valid, tasks,
                      IdMap.from_values(pd.concat(items)), protocol)


def validate(config: Config, validation: Validation) -> list[float]:
    """Fit `config` on the validation split's training users; its nDCG@k on each task (shot count)."""
    model = ColdStartRecommender(config).fit(validation.fit)
    k = validation.protocol.k
    return [float(score_task(model, task, validation.catalogue, validation.protocol, validation.fit.users)[0][
        f"ndcg@{k}"]) for task in validation.tasks]


# --- the study -------------------------------------------------------------------------------------------------
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
    best = _best(study)
    return TuneResult(None if best is None else best_config(best, base, fixed), None if best is None else best.value,
                      None if best is None else best.number, trials_frame(study), files)


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


def best_config(trial: optuna.trial.FrozenTrial, base: Config, fixed: Collection[str] = ()) -> Config:
    """The config a finished trial fitted (with the base config's seed)."""
    from optuna.trial import FixedTrial
    return search_space(FixedTrial(trial.params), base, fixed)


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = [t for t in study.trials if t.value is not None and math.isfinite(t.value)]
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


# --- read-outs -------------------------------------------------------------------------------------------------
def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One progress line: trial number, value, best so far, seconds, params."""
    best = _best(study)
    value = f"{trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
    if "error" in trial.user_attrs:
        value += f" ({trial.user_attrs['error']})"
    seconds = trial.duration.total_seconds() if trial.duration else float("nan")
    head = f"trial {trial.number}: {value}"
    if best is not None:
        head += f" (best {best.value:.4f}, trial {best.number})"
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    return f"{head} in {seconds:.0f}s  {params}"


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, nDCG per shot count (`ndcg_<shots>`), params, seconds."""
    rows = []
    for t in study.trials:
        shots = {f"ndcg_{n}": v for n, v in t.user_attrs.get("ndcg", {}).items()}
        seconds = t.duration.total_seconds() if t.duration else None
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, **shots, **t.params,
                     "seconds": seconds})
    return pd.DataFrame(rows)


def write_outputs(study: optuna.Study, base: Config, output: Path, fixed: Collection[str] = ()) -> list[Path]:
    """trials.csv, trials.png and (once a trial has completed) best.toml under `output`, each written atomically."""
    frame = trials_frame(study)
    files = [atomic_file(output / "trials.csv", lambda p: frame.to_csv(p, index=False))]
    title = f"coldstart tune: {study.user_attrs['fingerprint']['data']}, learner {base.learner}"
    files.append(atomic_file(output / "trials.png", lambda p: plot_trials(frame, p, title)))
    best = _best(study)
    if best is not None:
        config = best_config(best, base, fixed)
        shots = ", ".join(best.user_attrs.get("ndcg", {}))
        header = (f"coldstart tune: the best of {len(frame)} trials, trial {best.number}: validation nDCG@10 "
                  f"{best.value:.4f} (mean over shots {shots} and seeds "
                  f"{', '.join(map(str, study.user_attrs['fingerprint']['seeds']))})\n"
                  f"study: {output / 'study.sqlite3'}")
        text = to_toml(config.to_toml_dict(), header, marked=set(best.params), mark="tuned")
        files.append(atomic_file(output / "best.toml", lambda p: Path(p).write_text(text)))
    return files


def plot_trials(frame: pd.DataFrame, path: str | Path, title: str) -> None:
    """Validation score per trial (dots) and the best so far (a step line)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if "value" in frame and frame["value"].notna().any():
        done = frame[frame["value"].notna()]
        ax.plot(done["number"], done["value"], "o", label="trial")
        ax.step(done["number"], done["value"].cummax(), where="post", label="best so far")
        ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("validation nDCG@10 (mean over shots)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


# --- TOML ------------------------------------------------------------------------------------------------------
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(values: dict[str, Any], header: str = "", marked: Collection[str] = (), mark: str = "") -> str:
    """A flat TOML document (`tomllib` reads it back to `values`): a `# ` comment of `header`'s lines, then one
    `key = value` line per key, None values left out, the `marked` keys followed by `# mark`.

    Raises:
        TypeError: a value that is not a bool, int, float, str or list / tuple of them.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in values.items():
        if value is None:
            continue
        name = key if BARE_KEY.fullmatch(key) else json.dumps(key)
        lines.append(f"{name} = {_toml_value(value)}" + (f"  # {mark}" if key in marked and mark else ""))
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return ("nan" if math.isnan(value) else "inf" if value > 0 else "-inf") if not math.isfinite(value) \
            else repr(value)  # repr: the shortest text that reads back to the same float (1e-05, 0.0001, 2.0)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"to_toml: expected a bool, int, float, str or list, found {type(value).__name__}: {value!r}")
