"""Any gymnasium env as a one-agent MultiAgentEnv, so one code path serves both."""

from __future__ import annotations

import gymnasium as gym

from marl_arena.env.multi_agent_env import ALL_AGENTS, MultiAgentEnv

DEFAULT_AGENT_ID = "default_agent"


class SingleAgentEnvAdapter(MultiAgentEnv):
    """Wraps a ``gymnasium.Env``; its one agent is ``DEFAULT_AGENT_ID``."""

    def __init__(self, env: gym.Env):
        self.env = env
        self.possible_agents = [DEFAULT_AGENT_ID]
        self.agents = [DEFAULT_AGENT_ID]
        self.observation_spaces = {DEFAULT_AGENT_ID: env.observation_space}
        self.action_spaces = {DEFAULT_AGENT_ID: env.action_space}
        self.render_mode = getattr(env, "render_mode", None)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return {DEFAULT_AGENT_ID: obs}, {DEFAULT_AGENT_ID: info}

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions[DEFAULT_AGENT_ID])
        a = DEFAULT_AGENT_ID
        return (
            {a: obs},
            {a: float(reward)},
            {a: bool(terminated), ALL_AGENTS: bool(terminated)},
            {a: bool(truncated), ALL_AGENTS: bool(truncated)},
            {a: info},
        )

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()
