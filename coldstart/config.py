"""Hyperparameters: one frozen dataclass, validated once, loadable from TOML."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

OBJECTIVES = ("implicit", "rating")
ADAPT_MODES = ("head", "head+user", "last", "user")
DEVICES = ("auto", "cpu", "cuda")
TASK_SPLITS = ("random", "time")
TEACHERS = (None, "auto", "als", "ease")  # None: no teacher; "auto": see Config.teacher_for
TEACHER_MAX_ITEMS = 10_000  # teacher "auto" fits EASE up to this many items (its items x items matrix: 0.8 GB here)
INNER_LR = {"implicit": 0.1, "rating": 0.03}  # inner_lr when not set: squared-error gradients are larger


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of coldstart, with its default.

    The defaults are the configuration the README and the benchmarks speak of.
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
    adapt: str = "head+user"  # "head+user": the decision layers and the user vector (with its pooled support);
    #                           "head": the decision layers only (MeLU's local update); "last": the output layer;
    #                           "user": the user vector only (the shared head stays fixed; about 40% faster)
    user_bias_scale: bool | None = None  # each user's own scale of the item bias: score = ... + exp(s_u) bias(i),
    #                                      s_u from 0, adapted in the inner loop (how closely the user follows
    #                                      popularity). None: yes for "implicit", no for "rating" (no gain in MAE)
    learner: str = "maml"  # how users are adapted and the initialisation learns (learners.py): "maml" (second
    #                        order), "fomaml", "metasgd" (learned step sizes), "proximal", "reptile", "encoder"
    inner_steps: int = 2  # SGD steps on the support set
    inner_lr: float | None = None  # SGD step size of the inner loop; None: INNER_LR of the objective (0.1 / 0.03)
    proximal_l2: float = 1.0  # learner "proximal": weight of ||phi - theta||^2 / 2 in the inner objective
    prior_recent_share: float = 0.5  # "implicit": the starting item bias is the log popularity over this newest
    #                                  share of the training log by timestamp (what is popular now; 1: all of it)
    # --- outer loop (meta-training) --------------------------------------------------------------------------
    meta_lr: float = 1e-3  # Adam step size of the outer loop
    weight_decay: float = 1e-4  # Adam weight decay (L2) of the outer loop
    meta_batch_size: int = 32  # users (tasks) per meta-step
    epochs: int = 40  # passes over the training users
    validation_fraction: float = 0.0  # share of the training users (the newest by first interaction; random without
    #                                   timestamps) held out of meta-training: after every epoch the query loss of
    #                                   their fixed tasks is measured, and fit keeps the epoch with the lowest (epoch
    #                                   0, the starting point, included). 0: train on every user, keep the last epoch
    support_min: int = 1  # a training task's support size is drawn uniformly from [support_min, support_max]
    support_max: int = 10
    query_size: int = 32  # at most this many query interactions per training task
    task_split: str = "time"  # training support: each user's first interactions ("time", as a new user's are),
    #                           or a "random" subset (MeLU)
    positive_rating: float | None = 4.0  # "implicit": the query loss (what meta-training asks an adapted user's
    #                                      model to find) asks for the ratings >= this. None, or data without
    #                                      ratings: every interaction
    dislike_below: float | None = None  # "implicit": a support rating below this counts against its item in
    #                                     adaptation, any other for it. None: the middle of the training scale
    n_negatives: int = 512  # negatives per meta-batch for the sampled softmax ("implicit"); >= items: full softmax
    # --- teacher prior (teacher.py; used by fit only, never at recommend time) -------------------------------
    teacher: str | None = "auto"  # a warm model fitted on the training log that guides meta-training
    #                               ("implicit"): "als" (implicit's ALS) or "ease"; None: no teacher; "auto": EASE
    #                               where it applies and fits in memory (`teacher_for`). EASE lifted test nDCG@10
    #                               by 0.01-0.03 on ML-100K and 0.04-0.08 on ml-latest-small (docs/experiments.md)
    teacher_weight: float = 1.0  # weight of the distillation term in the outer loss: KL(teacher || adapted user's
    #                              model) of the softmax over the meta-batch's negatives and the query items
    #                              (0: the teacher only starts the item-id embeddings, with teacher_init)
    teacher_temperature: float = 0.1  # the teacher's softmax is over its scores / this (ALS and EASE scores
    #                                   estimate a 0/1 interaction)
    teacher_min_rating: float | None = None  # the teacher is fitted on the log rows rated >= this (None, or data
    #                                          whose ratings never reach it: every row)
    teacher_init: bool = True  # the item-id embeddings start from the teacher's item factors (their top
    #                            principal directions, scaled as a fresh embedding)
    # --- run ------------------------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 64  # users adapted and scored at once by recommend / predict (64 ran fastest on CPU;
    #                            a GPU takes more)

    def __post_init__(self) -> None:
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("adapt", self.adapt, ADAPT_MODES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("task_split", self.task_split, TASK_SPLITS)
        from .learners import LEARNERS  # the registry lives with the classes (learners.py imports this module)
        _check_choice("learner", self.learner, tuple(LEARNERS))
        for name in ("embedding_dim", "meta_batch_size", "epochs", "support_min", "support_max",
                     "query_size", "n_negatives", "eval_batch_size"):
            _check_range(name, getattr(self, name), low=1)
        _check_range("inner_steps", self.inner_steps, low=0)
        _check_range("seed", self.seed, low=0)
        _check_range("weight_decay", self.weight_decay, low=0.0)
        _check_range("proximal_l2", self.proximal_l2, low=0.0)
        if not (isinstance(self.prior_recent_share, (int, float)) and 0 < self.prior_recent_share <= 1):
            raise ConfigError(f"config field 'prior_recent_share': expected a number in (0, 1], "
                              f"found {self.prior_recent_share!r}")
        if self.inner_lr is not None:
            _check_range("inner_lr", self.inner_lr, low=0.0)
        if not self.meta_lr > 0:
            raise ConfigError(f"config field 'meta_lr': expected a number > 0, found {self.meta_lr!r}")
        if self.learner == "metasgd" and not self.step_size() > 0:
            raise ConfigError(f"config field 'inner_lr': expected a number > 0 with learner 'metasgd' (its step "
                              f"sizes are learned in log space), found {self.inner_lr!r}")
        if self.learner == "encoder" and not self.pool_support:
            raise ConfigError("config field 'pool_support': expected true with learner 'encoder' (it encodes the "
                              "support set in place of the pooling), found false")
        if not (isinstance(self.validation_fraction, (int, float)) and 0 <= self.validation_fraction <= 0.5):
            raise ConfigError(f"config field 'validation_fraction': expected a number in [0, 0.5], "
                              f"found {self.validation_fraction!r}")
        self._check_teacher()
        if self.support_max < self.support_min:
            raise ConfigError(f"config field 'support_max': expected >= support_min ({self.support_min}), "
                              f"found {self.support_max}")
        hidden = tuple(self.hidden)
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ConfigError(f"config field 'hidden': expected a non-empty list of positive integers, "
                              f"found {self.hidden!r}")
        object.__setattr__(self, "hidden", hidden)

    def _check_teacher(self) -> None:
        if self.teacher == "none":  # TOML has no null: `teacher = "none"` is None
            object.__setattr__(self, "teacher", None)
        if self.teacher not in TEACHERS:
            raise ConfigError(f"config field 'teacher': expected 'als', 'ease' or None (no teacher), "
                              f"found {self.teacher!r}")
        _check_range("teacher_weight", self.teacher_weight, low=0.0)
        if not (isinstance(self.teacher_temperature, (int, float)) and self.teacher_temperature > 0):
            raise ConfigError(f"config field 'teacher_temperature': expected a number > 0, "
                              f"found {self.teacher_temperature!r}")
        if self.teacher_min_rating is not None and not isinstance(self.teacher_min_rating, (int, float)):
            raise ConfigError(f"config field 'teacher_min_rating': expected a number or none, "
                              f"found {self.teacher_min_rating!r}")
        if not isinstance(self.teacher_init, bool):
            raise ConfigError(f"config field 'teacher_init': expected true or false, found {self.teacher_init!r}")
        if self.teacher in (None, "auto"):
            return
        if self.objective != "implicit":
            raise ConfigError(f"config field 'teacher': expected none with objective {self.objective!r} (the "
                              f"teachers rank items, they predict no ratings), found {self.teacher!r}")
        if self.learner == "reptile" and self.teacher_weight > 0:
            raise ConfigError(f"config field 'teacher_weight': expected 0 with learner 'reptile' (it has no query "
                              f"loss to distil into; the teacher can still start the item ids), "
                              f"found {self.teacher_weight!r}")
        if self.teacher_init and self.use_item_ids is False:
            raise ConfigError("config field 'teacher_init': expected false with use_item_ids false (the teacher "
                              "starts the item-id embeddings), found true")

    def teacher_for(self, n_items: int) -> str | None:
        """The teacher a fit uses: `teacher`, or when it is "auto", EASE for the "implicit" objective with item ids,
        a learner with a query loss to distil into (not reptile) and at most TEACHER_MAX_ITEMS items; else none."""
        if self.teacher != "auto":
            return self.teacher
        applies = (self.objective == "implicit" and self.use_item_ids is not False
                   and not (self.learner == "reptile" and self.teacher_weight > 0))
        return "ease" if applies and n_items <= TEACHER_MAX_ITEMS else None

    def uses_item_ids(self, has_item_features: bool) -> bool:
        """Whether the network embeds item ids: use_item_ids, or when it is not set, for "implicit" always and for
        "rating" only when the items have no features."""
        if self.use_item_ids is not None:
            return self.use_item_ids
        return self.objective == "implicit" or not has_item_features

    def uses_bias_scale(self) -> bool:
        """Whether the inner loop adapts a per-user scale of the item bias: user_bias_scale, or when it is not set,
        for "implicit" only."""
        return self.objective == "implicit" if self.user_bias_scale is None else self.user_bias_scale

    def step_size(self) -> float:
        """The inner loop's SGD step size: inner_lr, or the objective's default when it is not set."""
        return INNER_LR[self.objective] if self.inner_lr is None else self.inner_lr

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_toml_dict(self) -> dict[str, Any]:
        """`to_dict` for a TOML file, which has no null: teacher None as "none" (left out, it would read back as its
        default, "auto"); the other None fields are left out (their default is None)."""
        values = self.to_dict()
        if values["teacher"] is None:
            values["teacher"] = "none"
        return {k: v for k, v in values.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

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
        """Read a TOML file of config keys (top level, or under a `[coldstart]` table)."""
        path = Path(path)
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(values.get("coldstart", values), source=str(path))


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"config field '{name}': expected one of {', '.join(choices)}, found {value!r}")


def _check_range(name: str, value: Any, low: float) -> None:
    is_int_field = isinstance(low, int)
    ok_type = isinstance(value, int) if is_int_field else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value < low:
        kind = "an integer" if is_int_field else "a number"
        raise ConfigError(f"config field '{name}': expected {kind} >= {low}, found {value!r}")


__all__ = ["Config", "ConfigError", "OBJECTIVES", "ADAPT_MODES"]
