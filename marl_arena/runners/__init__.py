"""Sampling: EnvRunner (a vector of envs in one process) and EnvRunnerGroup (local or Ray)."""

from marl_arena.runners.env_runner import EnvError, EnvRunner, EpisodeStats, SampleResult
from marl_arena.runners.env_runner_group import EnvRunnerGroup

__all__ = ["EnvError", "EnvRunner", "EnvRunnerGroup", "EpisodeStats", "SampleResult"]
