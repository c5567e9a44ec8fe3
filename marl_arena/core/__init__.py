"""RLModules, default models, action distributions and the batch column names."""

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import (
    ActionDistribution,
    Categorical,
    DiagGaussian,
    SquashedGaussian,
    distribution_for_space,
)
from marl_arena.core.models import DefaultModelConfig
from marl_arena.core.rl_module import (
    DEFAULT_MODULE_ID,
    MultiRLModule,
    MultiRLModuleSpec,
    RLModule,
    RLModuleSpec,
)
from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.centralized_critic import CentralizedCriticConfig, CentralizedCriticModule
from marl_arena.core.q_module import DuelingQModule, QModule
from marl_arena.core.sac_module import SACModule, SingleQSACModule

__all__ = [
    "ActionDistribution",
    "ActorCriticModule",
    "Categorical",
    "CentralizedCriticConfig",
    "CentralizedCriticModule",
    "Columns",
    "DEFAULT_MODULE_ID",
    "DefaultModelConfig",
    "DiagGaussian",
    "DuelingQModule",
    "MultiRLModule",
    "MultiRLModuleSpec",
    "RLModule",
    "QModule",
    "RLModuleSpec",
    "SACModule",
    "SingleQSACModule",
    "SquashedGaussian",
    "distribution_for_space",
]
