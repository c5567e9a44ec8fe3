"""Teams in a league: two sides of an env's agents, a player as a team of modules, the team mapping.

A two-seat league seats one module per agent. A team league splits the env's agents into two
*sides* (predators and prey, or two equal squads) and makes every player a *team*: a module
for each member of its side. Members may share one module (``"shared"``: the module id is the
player's id), have their own (``"individual"``: ``f"{player}/{agent}"``), or be fixed (a module
class, say a scripted bot: one module ``f"fixed/{agent}"`` that every team of the side shares
and nobody trains). Agents on no side (neutral agents) always play a fixed module of their own,
``f"neutral/{agent}"``.

Sides are *symmetric* when they have the same size and, member by member in the order given,
the same spaces (inferred, or forced with ``symmetric=``): a player then plays either side,
its i-th member acting for the side's i-th agent, and members are named after side 0's
agents. Otherwise every player belongs to one side and only ever meets players of the other,
so its ratings and its leaderboard are per side.

A match scores each side by the **mean** return of its members, so that sides of different
sizes compare on one scale; side 0's score (1, 0.5, 0) compares the two means, unless the
layout's ``outcome`` decides it: in simple_tag the prey's return is never positive, and what
matters is whether the predators caught it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from marl_arena.algorithms.checkpoints import object_path
from marl_arena.core.rl_module import RLModule, RLModuleSpec
from marl_arena.env.registry import make_env
from marl_arena.league.matchmaking import EpisodeDraw, sample_opponent
from marl_arena.league.payoff import PayoffTable
from marl_arena.league.players import PlayerInfo
from marl_arena.runners.module_specs import module_spec_for_config

SHARED = "shared"
INDIVIDUAL = "individual"
MEMBER_ROLES = (SHARED, INDIVIDUAL)
"""How a team member is played, besides a fixed module class."""

Team = dict[Any, str]
"""A team: member (agent id of its home side, side 0's for symmetric sides) -> module id."""

Outcome = Callable[[Mapping[str, float]], float]
"""Side 0's score (1 win, 0.5 draw, 0 loss) from each side's mean return."""


@dataclasses.dataclass
class SidesConfig:
    """What ``LeagueConfig.sides`` records; checked against the env by ``TeamLayout.resolve``."""

    agents: dict[str, tuple]
    symmetric: bool | None = None
    members: dict[str, dict[Any, Any]] = dataclasses.field(default_factory=dict)
    neutral: dict[Any, type[RLModule]] = dataclasses.field(default_factory=dict)
    outcome: Outcome | None = None


@dataclasses.dataclass(frozen=True)
class TeamLayout:
    """The sides of one env, resolved: who is on which side, how members are played, neutral agents."""

    sides: dict[str, tuple]
    """Two sides, in order: side name -> its agent ids."""
    symmetric: bool
    roles: dict[str, dict[Any, Any]]
    """Per side, each member's role: ``"shared"``, ``"individual"`` or a fixed module class."""
    neutral: dict[Any, type[RLModule]]
    outcome: Outcome | None = None

    @classmethod
    def resolve(cls, config: SidesConfig, env: Any) -> "TeamLayout":
        """Check ``config`` against ``env``'s agents and spaces; the error names the side, agent or value."""
        sides = {str(name): tuple(agents) for name, agents in config.agents.items()}
        if len(sides) != 2:
            raise ValueError(f"sides: a team league has exactly two sides, got {len(sides)}: {list(sides)}. "
                             "Put agents that play for nobody in neutral={agent: ModuleClass}.")
        possible = list(env.possible_agents)
        seen: dict[Any, str] = {}
        for name, agents in sides.items():
            if not agents:
                raise ValueError(f"sides: side {name!r} has no agents.")
            for agent in agents:
                if agent not in possible:
                    raise ValueError(f"sides: side {name!r} names agent {agent!r}, which env has not; "
                                     f"its agents: {possible}.")
                if agent in seen:
                    raise ValueError(f"sides: agent {agent!r} is on two sides, {seen[agent]!r} and {name!r}.")
                seen[agent] = name
        spaces = {a: (env.get_observation_space(a), env.get_action_space(a)) for a in possible}
        first, second = sides.values()
        same_shape = len(first) == len(second) and all(spaces[a] == spaces[b] for a, b in zip(first, second))
        symmetric = same_shape if config.symmetric is None else bool(config.symmetric)
        if symmetric and not same_shape:
            raise ValueError(f"sides: symmetric=True needs sides of the same size whose members have, in order, the "
                             f"same spaces; sides {list(sides)} have {len(first)} and {len(second)} agents, or "
                             "members with different spaces.")
        unknown = sorted(set(config.members) - set(sides), key=str)
        if unknown:
            raise ValueError(f"sides: members= names sides {unknown} that are not sides {list(sides)}.")
        if symmetric and len(config.members) > 1:
            raise ValueError("sides: symmetric sides share one team layout; give members= for one side only.")
        given_by_side = {name: dict(config.members.get(name) or {}) for name in sides}
        if symmetric and config.members:  # one side's layout, by position on the other
            (source,) = config.members
            for name, agents in sides.items():
                given_by_side[name] = {agent: config.members[source].get(a, SHARED)
                                       for a, agent in zip(sides[source], agents)} if name != source else given_by_side[name]
        roles = {}
        for name, agents in sides.items():
            given = given_by_side[name]
            roles[name] = {agent: _role(name, agent, given.get(agent, SHARED)) for agent in agents}
            extra = sorted(set(given) - set(agents), key=str)
            if extra:
                raise ValueError(f"sides: members= for side {name!r} names {extra}, which are not on it: {list(agents)}.")
            shared = [a for a in agents if roles[name][a] == SHARED]
            if any(spaces[a] != spaces[shared[0]] for a in shared):
                raise ValueError(f"sides: the shared members {shared} of side {name!r} have different spaces; "
                                 "make some of them 'individual'.")
            if all(not isinstance(role, str) for role in roles[name].values()):
                raise ValueError(f"sides: every member of side {name!r} is fixed, so its players would train nothing.")
        neutral = dict(config.neutral)
        for agent, module_class in neutral.items():
            if agent in seen or agent not in possible:
                raise ValueError(f"sides: neutral agent {agent!r} must be an agent of the env on no side; "
                                 f"agents on no side: {[a for a in possible if a not in seen]}.")
            _role("neutral", agent, module_class)
        missing = [a for a in possible if a not in seen and a not in neutral]
        if missing:
            raise ValueError(f"sides: agents {missing} are on no side and have no neutral module; add them to a side "
                             "or give neutral={agent: ModuleClass}.")
        if config.outcome is not None and not callable(config.outcome):
            raise ValueError(f"sides: outcome={config.outcome!r} must be a callable (side returns -> side 0's score).")
        return cls(sides, symmetric, roles, neutral, config.outcome)

    # ------------------------------------------------------------------ who plays what
    @property
    def names(self) -> tuple[str, str]:
        return tuple(self.sides)  # type: ignore[return-value]

    def home_sides(self) -> list[str | None]:
        """The sides players are created for: each side, or None (either side) when symmetric."""
        return [None] if self.symmetric else list(self.sides)

    def team(self, player: str, side: str | None) -> Team:
        """Player ``player``'s modules: the shared one, individual ones, the side's fixed ones."""
        home = side if side is not None else self.names[0]
        return {agent: player if role == SHARED else f"{player}/{agent}" if role == INDIVIDUAL else f"fixed/{agent}"
                for agent, role in self.roles[home].items()}

    def trained_modules(self, team: Team) -> list[str]:
        """The team's own modules, each once, in member order: all but the fixed members', trained unless the
        player is frozen."""
        return list(dict.fromkeys(m for m in team.values() if not m.startswith("fixed/")))

    def fixed_modules(self) -> dict[str, tuple[Any, type[RLModule]]]:
        """Every fixed module: module id -> (the agent whose spaces it takes, its class)."""
        fixed = {}
        for side in ([self.names[0]] if self.symmetric else self.names):
            for agent, role in self.roles[side].items():
                if not isinstance(role, str):
                    fixed[f"fixed/{agent}"] = (agent, role)
        return fixed | {f"neutral/{agent}": (agent, cls) for agent, cls in self.neutral.items()}

    def module_agents(self, team: Team) -> dict[str, Any]:
        """Each module of ``team`` -> the member whose spaces it is built with (its first)."""
        agents: dict[str, Any] = {}
        for agent, module_id in team.items():
            agents.setdefault(module_id, agent)
        return agents

    def seat(self, side: str, team: Team) -> dict[Any, str]:
        """The agents of ``side`` -> the modules of ``team`` playing them (by position when symmetric)."""
        canonical = list(team)
        return {agent: team[canonical[i]] for i, agent in enumerate(self.sides[side])}

    def neutral_mapping(self) -> dict[Any, str]:
        return {agent: f"neutral/{agent}" for agent in self.neutral}

    def metadata(self, side: str | None, team: Team) -> dict[str, Any]:
        """What the store keeps about a team player: its side and members (for readers and the dashboard)."""
        return {"side": side, "members": {str(agent): module for agent, module in team.items()}}

    # ------------------------------------------------------------------ results
    def side_returns(self, agent_returns: Mapping[Any, float]) -> tuple[float, float]:
        """Each side's mean member return (a member that never acted counts 0)."""
        return tuple(float(np.mean([agent_returns.get(a, 0.0) for a in agents]))  # type: ignore[return-value]
                     for agents in self.sides.values())

    def score(self, returns: Sequence[float]) -> float:
        """Side 0's score: the ``outcome`` function's, else the comparison of the sides' mean returns."""
        if self.outcome is not None:
            score = float(self.outcome(dict(zip(self.names, returns))))
            if score not in (0.0, 0.5, 1.0):
                raise ValueError(f"sides outcome returned {score!r}; it must be 1.0, 0.5 or 0.0 (side 0's score).")
            return score
        return 1.0 if returns[0] > returns[1] else 0.5 if returns[0] == returns[1] else 0.0


def _role(side: str, agent: Any, role: Any) -> Any:
    if role in MEMBER_ROLES or (isinstance(role, type) and issubclass(role, RLModule)):
        return role
    raise ValueError(f"sides: member {agent!r} of {side!r} has role {role!r}; allowed: 'shared', 'individual' "
                     "or a fixed RLModule class.")


def member_roles_json(layout: TeamLayout) -> dict[str, Any]:
    """The layout as JSON for the store's game record (fixed classes by import path)."""
    return {"symmetric": layout.symmetric,
            "sides": {name: [str(a) for a in agents] for name, agents in layout.sides.items()},
            "roles": {name: {str(a): r if isinstance(r, str) else object_path(r) for a, r in roles.items()}
                      for name, roles in layout.roles.items()},
            "neutral": {str(a): object_path(c) for a, c in layout.neutral.items()}}


def agent_module_specs(trainer: Any, env: Any, env_config: dict) -> dict[Any, RLModuleSpec]:
    """The spec ``trainer`` (an AlgorithmConfig) builds for a module playing each agent of ``env``:
    its module class and model config, that agent's spaces, a centralized critic's width filled in.
    A team module takes the spec of the member it plays first."""
    config = trainer.copy()
    config.environment(env, env_config=env_config)
    probe = make_env(env, env_config)
    try:
        ids = {agent: f"agent/{i}" for i, agent in enumerate(probe.possible_agents)}
    finally:
        probe.close()
    config.multi_agent(policies=list(ids.values()), policy_mapping_fn=lambda agent, *args, **kwargs: ids[agent])
    specs = module_spec_for_config(config, config.algo_class.module_class_for(config)).rl_module_specs
    return {agent: specs[module_id] for agent, module_id in ids.items()}


def side_opponents(matchmaker: Callable, learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable,
                   player_sides: Mapping[str, str | None]) -> dict[str, float]:
    """The matchmaker's distribution for ``learner``, among the players it can meet.

    Symmetric sides: every player, as in a two-seat league. Asymmetric: the matchmaker sees the
    learner and the other side's players only; its self-play share ("play yourself", which
    a predator cannot) goes to the other side's trainable players, latest against latest.
    """
    side = player_sides[learner]
    if side is None:
        return matchmaker(learner, list(players), payoff)
    others = [p for p in players if player_sides.get(p.id, side) != side]
    distribution = dict(matchmaker(learner, [p for p in players if p.id == learner] + others, payoff))
    own = distribution.pop(learner, 0.0)
    if own > 0:
        current = [p.id for p in others if p.trainable] or [p.id for p in others if p.kind != "human"]
        if not current:
            raise ValueError(f"Learner {learner!r} of side {side!r} has no opponent on the other side.")
        for pid in current:
            distribution[pid] = distribution.get(pid, 0.0) + own / len(current)
    return distribution


@dataclasses.dataclass
class TeamDraw(EpisodeDraw):
    """A team trainer's policy mapping: per episode, the learner's side and a drawn opponent team.

    The sibling of ``OpponentDraw`` for team leagues (both are ``EpisodeDraw``s). ``teams`` holds
    the learner's and every drawable opponent's team; ``sides`` each player's home side (None:
    either side).
    """

    learner: str
    distribution: dict[str, float]
    layout: TeamLayout
    teams: dict[str, Team]
    sides: dict[str, str | None]
    seed: int

    def plan(self) -> dict[Any, str]:
        """One episode's agent -> module mapping, drawn now."""
        names = self.layout.names
        home = self.sides[self.learner]
        side = names[int(self._rng.integers(2))] if home is None else home
        other = names[1 - names.index(side)]
        opponent = sample_opponent(self.distribution, self._rng)
        return (self.layout.seat(side, self.teams[self.learner]) | self.layout.seat(other, self.teams[opponent])
                | self.layout.neutral_mapping())
