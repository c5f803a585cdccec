"""The search space: which hyperparameters a trial draws, over which ranges, and the config a trial's draws make.

Optuna is imported inside the functions that call it (`base_params`, `best_config`): the package imports without it.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from ..config import INNER_LR, Config
from ..learners import learner_class

if TYPE_CHECKING:
    import optuna

Draw = Callable[["optuna.Trial", str], Any]  # draw(trial, name): the trial's value of the hyperparameter `name`

HIDDEN = {"16": (16,), "32,16": (32, 16), "64,32": (64, 32)}  # widths of the MLP tried, by name


def space(base: Config) -> dict[str, Draw]:
    """The searched hyperparameters and their ranges: name -> draw(trial, name); written here, but for the learner's
    own options, which its class gives.

    inner_lr spans a tenth to ten times the objective's default step size (log scale); inner_steps 1-4 (0 would be
    the plain network); n_negatives and prior_recent_share only for "implicit"; the learner's own options last
    (`_learner_space`). The order is the order of the draws: changing it changes the trials a seed gives.
    """
    lr = INNER_LR[base.objective]
    low = max(5, base.support_min)
    draws: dict[str, Draw] = {
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
    return {**draws, **{name: draw for name, (_option, draw) in _learner_space(base).items()}}


# --- the learner's own options ---------------------------------------------------------------------------------
# The one function that asks the learner: its class (coldstart/learners/) names the options to search and their
# ranges (`Learner.search_space`).
def _learner_space(base: Config) -> dict[str, tuple[str, Draw]]:
    """The searched options of `base.learner`: trial name (`<learner>_<option>`, e.g. proximal_l2) -> (option in
    `Config.learner_options`, draw), each drawn on a log scale over the range its learner class gives."""
    ranges = learner_class(base.learner).search_space
    return {f"{base.learner}_{option}": (option, _log_float(low, high)) for option, (low, high) in ranges.items()}


def _log_float(low: float, high: float) -> Draw:
    return lambda t, n: t.suggest_float(n, low, high, log=True)


# --- from draws to configs -------------------------------------------------------------------------------------
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
    values = {name: draws[name](trial, name) for name in searched(base, fixed)}
    options = {option: values.pop(name) for name, (option, _draw) in _learner_space(base).items() if name in values}
    return base.replace(**values, learner_options={**base.learner_options, **options})


def best_config(trial: optuna.trial.FrozenTrial, base: Config, fixed: Collection[str] = ()) -> Config:
    """The config a finished trial fitted (with the base config's seed)."""
    from optuna.trial import FixedTrial
    return search_space(FixedTrial(trial.params), base, fixed)


def base_params(base: Config, fixed: Collection[str] = ()) -> dict[str, Any]:
    """The base config's values of the searched names that lie in the space (a study's first trial tries them, so
    that the best is never worse on validation than the config the search started from)."""
    import optuna
    probe = optuna.create_study().ask()  # an in-memory trial, to read the distributions the space draws from
    search_space(probe, base, fixed)
    options = learner_class(base.learner).options_of(base)  # the learner's options, defaults filled in
    values = {**base.to_dict(), "inner_lr": base.step_size(), "hidden": ",".join(map(str, base.hidden)),
              **{name: getattr(options, option) for name, (option, _draw) in _learner_space(base).items()}}
    return {name: values[name] for name, dist in probe.distributions.items() if _inside(dist, values[name])}


def _inside(dist: optuna.distributions.BaseDistribution, value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    return getattr(dist, "step", None) is None or (value - dist.low) % dist.step == 0
