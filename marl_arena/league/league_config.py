"""LeagueConfig: who plays, how opponents are drawn, when players freeze, where it is stored.

Same builder style as the algorithm configs:

    LeagueConfig().environment("open_spiel:kuhn_poker").trainer(PPOConfig().training(lr=1e-3))
        .roster(main_agents=1, scripted={"random": RandomModule}).matchmaking("pfsp", weighting="hard")
        .snapshots(win_rate=0.7).rating(k=16).store("runs/kuhn")
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from marl_arena.core.rl_module import RLModule
from marl_arena.league.matchmaking import get_matchmaker, pfsp
from marl_arena.league.meta_solvers import get_meta_solver
from marl_arena.league.psro import PSROEpochs
from marl_arena.league.teams import SidesConfig

PSRO_EPOCH_OPTIONS = ("oracle_iterations", "oracle_env_steps", "meta_game_episodes")
"""Options of ``matchmaking("psro", ...)`` that set the League's epochs (``PSROEpochs``), not the matchmaker's."""


class LeagueConfig:
    """Settings of a two-seat league, or of a team league with ``sides``; validated when a League is built."""

    def __init__(self):
        self.env: Any = None
        self.env_config: dict = {}
        self.trainer_config: AlgorithmConfig | None = None
        self.main_agents = 1
        self.main_exploiters = 0
        self.league_exploiters = 0
        self.scripted: dict[str, type[RLModule]] = {}
        self.matchmaker: str | Callable = "pfsp"
        self.matchmaker_options: dict[str, Any] = {"weighting": "squared"}
        self.snapshot_win_rate: float | None = 0.7
        self.snapshot_every_n_steps: int | None = None
        self.snapshot_min_games = 100
        self.elo_k = 16.0
        self.store_path: str | None = None
        self.seed = 0
        self.ray_address: str | None = None
        """A Ray cluster to join ("auto": the one this machine is part of); None starts a local one when needed."""
        self.concurrent_trainers: bool | None = None
        """Train every trainer's iteration at the same time; None: when their runners are Ray actors."""
        self.max_opponents_per_runner: int | None = 16
        """Most opponent modules a runner keeps built (least recently drawn ones are dropped); None: all."""
        self.team_sides: SidesConfig | None = None
        """Two sides of agents whose players are teams (``sides``); None: each of two agents is a seat."""
        self.side_trainers: dict[str, AlgorithmConfig] = {}
        """Per side, the algorithm config its players train with instead of ``trainer_config``."""

    def _set(self, **values: Any) -> "LeagueConfig":
        for name, value in values.items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def environment(self, env: Any, *, env_config: dict | None = None) -> "LeagueConfig":
        """A game with exactly two seats (agent ids), by id, class or creator."""
        return self._set(env=env, env_config=dict(env_config or {}))

    def trainer(self, config: AlgorithmConfig) -> "LeagueConfig":
        """The algorithm config every trainable player is trained with (env and mapping are set here)."""
        return self._set(trainer_config=config)

    def roster(self, *, main_agents: int = NotProvided, main_exploiters: int = NotProvided,
               league_exploiters: int = NotProvided,
               scripted: dict[str, type[RLModule]] = NotProvided) -> "LeagueConfig":
        """How many players of each trainable kind, and scripted bots by id (module classes)."""
        return self._set(main_agents=main_agents, main_exploiters=main_exploiters,
                         league_exploiters=league_exploiters, scripted=scripted)

    def sides(self, agents: dict[str, list], *, symmetric: bool | None = NotProvided,
              members: dict[str, dict[Any, Any]] = NotProvided, neutral: dict[Any, type[RLModule]] = NotProvided,
              outcome: Callable | None = NotProvided,
              trainers: dict[str, AlgorithmConfig] = NotProvided) -> "LeagueConfig":
        """Make every player a team of one of two sides (see ``marl_arena.league.teams``).

        ``agents``: side name -> its agent ids, e.g. ``{"predators": ["adversary_0", ...],
        "prey": ["agent_0"]}``. ``symmetric``: whether a player plays either side (None: when
        the sides have the same size and spaces). ``members``: per side, each member's role,
        ``"shared"`` (default: one module for the side's shared members), ``"individual"`` or
        a fixed RLModule class. ``neutral``: agent -> fixed RLModule class for agents on no
        side. ``outcome``: side returns (mean over members) -> side 0's score, when comparing
        them is not what decides the game. ``trainers``: per side, an algorithm config that
        replaces ``trainer`` for that side's players (a centralized critic for one side).
        """
        current = self.team_sides or SidesConfig({})
        self.team_sides = SidesConfig(
            {name: tuple(ids) for name, ids in dict(agents).items()},
            current.symmetric if symmetric is NotProvided else symmetric,
            current.members if members is NotProvided else dict(members),
            current.neutral if neutral is NotProvided else dict(neutral),
            current.outcome if outcome is NotProvided else outcome)
        return self._set(side_trainers=dict(trainers) if trainers is not NotProvided else NotProvided)

    def trainer_for(self, side: str | None) -> AlgorithmConfig:
        """The algorithm config that players of ``side`` train with."""
        return self.side_trainers.get(side, self.trainer_config) if side is not None else self.trainer_config

    def matchmaking(self, matchmaker: str | Callable = NotProvided, **options: Any) -> "LeagueConfig":
        """A matchmaker by name ("self_play", "uniform", "pfsp", "alphastar", "psro") or callable, with options.

        ``"psro"`` takes ``meta_solver`` ("nash", "alpharank", "uniform" or a callable),
        the epoch length as ``oracle_iterations`` (default 10) or ``oracle_env_steps``, and
        ``meta_game_episodes`` (see ``marl_arena.league.psro``); its epochs replace the
        snapshot rule, and its roster has one trainable player, the oracle.
        """
        self._set(matchmaker=matchmaker)
        self.matchmaker_options = options
        return self

    def snapshots(self, *, win_rate: float | None = NotProvided, every_n_steps: int | None = NotProvided,
                  min_games: int = NotProvided) -> "LeagueConfig":
        """Freeze a trainable player when it beats its opponents this often, or every N env steps."""
        return self._set(snapshot_win_rate=win_rate, snapshot_every_n_steps=every_n_steps,
                         snapshot_min_games=min_games)

    def rating(self, *, k: float = NotProvided) -> "LeagueConfig":
        """Online Elo's K factor."""
        return self._set(elo_k=k)

    def store(self, path: str) -> "LeagueConfig":
        """The league directory: SQLite store, snapshots, trainer checkpoints."""
        return self._set(store_path=str(path))

    def cluster(self, *, address: str | None = NotProvided, concurrent_trainers: bool | None = NotProvided,
                max_opponents_per_runner: int | None = NotProvided) -> "LeagueConfig":
        """Where and how the trainers run: a Ray cluster to join, concurrency, opponents kept per runner."""
        return self._set(ray_address=address, concurrent_trainers=concurrent_trainers,
                         max_opponents_per_runner=max_opponents_per_runner)

    def debugging(self, *, seed: int = NotProvided) -> "LeagueConfig":
        return self._set(seed=seed)

    def resolved_matchmaker(self) -> Callable:
        """The matchmaker function with its options bound."""
        if self.matchmaker == "pfsp":
            return functools.partial(pfsp, **self.matchmaker_options)
        matchmaker = get_matchmaker(self.matchmaker)
        options = self.matchmaker_options
        if self.matchmaker == "psro":
            options = {name: value for name, value in options.items() if name not in PSRO_EPOCH_OPTIONS}
        return functools.partial(matchmaker, **options) if options else matchmaker

    def psro_epochs(self) -> PSROEpochs | None:
        """The PSRO epoch rule with matchmaking "psro", else None."""
        return PSROEpochs.from_options(self.matchmaker_options) if self.matchmaker == "psro" else None

    def copy(self) -> "LeagueConfig":
        return copy.deepcopy(self)

    def validate(self) -> None:
        if self.env is None:
            raise ValueError("No env set: call LeagueConfig.environment(env=...) with a two-seat game.")
        if self.trainer_config is None:
            raise ValueError("No trainer set: call LeagueConfig.trainer(PPOConfig()...) .")
        if self.store_path is None:
            raise ValueError("No store set: call LeagueConfig.store(path) with the league directory.")
        for name in ("main_agents", "main_exploiters", "league_exploiters"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"roster {name}={value!r} is not allowed: it must be an integer >= 0.")
        if self.main_agents + self.main_exploiters + self.league_exploiters == 0:
            raise ValueError("The roster has no trainable player: set main_agents >= 1.")
        if self.snapshot_win_rate is not None and not 0.0 < self.snapshot_win_rate <= 1.0:
            raise ValueError(f"snapshots win_rate={self.snapshot_win_rate!r} is not allowed: it must be in (0, 1].")
        if self.snapshot_every_n_steps is not None and self.snapshot_every_n_steps < 1:
            raise ValueError(f"snapshots every_n_steps={self.snapshot_every_n_steps!r} must be >= 1 or None.")
        if self.concurrent_trainers not in (None, True, False):
            raise ValueError(f"cluster concurrent_trainers={self.concurrent_trainers!r} is not allowed: "
                             "it must be True, False or None (concurrent when the runners are Ray actors).")
        if self.max_opponents_per_runner is not None and (
                isinstance(self.max_opponents_per_runner, bool) or not isinstance(self.max_opponents_per_runner, int)
                or self.max_opponents_per_runner < 1):
            raise ValueError(f"cluster max_opponents_per_runner={self.max_opponents_per_runner!r} is not allowed: "
                             "it must be an integer >= 1 or None (no limit).")
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise ValueError(f"cluster address={self.ray_address!r} is not allowed: it must be a string such as "
                             "'auto' or 'host:6379', or None.")
        if not self.elo_k > 0:
            raise ValueError(f"rating k={self.elo_k!r} is not allowed: it must be > 0.")
        self.resolved_matchmaker()
        if self.matchmaker == "psro":
            self._validate_psro()
        if self.team_sides is not None:
            self._validate_sides()

    def _validate_sides(self) -> None:
        if self.matchmaker == "psro":
            raise ValueError("matchmaking('psro') does not go with sides(...): PSRO's meta-game is of one "
                             "two-seat pool; use 'pfsp', 'uniform' or 'self_play' for a team league.")
        unknown = sorted(set(self.side_trainers) - set(self.team_sides.agents))
        if unknown:
            raise ValueError(f"sides trainers= names {unknown}, which are not sides {list(self.team_sides.agents)}.")
        for side, config in self.side_trainers.items():
            if not isinstance(config, AlgorithmConfig):
                raise ValueError(f"sides trainers[{side!r}]={config!r} must be an AlgorithmConfig.")

    def _validate_psro(self) -> None:
        allowed = ("meta_solver", *PSRO_EPOCH_OPTIONS)
        unknown = sorted(set(self.matchmaker_options) - set(allowed))
        if unknown:
            raise ValueError(f"matchmaking('psro') has no option {', '.join(map(repr, unknown))}; "
                             f"its options: {', '.join(allowed)}.")
        try:
            get_meta_solver(self.matchmaker_options.get("meta_solver", "nash"))
        except ValueError as error:
            raise ValueError(f"matchmaking('psro') meta_solver: {error}") from None
        self.psro_epochs()
        if (self.main_agents, self.main_exploiters, self.league_exploiters) != (1, 0, 0):
            raise ValueError("matchmaking('psro') trains one oracle: the roster must be main_agents=1 with no "
                             f"exploiters, got main_agents={self.main_agents}, main_exploiters={self.main_exploiters}, "
                             f"league_exploiters={self.league_exploiters}.")
        if self.snapshot_every_n_steps is not None:
            raise ValueError(f"snapshots every_n_steps={self.snapshot_every_n_steps!r} does not go with "
                             "matchmaking('psro'), whose epochs freeze the oracle: set oracle_env_steps instead, "
                             "or snapshots(every_n_steps=None).")

    def build(self):
        from marl_arena.league.league import League

        return League(self)
