"""Team rewards made explicit: shared, individual, or a mix, per team.

Cooperative envs hand out rewards in their own way (mpe2's ``local_ratio``, a game's own
per-agent scores); which one an agent learns from is a training decision, so it is stated
once here instead of inside each env. ``TeamRewards`` wraps any MultiAgentEnv and gives
each member of a team

    individual_weight * own reward + (1 - individual_weight) * team reward

where the team reward is the sum (or the mean) of what the env gave the team's members at
that step (members that left the game count in neither): ``individual_weight=0`` is a fully shared reward (MAPPO's cooperative setting),
``1`` the env's own rewards. Agents in no team (neutral agents) keep their own reward.

Use it as the env of a config, with ``team_rewards`` wrapping an env id, class or creator::

    config.environment(team_rewards("mpe2:simple_spread_v3", teams={"spreaders": ["agent_0", "agent_1",
                       "agent_2"]}, individual_weight=0.0), env_config={"N": 3})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable

from marl_arena.env.multi_agent_env import AgentID, MultiAgentDict, MultiAgentEnv
from marl_arena.env.registry import make_env

AGGREGATES = ("sum", "mean")


class TeamRewards(MultiAgentEnv):
    """``env`` with each team member's reward mixed with its team's (see the module docstring).

    A team's reward at a step adds up the rewards the env named for its members; every member
    still in the game or named in that step's rewards gets the mix, so a member whose own
    reward is missing at a step (a turn-based game did not name it) still shares the team's.
    """

    def __init__(self, env: MultiAgentEnv, teams: Mapping[str, Sequence[AgentID]], individual_weight: float = 0.0,
                 aggregate: str = "sum"):
        self.env = env
        self.teams = {str(name): tuple(members) for name, members in _checked_teams(teams, env).items()}
        if isinstance(individual_weight, bool) or not isinstance(individual_weight, (int, float)) \
                or not 0.0 <= individual_weight <= 1.0:
            raise ValueError(f"TeamRewards individual_weight={individual_weight!r} must be a number in [0, 1] "
                             "(0: the team's reward only, 1: each agent's own reward only).")
        if aggregate not in AGGREGATES:
            raise ValueError(f"TeamRewards aggregate={aggregate!r} is not one of {list(AGGREGATES)}.")
        self.individual_weight = float(individual_weight)
        self.aggregate = aggregate
        self.possible_agents = env.possible_agents
        self.observation_spaces = env.observation_spaces
        self.action_spaces = env.action_spaces
        self.render_mode = env.render_mode
        self.state_space = env.state_space

    @property
    def agents(self) -> list[AgentID]:  # type: ignore[override]
        return self.env.agents

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[MultiAgentDict, MultiAgentDict]:
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: MultiAgentDict) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict,
                                                      MultiAgentDict, MultiAgentDict]:
        obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
        return obs, self.mix(rewards, self.env.agents), terminateds, truncateds, infos

    def mix(self, rewards: Mapping[AgentID, float], live: Sequence[AgentID] = ()) -> dict[AgentID, float]:
        """The rewards of one step after mixing; ``live``: agents still in the game."""
        mixed = dict(rewards)
        weight = self.individual_weight
        for members in self.teams.values():
            named = [float(rewards[member]) for member in members if member in rewards]
            total = sum(named)
            # The mean over the members the env rewarded at this step: members that left do not dilute it.
            team_reward = total / max(1, len(named)) if self.aggregate == "mean" else total
            for member in members:
                if member in rewards or member in live:
                    mixed[member] = weight * float(rewards.get(member, 0.0)) + (1.0 - weight) * team_reward
        return mixed

    def state(self) -> Any:
        return self.env.state()

    def get_observation_space(self, agent_id: AgentID):
        return self.env.get_observation_space(agent_id)

    def get_action_space(self, agent_id: AgentID):
        return self.env.get_action_space(agent_id)

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def _checked_teams(teams: Any, env: MultiAgentEnv) -> Mapping[str, Sequence[AgentID]]:
    if not isinstance(teams, Mapping) or not teams:
        raise ValueError(f"TeamRewards teams={teams!r} must be a non-empty dict of team name -> list of agent ids.")
    seen: dict[AgentID, str] = {}
    for name, members in teams.items():
        if isinstance(members, (str, bytes)) or not isinstance(members, Sequence) or not members:
            raise ValueError(f"TeamRewards team {name!r}: {members!r} must be a non-empty list of agent ids.")
        for member in members:
            if member not in env.possible_agents:
                raise ValueError(f"TeamRewards team {name!r} names agent {member!r}, which the env does not have; "
                                 f"its agents are {list(env.possible_agents)}.")
            if member in seen:
                raise ValueError(f"TeamRewards: agent {member!r} is in both team {seen[member]!r} and team {name!r}.")
            seen[member] = name
    return teams


class TeamRewardsCreator:
    """``creator(env_config) -> TeamRewards`` over the env that ``env`` names (an id, class or creator).

    Picklable, so it travels to Ray runner actors, where the id resolves: plugin and gymnasium
    ids resolve in any process, ``register_env`` names only where they were registered.
    """

    def __init__(self, env: str | type | Callable, teams: Mapping[str, Sequence[AgentID]],
                 individual_weight: float = 0.0, aggregate: str = "sum"):
        self.env = env
        self.teams = teams
        self.individual_weight = individual_weight
        self.aggregate = aggregate

    def __call__(self, env_config: dict | None = None) -> TeamRewards:
        return TeamRewards(make_env(self.env, env_config), self.teams, self.individual_weight, self.aggregate)

    def __repr__(self) -> str:
        return (f"team_rewards({self.env!r}, teams={self.teams!r}, individual_weight={self.individual_weight!r}, "
                f"aggregate={self.aggregate!r})")


def team_rewards(env: str | type | Callable, teams: Mapping[str, Sequence[AgentID]], individual_weight: float = 0.0,
                 aggregate: str = "sum") -> TeamRewardsCreator:
    """The env of a config whose rewards are mixed per team: ``config.environment(team_rewards(...))``."""
    return TeamRewardsCreator(env, teams, individual_weight, aggregate)
