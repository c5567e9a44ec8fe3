"""N independent CartPoles, one agent each: the smallest real multi-agent test bed."""

from __future__ import annotations

import gymnasium as gym

from marl_arena.env.multi_agent_env import ALL_AGENTS, MultiAgentEnv


class MultiAgentCartPole(MultiAgentEnv):
    """Agents ``0 .. num_agents-1`` each balance their own pole; the episode ends when all are done.

    An agent whose pole falls (or whose 500 steps are up) leaves the game; its final
    observation is reported once, at the step where it is done.
    """

    def __init__(self, config: dict | None = None):
        config = config or {}
        num_agents = int(config.get("num_agents", 2))
        if num_agents < 1:
            raise ValueError(f"MultiAgentCartPole needs num_agents >= 1, got {num_agents}.")
        self._envs = [gym.make("CartPole-v1") for _ in range(num_agents)]
        self.possible_agents = list(range(num_agents))
        self.agents = []
        self.observation_spaces = {i: e.observation_space for i, e in enumerate(self._envs)}
        self.action_spaces = {i: e.action_space for i, e in enumerate(self._envs)}

    def reset(self, *, seed=None, options=None):
        self.agents = list(self.possible_agents)
        obs, infos = {}, {}
        for i, env in enumerate(self._envs):
            obs[i], infos[i] = env.reset(seed=None if seed is None else seed + i, options=options)
        return obs, infos

    def step(self, actions):
        obs, rewards, terminateds, truncateds, infos = {}, {}, {}, {}, {}
        for i, action in actions.items():
            if i not in self.agents:
                raise ValueError(f"MultiAgentCartPole: agent {i!r} is not alive (alive: {self.agents}).")
            obs[i], rewards[i], terminateds[i], truncateds[i], infos[i] = self._envs[i].step(action)
        self.agents = [i for i in self.agents if not (terminateds.get(i) or truncateds.get(i))]
        # Each agent's own flag says how it ended; "__all__" only says that everyone has.
        terminateds[ALL_AGENTS] = not self.agents
        truncateds[ALL_AGENTS] = False
        return obs, rewards, terminateds, truncateds, infos

    def close(self) -> None:
        for env in self._envs:
            env.close()
