"""Learners: how a user's model is adapted from its support set, and how the shared initialisation learns from it.

The registry is this package: each module here other than `base` is one learner, named as the module, holding one
subclass of `base.Learner` whose `name` is that module's name. Adding a learner is adding a module (and a test):
`coldstart fit --learner NAME`, model.json, `coldstart evaluate --learners`, `coldstart tune` and the test suite's
every-learner tests find it here. `learner_names` lists them without importing torch (for `--help`).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Config
    from ..teacher import Teacher
    from .base import Learner

DEFAULT = "maml"


def learner_names() -> list[str]:
    """Every learner's name, the default first (module names: nothing is imported)."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base" and not m.name.startswith("_"))
    return sorted(names, key=lambda name: name != DEFAULT)


def learner_class(name: str) -> type[Learner]:
    """The Learner subclass registered as `name`; ConfigError naming the choices when there is none."""
    if name not in learner_names():
        raise ConfigError(f"config field 'learner': expected one of {', '.join(learner_names())}, found {name!r}")
    from .base import Learner
    module = importlib.import_module(f"{__name__}.{name}")
    found = [c for c in vars(module).values()
             if isinstance(c, type) and issubclass(c, Learner) and c.__module__ == module.__name__]
    if len(found) != 1 or found[0].name != name:
        raise TypeError(f"{module.__file__}: expected one Learner subclass with name = {name!r}, "
                        f"found {[c.__name__ for c in found]}")
    return found[0]


def make_learner(config: Config, teacher: Teacher | None = None) -> Learner:
    """The learner `config.learner` names, its options checked (distilling `teacher` in training, when given)."""
    return learner_class(config.learner)(config, teacher)


__all__ = ["learner_names", "learner_class", "make_learner"]
