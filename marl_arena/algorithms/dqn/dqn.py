"""DQN: the shared off-policy loop (``OffPolicyAlgorithm``) with Q-value modules and DQN's learner.

Epsilon-greedy exploration follows the schedule in ``after_training_step``, which also
updates the target network; the current epsilon is reported with each module's metrics.
"""

from __future__ import annotations

from marl_arena.algorithms.dqn.dqn_config import DQNConfig
from marl_arena.algorithms.dqn.dqn_learner import DQNLearner
from marl_arena.algorithms.off_policy import OffPolicyAlgorithm
from marl_arena.core.q_module import DuelingQModule, QModule


class DQN(OffPolicyAlgorithm):
    config_class = DQNConfig
    learner_class = DQNLearner

    @classmethod
    def module_class_for(cls, config: DQNConfig) -> type[QModule]:
        return DuelingQModule if config.dueling else QModule
