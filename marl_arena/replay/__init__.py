"""Replay for off-policy learning: sum tree, n-step transitions, uniform and prioritized buffers."""

from marl_arena.replay.buffers import (
    BATCH_INDEXES,
    REPLAY_BUFFER_TYPES,
    WEIGHTS,
    BaseReplayBuffer,
    MultiAgentReplayBuffer,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    replay_buffer_from_config,
)
from marl_arena.replay.n_step import n_step_transitions
from marl_arena.replay.sum_tree import SumTree

__all__ = [
    "BATCH_INDEXES",
    "REPLAY_BUFFER_TYPES",
    "WEIGHTS",
    "BaseReplayBuffer",
    "MultiAgentReplayBuffer",
    "PrioritizedReplayBuffer",
    "ReplayBuffer",
    "SumTree",
    "n_step_transitions",
    "replay_buffer_from_config",
]
