"""The MultiAgentEnv API, the gymnasium adapter, env registry and episodes."""

from marl_arena.env.episode import AgentTrajectory, MultiAgentEpisode, StepOutcome
from marl_arena.env.multi_agent_cartpole import MultiAgentCartPole
from marl_arena.env.multi_agent_env import ALL_AGENTS, MultiAgentEnv
from marl_arena.env.registry import ENTRY_POINT_GROUP, EnvContext, make_env, register_env
from marl_arena.env.single_agent import DEFAULT_AGENT_ID, SingleAgentEnvAdapter
from marl_arena.env.team_rewards import TeamRewards, team_rewards

__all__ = [
    "ALL_AGENTS",
    "AgentTrajectory",
    "DEFAULT_AGENT_ID",
    "ENTRY_POINT_GROUP",
    "EnvContext",
    "MultiAgentCartPole",
    "MultiAgentEnv",
    "MultiAgentEpisode",
    "SingleAgentEnvAdapter",
    "StepOutcome",
    "TeamRewards",
    "make_env",
    "register_env",
    "team_rewards",
]
