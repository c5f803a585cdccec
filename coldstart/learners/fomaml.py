"""First-order MAML."""
from __future__ import annotations

from .base import Learner


class FOMAML(Learner):
    """First-order MAML: the inner gradients are constants in the meta-gradient (no second derivatives)."""

    name = "fomaml"
    first_order = True
