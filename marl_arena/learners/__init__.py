"""Learning: Learner (modules, optimizers, update loop) and LearnerGroup (local or Ray DDP)."""

from marl_arena.learners.learner import Learner
from marl_arena.learners.learner_group import LearnerGroup

__all__ = ["Learner", "LearnerGroup"]
