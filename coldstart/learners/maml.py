"""MAML (Finn et al. 2017), second order: the base Learner itself, registered under its name."""
from __future__ import annotations

from .base import Learner


class MAML(Learner):
    """SGD steps on each user's support loss, differentiated through by its query loss."""

    name = "maml"
