"""Hyperparameters: one frozen dataclass, validated once, loadable from TOML."""
from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

OBJECTIVES = ("implicit", "rating")
DEVICES = ("auto", "cpu", "cuda")
TEACHERS = ("auto", "als", "ease", "none")  # "auto": see Config.teacher_for
TEACHER_MAX_ITEMS = 10_000  # teacher "auto" fits EASE up to this many items (its items x items matrix: 0.8 GB here)
INNER_LR = {"implicit": 0.1, "rating": 0.03}  # inner_lr when not set: squared-error gradients are larger
PRIOR_CHANNELS = ("recent", "alltime", "peers", "ease")  # what a new user would get anyway (priors.py)
LIKED_RATING = 4.0  # the one "liked" threshold: the query loss's targets, the liked-popularity baselines, and the
#                     evaluation's relevant items all read it (Config.positive_rating, Protocol.threshold)


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of coldstart a user sets, with its default.

    The defaults are the configuration the README and the benchmarks speak of. A field whose default is None is
    settled by `fit` from the data (`resolved`): the fitted model records the value it used. A learner's own options
    live with the learner (`coldstart/learners/`), in `learner_options`.
    """

    # --- what is learned -------------------------------------------------------------------------------------
    objective: str = "implicit"  # "implicit": rank the catalogue (sampled softmax); "rating": regress ratings
    embedding_dim: int = 32  # width of every id / feature-field embedding
    hidden: tuple[int, ...] = (32, 16)  # widths of the MLP decision layers ((64, 32) ranked the same on validation,
    #                                   at half the speed)
    use_item_ids: bool | None = None  # item-id embedding beside the item features. None: yes for "implicit"; for
    #                                   "rating" only when items have no features (MeLU's features-only items
    #                                   predicted new users' ratings better)
    pool_support: bool = True  # user input also holds the mean embedding of the user's support items
    # --- inner loop (adaptation to one user) -----------------------------------------------------------------
    learner: str = "maml"  # how users are adapted and the initialisation learns: a module of coldstart/learners/
    #                        ("maml", "fomaml", "metasgd", "proximal", "reptile", "encoder", ...)
    learner_options: dict = field(default_factory=dict)  # the learner's own options (e.g. proximal: {"l2": 1.0});
    #                                                      checked by the learner, defaults filled in by fit
    inner_steps: int = 2  # SGD steps on the support set (of the decision layers, the user vector and, for
    #                       "implicit", the user's scale of the item bias)
    inner_lr: float | None = None  # SGD step size of the inner loop; None: INNER_LR of the objective (0.1 / 0.03)
    prior_recent_share: float = 0.5  # "implicit": the starting item bias is the log popularity over this newest
    #                                  share of the training log by timestamp (what is popular now; 1: all of it)
    # --- priors the gate combines (priors.py) --------------------------------------------------------------
    priors: str = "recent,alltime,peers,ease"  # channels added to the network's score, each weighted per user by
    #                                           a gate that reads the task (shot count, ratings, features) and is
    #                                           adapted with the head: liked popularity over the newest 3/10/30% of
    #                                           the log and over all of it as of the task's time, among peers with
    #                                           the same user features, and EASE fold-in of the support; "none": no
    #                                           priors and no gate (the model of format 6)
    time_aware: bool = True  # training tasks read popularity as of when their support ended (False: the end of the
    #                          log, as a new user does)
    prior_l2: float | None = None  # EASE's ridge weight for the "ease" channel; None: chosen at fit on the newest
    #                                training users (priors.choose_l2)
    # --- outer loop (meta-training) --------------------------------------------------------------------------
    meta_lr: float = 1e-3  # Adam step size of the outer loop
    weight_decay: float = 1e-4  # Adam weight decay (L2) of the outer loop
    meta_batch_size: int = 32  # users (tasks) per meta-step
    epochs: int = 40  # passes over the training users
    support_min: int = 1  # a training task's support size is drawn uniformly from [support_min, support_max];
    support_max: int = 10  # the support is the user's first interactions in time, as a new user's are
    query_size: int = 32  # at most this many query interactions per training task
    user_feature_dropout: float = 0.1  # share of training tasks shown without user features, as ad-hoc new users are
    positive_rating: float | None = LIKED_RATING  # "implicit": the query loss asks for the ratings >= this. None,
    #                                              or data whose ratings never reach it: every interaction
    dislike_below: float | None = None  # "implicit": a support rating below this counts against its item in
    #                                     adaptation, any other for it. None: the middle of the training scale
    n_negatives: int = 512  # negatives per meta-batch for the sampled softmax ("implicit"); >= items: full softmax
    # --- teacher prior (teacher.py; used by fit only, never at recommend time) -------------------------------
    teacher: str = "auto"  # a warm model fitted on the training log that starts the item-id embeddings and is
    #                        distilled into meta-training ("implicit"): "als" (implicit's ALS), "ease", "none", or
    #                        "auto": EASE where it applies and fits in memory (`teacher_for`). EASE lifted test
    #                        nDCG@10 by 0.01-0.03 on ML-100K and 0.04-0.08 on ml-latest-small (docs/experiments.md)
    teacher_weight: float = 1.0  # weight of the distillation term in the outer loss: KL(teacher || adapted user's
    #                              model) of the softmax over the meta-batch's negatives and the query items
    #                              (0: the teacher only starts the item-id embeddings)
    teacher_temperature: float = 0.1  # the teacher's softmax is over its scores / this (ALS and EASE scores
    #                                   estimate a 0/1 interaction)
    teacher_rank: int = 64  # factors kept of the EASE teacher (ALS's are its own: 64)
    # --- run ------------------------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 64  # users adapted and scored at once by recommend / predict (64 ran fastest on CPU;
    #                            a GPU takes more)

    def __post_init__(self) -> None:
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("device", self.device, DEVICES)
        if not (isinstance(self.learner, str) and self.learner):  # which names exist: coldstart/learners/
            raise ConfigError(f"config field 'learner': expected a learner's name, found {self.learner!r}")
        if not isinstance(self.learner_options, Mapping):
            raise ConfigError(f"config field 'learner_options': expected a table of option = value, "
                              f"found {self.learner_options!r}")
        object.__setattr__(self, "learner_options", dict(self.learner_options))
        for name in ("embedding_dim", "meta_batch_size", "epochs", "support_min", "support_max",
                     "query_size", "n_negatives", "eval_batch_size", "teacher_rank"):
            _check_range(name, getattr(self, name), low=1)
        _check_range("inner_steps", self.inner_steps, low=0)
        _check_range("seed", self.seed, low=0)
        _check_range("weight_decay", self.weight_decay, low=0.0)
        for name in ("prior_recent_share", "user_feature_dropout"):
            _check_share(name, getattr(self, name), open_low=name == "prior_recent_share")
        if self.inner_lr is not None:
            _check_range("inner_lr", self.inner_lr, low=0.0)
        if not self.meta_lr > 0:
            raise ConfigError(f"config field 'meta_lr': expected a number > 0, found {self.meta_lr!r}")
        self._check_teacher()
        self._check_priors()
        if self.support_max < self.support_min:
            raise ConfigError(f"config field 'support_max': expected >= support_min ({self.support_min}), "
                              f"found {self.support_max}")
        hidden = tuple(self.hidden)
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ConfigError(f"config field 'hidden': expected a non-empty list of positive integers, "
                              f"found {self.hidden!r}")
        object.__setattr__(self, "hidden", hidden)

    def _check_teacher(self) -> None:
        if self.teacher is None:  # the Python API's way to say no teacher
            object.__setattr__(self, "teacher", "none")
        _check_choice("teacher", self.teacher, TEACHERS)
        _check_range("teacher_weight", self.teacher_weight, low=0.0)
        if not (isinstance(self.teacher_temperature, (int, float)) and self.teacher_temperature > 0):
            raise ConfigError(f"config field 'teacher_temperature': expected a number > 0, "
                              f"found {self.teacher_temperature!r}")
        if self.teacher in ("none", "auto"):
            return
        if self.objective != "implicit":
            raise ConfigError(f"config field 'teacher': expected 'none' with objective {self.objective!r} (the "
                              f"teachers rank items, they predict no ratings), found {self.teacher!r}")
        if self.use_item_ids is False:
            raise ConfigError(f"config field 'teacher': expected 'none' with use_item_ids false (the teacher "
                              f"starts the item-id embeddings), found {self.teacher!r}")

    def _check_priors(self) -> None:
        if not isinstance(self.priors, str) or set(_prior_names(self.priors)) - set(PRIOR_CHANNELS):
            raise ConfigError(f"config field 'priors': expected 'none' or a comma-separated list of "
                              f"{', '.join(PRIOR_CHANNELS)}, found {self.priors!r}")
        if self.prior_l2 is not None:
            _check_range("prior_l2", self.prior_l2, low=0.0)
        if not isinstance(self.time_aware, bool):
            raise ConfigError(f"config field 'time_aware': expected true or false, found {self.time_aware!r}")

    def prior_channels(self) -> tuple[str, ...]:
        """The priors' channels in use, in PRIOR_CHANNELS order (none for "none" or "")."""
        return tuple(c for c in PRIOR_CHANNELS if c in _prior_names(self.priors))

    def teacher_for(self, n_items: int, has_query_loss: bool = True) -> str:
        """The teacher a fit uses: `teacher`, or when it is "auto", EASE for the "implicit" objective with item ids,
        a learner with a query loss to distil into and at most TEACHER_MAX_ITEMS items; else "none"."""
        if self.teacher != "auto":
            return self.teacher
        applies = self.objective == "implicit" and self.use_item_ids is not False and has_query_loss
        return "ease" if applies and n_items <= TEACHER_MAX_ITEMS else "none"

    def uses_item_ids(self, has_item_features: bool) -> bool:
        """Whether the network embeds item ids: use_item_ids, or when it is not set, for "implicit" always and for
        "rating" only when the items have no features."""
        if self.use_item_ids is not None:
            return self.use_item_ids
        return self.objective == "implicit" or not has_item_features

    def uses_bias_scale(self) -> bool:
        """Whether the inner loop adapts a per-user scale of the item bias: for "implicit" (no gain in MAE for
        "rating")."""
        return self.objective == "implicit"

    def step_size(self) -> float:
        """The inner loop's SGD step size: inner_lr, or the objective's default when it is not set."""
        return INNER_LR[self.objective] if self.inner_lr is None else self.inner_lr

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_toml_dict(self) -> dict[str, Any]:
        """`to_dict` for a TOML file, which has no null: the None fields are left out (their default is None)."""
        return {k: v for k, v in self.to_dict().items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else
                         dict(v) if isinstance(v, dict) else v) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> Config:
        """Build from a mapping; unknown keys are errors naming the source."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown config key(s) {', '.join(map(repr, unknown))}; "
                              f"expected some of: {', '.join(sorted(known))}")
        values = dict(values)
        if "hidden" in values and isinstance(values["hidden"], list):
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a TOML file of config keys (top level, or under a `[coldstart]` table; a learner's options under
        `[coldstart.learner_options]` or `[learner_options]`)."""
        path = Path(path)
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(values.get("coldstart", values), source=str(path))


def _prior_names(priors: str) -> list[str]:
    """The names of a `priors` setting ("recent, ease" -> ["recent", "ease"]; "none" names nothing)."""
    return [n for n in (part.strip() for part in priors.split(",")) if n and n != "none"]


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"config field '{name}': expected one of {', '.join(choices)}, found {value!r}")


def _check_range(name: str, value: Any, low: float) -> None:
    is_int_field = isinstance(low, int)
    ok_type = isinstance(value, int) if is_int_field else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value < low:
        kind = "an integer" if is_int_field else "a number"
        raise ConfigError(f"config field '{name}': expected {kind} >= {low}, found {value!r}")


def _check_share(name: str, value: Any, open_low: bool) -> None:
    low_ok = (value > 0 if open_low else value >= 0) if isinstance(value, (int, float)) else False
    if isinstance(value, bool) or not low_ok or not value <= 1:
        raise ConfigError(f"config field '{name}': expected a number in {'(' if open_low else '['}0, 1], "
                          f"found {value!r}")


__all__ = ["Config", "OBJECTIVES", "LIKED_RATING"]
