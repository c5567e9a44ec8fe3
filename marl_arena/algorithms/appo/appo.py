"""APPO: IMPALA's asynchronous loop with APPO's learner (clipped surrogate, target policy, KL loss)."""

from __future__ import annotations

from marl_arena.algorithms.appo.appo_config import APPOConfig
from marl_arena.algorithms.appo.appo_learner import APPOLearner
from marl_arena.algorithms.impala.impala import IMPALA


class APPO(IMPALA):
    config_class = APPOConfig
    learner_class = APPOLearner
