"""League: trains its trainable players against opponents drawn by the matchmaker, over a store.

Each trainable player has its own Algorithm (any AlgorithmConfig). Inside its EnvRunners
every other player is a frozen module, so from the learner's side the opponents are part
of the env; before each iteration the matchmaker's distribution becomes the runners'
policy mapping, which draws a seat and an opponent per episode. Finished episodes become
matches in the store (one transaction per iteration), the payoff table and Elo follow, and
the snapshot rule freezes players into new opponents. A league started again on the same
directory resumes from the store and the trainers' checkpoints.

On a Ray cluster the trainers train at the same time: each trainer's ``train()`` runs in a
driver thread while its runners (and learners, with ``num_learners >= 1``) are Ray actors,
so the threads mostly wait on Ray. The Algorithms stay ordinary objects of the driver,
which is why every part of a league still runs in one process (``num_env_runners=0``) for
tests and debugging, and why the driver alone schedules, records and snapshots, between
iterations and in the trainers' fixed order. The league divides the cluster's CPUs and
GPUs among all trainers' actors when it is built (``divide_resources``), and each snapshot
goes to Ray's object store once, for every runner of every trainer.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import pathlib
import time
from typing import Any, Callable

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.checkpoints import METADATA, object_path
from marl_arena.algorithms.impala.impala import ALL_MODULES
from marl_arena.core.rl_module import MultiRLModuleSpec, RLModuleSpec
from marl_arena.env.episode import MultiAgentEpisode
from marl_arena.env.registry import make_env
from marl_arena.league.league_config import LeagueConfig
from marl_arena.league.players import PlayerInfo, resets_on_snapshot
from marl_arena.league.leaderboard import FIT_KEY, INITIAL_ELO, RatingFit, leaderboard, payoff_from_matches
from marl_arena.league.ratings import elo_update
from marl_arena.league.matchmaking import EpisodeDraw, sample_opponent
from marl_arena.league.meta_solvers import get_meta_solver
from marl_arena.league.module_specs import player_spec, space_to_json, spec_to_json
from marl_arena.league.psro import MetaGame
from marl_arena.league.store import LeagueStore, MatchRecord, StoreError
from marl_arena.league.teams import (Team, TeamDraw, TeamLayout, agent_module_specs, member_roles_json,
                                     side_opponents)
from marl_arena.runners.env_runner import EnvRunner, EpisodeStats, WeightsRef, put_weights
from marl_arena.runners.resources import ActorRequest, cluster_resources, divide_resources, ensure_ray, node_cpus

logger = logging.getLogger(__name__)

TRAINER_DIR = "trainers"


@dataclasses.dataclass
class OpponentDraw(EpisodeDraw):
    """A trainer's policy mapping: per episode, a random seat for the learner and a drawn opponent."""

    learner: str
    distribution: dict[str, float]
    seats: tuple[Any, Any]
    seed: int

    def plan(self) -> dict[Any, str]:
        seat = int(self._rng.integers(2))
        opponent = sample_opponent(self.distribution, self._rng)
        return {self.seats[seat]: self.learner, self.seats[1 - seat]: opponent}


@dataclasses.dataclass
class SeatAssignment:
    """A policy mapping that seats the same player in each seat every episode."""

    players_by_seat: dict[Any, str]

    def __call__(self, agent_id: Any, episode: MultiAgentEpisode | None = None, **kwargs: Any) -> str:
        return self.players_by_seat[agent_id]


class League:
    """A two-seat league over a store directory; ``run(iterations)`` trains every trainable player.

    With ``LeagueConfig.sides`` its players are teams of two sides (``marl_arena.league.teams``):
    ``layout`` holds the sides, and each player's team and side come from the store.
    """

    def __init__(self, config: LeagueConfig):
        config.validate()
        self.config = config.copy()
        directory = pathlib.Path(self.config.store_path)
        self.layout: TeamLayout | None = self._team_layout()
        """The two sides of a team league; None in a two-seat league."""
        self.seats = self._seats() if self.layout is None else self.layout.names
        self._agent_spec_cache: dict[str | None, dict[Any, RLModuleSpec]] = {}
        self.store = LeagueStore(directory)
        self.store.verify_all_snapshots()  # before any write: a bad snapshot fails the start
        self.directory = directory
        self._rng = np.random.default_rng(self.config.seed)
        self._matchmaker = self.config.resolved_matchmaker()
        self._psro = self.config.psro_epochs()  # None unless matchmaking is "psro"
        self.meta_game: MetaGame | None = None
        """A PSRO league's meta-game over its pool, computed when the pool grows; None in other leagues."""
        if not self.store.players():
            self._create_roster()
        self.players = {p.id: p for p in self.store.players()}
        self._teams: dict[str, Team] = {}
        self._player_sides: dict[str, str | None] = {}
        for pid in self.players:
            self._load_team(pid)
        self.payoff = payoff_from_matches(self.players, self.store.matches())
        self.elo = {pid: INITIAL_ELO for pid in self.players} | self.store.latest_ratings()
        self.iteration = max((it for it, _ in self._all_metrics()), default=0)
        trainable = [pid for pid, p in self.players.items() if p.trainable]
        self._shares = self._divide_resources(trainable)
        self._sources: dict[str, Any] = {}  # snapshot id -> its weights (a WeightsRef on Ray), built once
        # Matches in the store newer than this that the league did not write are external (a person's games).
        self._seen_match_id, self._own_match_ids = self.store.last_match_id(), set()
        self.trainers: dict[str, Algorithm] = {pid: self._build_trainer(pid) for pid in trainable}
        self._pool = (concurrent.futures.ThreadPoolExecutor(len(self.trainers), thread_name_prefix="trainer")
                      if self.concurrent and len(self.trainers) > 1 else None)
        self._steps_at_snapshot = {pid: self.players[pid].step for pid in self.trainers}
        self._games_at_snapshot = {pid: self._games_played(pid) for pid in self.trainers}
        self._iteration_at_snapshot = {pid: self._snapshot_iteration(pid) for pid in self.trainers}
        self._record_game()
        if self._psro is not None:
            self._start_psro()

    # ------------------------------------------------------------------ set-up and resume
    def _seats(self) -> tuple[Any, Any]:
        env = make_env(self.config.env, self.config.env_config)
        try:
            seats = tuple(env.possible_agents)
        finally:
            env.close()
        if len(seats) != 2:
            raise ValueError(
                f"The league seats two players per game, but env {self.config.env!r} has {len(seats)} agents "
                f"{list(seats)}; use a two-player game (or fix its seats with opponents in env_config)."
            )
        return seats

    def _team_layout(self) -> TeamLayout | None:
        if self.config.team_sides is None:
            return None
        env = make_env(self.config.env, self.config.env_config)
        try:
            return TeamLayout.resolve(self.config.team_sides, env)
        finally:
            env.close()

    def _create_roster(self) -> None:
        """The roster's players; in a team league with asymmetric sides, the whole roster once per side
        (ids prefixed by the side: ``predators_main_0``), each a team whose members go into its metadata."""
        now = time.time()
        roster = [("main_agent", "main", self.config.main_agents),
                  ("main_exploiter", "main_exploiter", self.config.main_exploiters),
                  ("league_exploiter", "league_exploiter", self.config.league_exploiters)]
        for side in (self.layout.home_sides() if self.layout is not None else [None]):
            prefix_side = f"{side}_" if side is not None else ""
            for kind, prefix, count in roster:
                for index in range(count):
                    pid = f"{prefix_side}{prefix}_{index}"
                    self.store.add_player(PlayerInfo(pid, kind, created=now), metadata=self._team_metadata(pid, side))
            for name, module_class in self.config.scripted.items():
                pid = f"{prefix_side}{name}"
                self.store.add_player(PlayerInfo(pid, "scripted", created=now, frozen=True),
                                      metadata={"module_class": object_path(module_class),
                                                **self._team_metadata(pid, side)})

    def _team_metadata(self, pid: str, side: str | None) -> dict[str, Any]:
        """A team player's side and members for the store (nothing in a two-seat league)."""
        return {} if self.layout is None else self.layout.metadata(side, self.layout.team(pid, side))

    def _load_team(self, pid: str) -> None:
        """Player ``pid``'s side (from the store) and team (from the layout), in a team league."""
        if self.layout is None or self.players[pid].kind == "human":
            return
        side = self.store.player_metadata(pid).get("side")
        if side is not None and side not in self.layout.sides:
            raise StoreError(f"Player {pid!r} in {self.directory} plays side {side!r}, which the league's sides "
                             f"{list(self.layout.sides)} do not have.")
        self._player_sides[pid] = side
        self._teams[pid] = self.layout.team(pid, side)

    def _agent_specs(self, side: str | None) -> dict[Any, RLModuleSpec]:
        """For the trainer of ``side``'s players: the spec a module playing each agent is built with."""
        if side not in self._agent_spec_cache:
            self._agent_spec_cache[side] = agent_module_specs(self.config.trainer_for(side), self.config.env,
                                                              self.config.env_config)
        return self._agent_spec_cache[side]

    def _module_spec(self, module_id: str, agent: Any, side: str | None, scripted: str | None = None) -> RLModuleSpec:
        """The spec of a team module that plays ``agent`` for a player of ``side`` (``scripted``: a class path)."""
        base = self._agent_specs(side)[agent]
        return player_spec(base, "scripted" if scripted else "trained", {"module_class": scripted})

    def _team_specs(self, pid: str) -> dict[str, RLModuleSpec]:
        """The specs of player ``pid``'s own modules (not the fixed members')."""
        side, team = self._player_sides[pid], self._teams[pid]
        scripted = (self.store.player_metadata(pid)["module_class"] if self.players[pid].kind == "scripted" else None)
        return {module_id: self._module_spec(module_id, agent, side, scripted)
                for module_id, agent in self.layout.module_agents(team).items() if module_id in
                self.layout.trained_modules(team)}

    def _fixed_specs(self, side: str | None) -> dict[str, RLModuleSpec]:
        """Every fixed member's and neutral agent's module spec."""
        return {module_id: self._module_spec(module_id, agent, side, object_path(module_class))
                for module_id, (agent, module_class) in self.layout.fixed_modules().items()}

    def _meets(self, learner: str, pid: str) -> bool:
        """Whether ``learner`` may be matched with ``pid``: always, unless they are on the same one of
        two asymmetric sides."""
        if self.layout is None or self.layout.symmetric:
            return True
        return self._player_sides.get(learner) != self._player_sides.get(pid)

    def _probe_opponent(self, learner: str) -> str:
        """The team a trainer's policies start with for the other side, so every agent maps to a module
        when the trainer is built: the learner itself for symmetric sides, else the other side's first
        trainable or scripted player."""
        side = self._player_sides[learner]
        if side is None:
            return learner
        for pid, player in self.players.items():
            if self._player_sides.get(pid, side) != side and player.kind in ("main_agent", "main_exploiter",
                                                                             "league_exploiter", "scripted"):
                return pid
        raise ValueError(f"Side {side!r} of learner {learner!r} has no opponent: the other side has no players.")

    def _all_metrics(self):
        for pid in self.players:
            yield from self.store.metrics(pid)

    @property
    def _remote_runners(self) -> bool:
        trainer = self.config.trainer_config
        return trainer.num_env_runners > 0 or trainer.evaluation_num_env_runners > 0

    @property
    def concurrent(self) -> bool:
        """Whether the trainers' iterations run at the same time (see ``LeagueConfig.cluster``).

        By default only with Ray runners: trainers that sample in the driver would share
        torch's random stream from several threads, and a run would no longer repeat.
        """
        wanted = self.config.concurrent_trainers
        return self._remote_runners if wanted is None else wanted

    def _divide_resources(self, trainable: list[str]) -> dict[str, dict[str, float]]:
        """Each trainer's CPU and GPU shares, fitted to the Ray cluster together; logged in one line.

        Every trainer fitting its actors to the cluster as if alone leaves Ray queueing the
        ones that find no free CPU; here all of them are counted at once (a learner in the
        driver too: its CPUs are the cluster's) and scaled into fractions, or the build fails.
        """
        trainer = self.config.trainer_config
        uses_ray = (self.config.ray_address is not None or self._remote_runners or trainer.num_learners > 0)
        mode = "at the same time" if self.concurrent and len(trainable) > 1 else "in turn"
        if not uses_ray:
            logger.info("League: %d trainer(s) train %s, sampling and learning in the driver (no Ray).",
                        len(trainable), mode)
            return {}
        ensure_ray(self.config.ray_address)
        requests = []
        for pid in trainable:
            requests += [
                ActorRequest(pid, "env runner", trainer.num_env_runners, trainer.num_cpus_per_env_runner),
                ActorRequest(pid, "evaluation runner", trainer.evaluation_num_env_runners,
                             trainer.num_cpus_per_env_runner),
                ActorRequest(pid, "learner", trainer.num_learners, trainer.num_cpus_per_learner,
                             trainer.num_gpus_per_learner),
                ActorRequest(pid, "driver learner", int(trainer.num_learners == 0), trainer.num_cpus_per_learner),
            ]
        cpus, gpus = cluster_resources()
        plan = divide_resources(requests, cpus, gpus, node_cpus())
        (logger.warning if plan.scaled else logger.info)("League: trainers train %s; %s.", mode, plan.summary)
        return {pid: {"env_cpus": plan.cpus[pid, "env runner"] if trainer.num_env_runners
                      else plan.cpus[pid, "evaluation runner"],
                      "learner_cpus": plan.cpus[pid, "learner" if trainer.num_learners else "driver learner"],
                      "learner_gpus": plan.gpus[pid, "learner"] if trainer.num_learners else trainer.num_gpus_per_learner}
                for pid in trainable}

    def _build_trainer(self, learner: str) -> Algorithm:
        side = self._player_sides.get(learner)
        config = self.config.trainer_for(side).copy()
        config.environment(self.config.env, env_config=self.config.env_config)
        if learner in self._shares:
            share = self._shares[learner]
            config.env_runners(num_cpus_per_env_runner=share["env_cpus"])
            config.learners(num_cpus_per_learner=share["learner_cpus"], num_gpus_per_learner=share["learner_gpus"])
        config.env_runners(max_opponents_per_runner=self.config.max_opponents_per_runner)
        if self.layout is None:
            config.multi_agent(policies=[learner], policies_to_train=[learner],
                               policy_mapping_fn=OpponentDraw(learner, {learner: 1.0}, self.seats, self.config.seed))
            config.env_runners(record_moves=True)  # every match is stored with its moves, for replays
        else:
            self._team_policies(config, learner)
        config.debugging(seed=self.config.seed)
        algo = config.build_algo()
        try:
            first = algo.learner_group.module_ids_to_train[0]
            self._check_observation_layout(algo.module_spec.rl_module_specs[first].observation_space, side)
        except ValueError:  # StoreError, or a space the store cannot describe
            algo.stop()
            raise
        checkpoint = self.directory / TRAINER_DIR / learner
        if (checkpoint / METADATA).exists():
            algo.restore_from_path(str(checkpoint))
        for pid, player in self.players.items():
            if pid != learner and player.kind != "human" and self._meets(learner, pid):  # a person: from the dashboard
                self._add_opponent(algo, pid)
        return algo

    def _team_policies(self, config: Any, learner: str) -> None:
        """A team trainer's modules: the learner's own (trained), the fixed ones, and one opponent team,
        so that the probe of the env's agents at build time maps every agent to a module."""
        probe = self._probe_opponent(learner)
        policies = self._team_specs(learner) | self._fixed_specs(self._player_sides[learner])
        policies |= {m: spec for m, spec in self._team_specs(probe).items() if m not in policies}
        config.multi_agent(policies=policies, policies_to_train=self.layout.trained_modules(self._teams[learner]),
                           policy_mapping_fn=TeamDraw(learner, {probe: 1.0}, self.layout,
                                                      {pid: self._teams[pid] for pid in {learner, probe}},
                                                      dict(self._player_sides), self.config.seed))

    def _snapshot_iteration(self, learner: str) -> int:
        """The iteration at which ``learner``'s latest snapshot was frozen (0 if none): the last that had
        sampled no more env steps than the snapshot's step."""
        latest = self._latest_snapshot(learner)
        if latest is None:
            return 0
        step = self.players[latest].step
        return max((it for it, metrics in self.store.metrics(learner) if metrics["env_steps"] <= step), default=0)

    def _start_psro(self) -> None:
        """Freeze the untrained oracle as the pool's first member, or, resuming, recompute the meta-game."""
        (oracle,) = self.trainers
        if self._latest_snapshot(oracle) is None:
            self.freeze(oracle, self.players[oracle].step)  # updates the meta-game
        else:
            self._update_meta_game()

    def _update_meta_game(self) -> None:
        """A PSRO league's meta-game over its current pool, bound to the "psro" matchmaker until the next epoch."""
        pool = [pid for pid, p in self.players.items() if p.frozen and p.kind != "human"]
        self.meta_game = MetaGame(tuple(pool), self._pool_payoffs(pool, self._psro.meta_game_episodes))
        self._matchmaker = functools.partial(self.config.resolved_matchmaker(), meta_game=self.meta_game)

    def _record_game(self) -> None:
        """Write the env and the trainers' module spec into the store, so readers can rebuild players."""
        trainer = next(iter(self.trainers.values()))
        base = trainer.module_spec.rl_module_specs[trainer.learner_group.module_ids_to_train[0]]
        env = self.config.env if isinstance(self.config.env, str) else object_path(self.config.env)
        record = {"env": env, "env_config": self.config.env_config, "elo_k": self.config.elo_k}
        try:
            record["module_spec"] = spec_to_json(base)
            if self.layout is not None:
                record["teams"] = member_roles_json(self.layout) | {"module_specs": {
                    side: spec_to_json(self._first_member_spec(side)) for side in self.layout.names}}
            self.store.set_game(record)
        except (TypeError, ValueError) as error:  # an env config or model config that JSON cannot hold
            logger.warning("The store keeps no game record (%s): its players cannot be rebuilt outside "
                           "this league, e.g. to play against them in the dashboard.", error)

    def _check_observation_layout(self, observation_space: Any, side: str | None = None) -> None:
        """Refuse to resume a store whose players saw differently shaped observations.

        Weights of the same size load whatever order their inputs come in, so a change in
        the env's observation layout (OpenSpiel boards became HxWxC planes) would resume a
        league with silently scrambled players. Bounds may change; shapes and dtypes may not.
        Checked when the first trainer is built, before it restores any weights.
        """
        game = self.store.game() or {}
        if self.layout is not None:  # a side's own spec: sides may see differently
            game = game.get("teams", {}).get("module_specs", {}).get(side or self.layout.names[0], {})
            stored = game.get("observation_space")
        else:
            stored = game.get("module_spec", {}).get("observation_space")
        if stored is None:  # a new league, or one whose spaces JSON could not describe
            return
        space = space_to_json(observation_space)
        if _layout(stored) == _layout(space):
            return
        raise StoreError(
            f"The league in {self.directory} was trained on observations {_layout(stored)}, but "
            f"{self.config.env!r} now gives {_layout(space)}; its stored players would read them in "
            "the wrong layout. Start a new league directory (or run the version that wrote it)."
        )

    def _first_member_spec(self, side: str) -> RLModuleSpec:
        """The spec of the first trained member of ``side``'s teams (what the layout check compares)."""
        home = None if self.layout.symmetric else side
        team = self.layout.team("_", home)
        agent = self.layout.module_agents(team)[self.layout.trained_modules(team)[0]]
        return self._agent_specs(home)[agent]

    def _add_opponent(self, algo: Algorithm, pid: str) -> None:
        """Seat player ``pid``'s modules (its one module, or its team's own) in ``algo``'s runners, frozen.

        A frozen player's weights go to Ray's object store once for every trainer (``_sources``).
        Other trainable players start from fresh weights here; their current weights are
        sent before every iteration (``_refresh_trainable_opponents``).
        """
        specs = self._player_specs(algo, pid)
        for module_id, spec in specs.items():
            if module_id in algo.config.policies:
                continue  # already seated: the probe team a team trainer was built with
            if self.players[pid].trainable:
                weights = spec.build().state_dict()
            else:
                if module_id not in self._sources:
                    self._sources |= {m: self._distributable(w) for m, w in self._frozen_weights(pid, specs).items()}
                weights = self._sources[module_id]
            algo.add_module(module_id, weights, spec)

    def _player_specs(self, algo: Algorithm, pid: str) -> dict[str, RLModuleSpec]:
        """The specs of player ``pid``'s own modules as ``algo``'s runners seat them: one module with
        ``algo``'s trained spec (a scripted player's class), or a team's own modules."""
        if self.layout is not None:
            return self._team_specs(pid)
        base = algo.module_spec.rl_module_specs[algo.learner_group.module_ids_to_train[0]]
        return {pid: player_spec(base, self.players[pid].kind, self.store.player_metadata(pid))}

    def _frozen_weights(self, pid: str, specs: dict[str, RLModuleSpec]) -> dict[str, dict[str, Any]]:
        """A frozen player's weights by module id, where the league keeps them: a bot's own (built from
        ``specs``), a snapshot's in the store.

        Not from a runner: runners hold only the opponents they drew lately (``max_opponents_per_runner``).
        """
        if self.players[pid].kind == "scripted":
            return {module_id: spec.build().state_dict() for module_id, spec in specs.items()}
        return self._module_weights(pid, self.store.load_snapshot(self.store.player_snapshot(pid)))

    def _module_weights(self, pid: str, stored: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Player ``pid``'s weights by module id from what the store keeps (``_stored_weights``)."""
        if self.layout is None:
            return {pid: stored}
        return {pid + suffix: weights for suffix, weights in stored.items()}

    def _player_weights(self, pid: str) -> dict[str, dict[str, Any]]:
        """A trainable player's current weights by module id: its one module, or its team's trained ones."""
        modules = [pid] if self.layout is None else self.layout.trained_modules(self._teams[pid])
        return self.trainers[pid].learner_group.get_weights(modules)

    def _stored_weights(self, pid: str) -> dict[str, Any]:
        """What the store keeps of a trainable player's weights: its module's state dict, or a team's
        state dicts by module id without the player's prefix."""
        weights = self._player_weights(pid)
        if self.layout is None:
            return weights[pid]
        return {module_id[len(pid):]: state for module_id, state in weights.items()}

    def _distributable(self, weights: dict[str, Any]) -> Any:
        """Frozen weights as every trainer's runners will get them: put into Ray's object store
        once (runners fetch them when they build the module), or by value without Ray runners."""
        if not self._remote_runners:
            return weights
        return WeightsRef(put_weights(weights))

    # ------------------------------------------------------------------ training
    def run(self, iterations: int, callback: Callable[["League", dict[str, Any]], None] | None = None) -> None:
        """Train every trainable player for ``iterations`` iterations; ``callback`` sees each iteration."""
        for _ in range(iterations):
            self.iteration += 1
            summary = {"iteration": self.iteration, "players": self._run_iteration()}
            if callback is not None:
                callback(self, summary)

    def _run_iteration(self) -> dict[str, dict[str, Any]]:
        """Schedule every trainer, train them (at once when ``concurrent``), then record in trainer order.

        Opponent draws are made from the payoff table as it stands before the iteration, and
        matches, metrics and snapshots are written after it in the trainers' fixed order, so
        an iteration does the same whether its trainers ran at once or in turn.
        """
        self._refresh_trainable_opponents()
        distributions = {}
        for learner, algo in self.trainers.items():
            if self.layout is None:
                distributions[learner] = distribution = self._matchmaker(learner, list(self.players.values()),
                                                                         self.payoff)
                algo.set_policy_mapping_fn(OpponentDraw(learner, dict(distribution), self.seats,
                                                        int(self._rng.integers(2**31))))
            else:
                distributions[learner] = distribution = side_opponents(
                    self._matchmaker, learner, [p for p in self.players.values() if p.id in self._teams],
                    self.payoff, self._player_sides)
                teams = {pid: self._teams[pid] for pid in {learner, *distribution}}
                algo.set_policy_mapping_fn(TeamDraw(learner, dict(distribution), self.layout, teams,
                                                    dict(self._player_sides), int(self._rng.integers(2**31))))
        if self._pool is not None:
            futures = {pid: self._pool.submit(algo.train) for pid, algo in self.trainers.items()}
            results = {pid: future.result() for pid, future in futures.items()}
        else:
            results = {pid: algo.train() for pid, algo in self.trainers.items()}
        matches = {pid: [m for m in map(self._match, algo.last_episodes) if m is not None]
                   for pid, algo in self.trainers.items()}
        self._record([m for pid in self.trainers for m in matches[pid]])  # one transaction for the iteration
        players = {}
        for learner, algo in self.trainers.items():
            result = results[learner]
            steps = result["num_env_steps_sampled_lifetime"]
            self.store.record_metrics(learner, self.iteration, {
                "episode_return_mean": result["env_runners"]["episode_return_mean"],
                "env_steps": steps, "env_steps_per_s": result["env_steps_per_s"],
                **{f"learner/{k}": v for k, v in result["learners"].get(learner, {}).items()},
                # An async trainer's own counters (updates, staleness, dropped samples), where it has them.
                **{f"learner/all_modules/{k}": v for k, v in result["learners"].get(ALL_MODULES, {}).items()},
            })
            snapshot = self._maybe_snapshot(learner, algo, distributions[learner], steps)
            algo.save_to_path(str(self.directory / TRAINER_DIR / learner))  # after a snapshot's reset, which it keeps
            # The current weights in the store too, so that readers (the dashboard) can play the agent as it is now.
            self.store.save_latest_weights(learner, self._stored_weights(learner))
            players[learner] = {"matches": len(matches[learner]), "elo": self.elo[learner],
                                "opponents": distributions[learner], "snapshot": snapshot,
                                "episode_return_mean": result["env_runners"]["episode_return_mean"]}
        return players

    def _refresh_trainable_opponents(self) -> None:
        """Send every trainer's current weights to the runners of every other trainer."""
        if len(self.trainers) < 2:
            return
        current = {pid: self._player_weights(pid) for pid in self.trainers}
        if self._remote_runners:
            refs = {pid: put_weights(weights) for pid, weights in current.items()}  # once, for every runner
        for learner, algo in self.trainers.items():
            for pid in current:
                if pid != learner and self._meets(learner, pid):
                    weights = refs[pid] if self._remote_runners else current[pid]
                    algo.env_runner_group.foreach_runner("set_weights", weights)

    def _match(self, episode: EpisodeStats) -> MatchRecord | None:
        if self.layout is not None:
            return self._team_match(episode)
        if any(seat not in episode.agent_modules for seat in self.seats):
            return None  # a game in which one seat never appeared is not a match
        return MatchRecord(env=str(self.config.env), players=tuple(episode.agent_modules[s] for s in self.seats),
                           returns=tuple(episode.agent_returns[s] for s in self.seats), length=episode.length,
                           iteration=self.iteration, moves=self._moves(episode))

    def _team_match(self, episode: EpisodeStats) -> MatchRecord | None:
        """A team game as a match: the player of each side, each side's mean return, the side-0 score."""
        owners = {module_id: pid for pid, team in self._teams.items() for module_id in self.layout.trained_modules(team)}
        players = []
        for agents in self.layout.sides.values():
            played = [owners[episode.agent_modules[a]] for a in agents if episode.agent_modules.get(a) in owners]
            if not played:
                return None  # a game in which one side never appeared is not a match
            players.append(played[0])
        returns = self.layout.side_returns(episode.agent_returns)
        return MatchRecord(env=str(self.config.env), players=tuple(players), returns=returns, length=episode.length,
                           iteration=self.iteration, outcome=self.layout.score(returns))

    def _moves(self, episode: EpisodeStats) -> tuple[tuple[int, int], ...] | None:
        """The episode's moves as ``(seat index, action)``; None unless every action is one integer."""
        if not all(isinstance(action, (int, np.integer)) for _, action in episode.moves):
            return None
        return tuple((self.seats.index(agent), int(action)) for agent, action in episode.moves)

    def _record(self, matches: list[MatchRecord]) -> None:
        """Payoff and Elo for every match, then all of them into the store in one transaction.

        Matches others wrote since the last call (a person's games from the dashboard) are
        counted first, and Elo is re-anchored on the calibrated fit afterwards (``_recalibrate``).
        """
        self._read_external_matches()
        rated = [(match, self._rate(match)) for match in matches]
        self._own_match_ids.update(self.store.record_matches(rated))
        self._recalibrate()

    def _rate(self, match: MatchRecord) -> dict[str, float]:
        """Count ``match`` in the payoff table and online Elo; the new ratings (none for self-play)."""
        a, b = match.players
        if a == b:  # self-play games are played, stored, but not rated
            return {}
        for pid in (a, b):
            self.elo.setdefault(pid, INITIAL_ELO)
        self.payoff.record(a, b, match.score)
        self.elo[a], self.elo[b] = elo_update(self.elo[a], self.elo[b], match.score, self.config.elo_k)
        return {a: self.elo[a], b: self.elo[b]}

    def _read_external_matches(self) -> None:
        """Count the matches in the store that this league did not write (people's games, another writer's).

        The league remembers the newest match id it has read and the ids it wrote since;
        every other newer match is external. Reading starts where the store stood when the league was built.
        """
        external = self.store.matches_after(self._seen_match_id, skip=self._own_match_ids)
        # An external match with an id below one of ours committed before ours did (SQLite has one
        # writer at a time), so this read saw it: everything up to the newest id is now counted.
        self._seen_match_id = max([self._seen_match_id, *self._own_match_ids, *(i for i, _ in external)])
        self._own_match_ids = set()
        if not external:
            return
        known = {p.id: p for p in self.store.players()}
        for match_id, match in external:
            for pid in match.players:
                if pid not in self.players and pid in known:
                    self.players[pid] = known[pid]
            ratings = self._rate(match)
            if ratings:
                self.store.record_ratings(ratings, match_id)
        logger.info("counted %d match(es) written outside the league", len(external))

    def _recalibrate(self) -> None:
        """Re-anchor Elo on the calibrated rating: each player's Bradley-Terry rating, current version.

        Online Elo alone drifts away from what the results say: a learner that keeps
        improving keeps taking points from the frozen players it meets, and each snapshot
        enters at its parent's inflated rating. Once per record (an iteration), every rated
        player's Elo is set to the fit (warm-started from the last one, which the store
        keeps for readers); online updates move it again within the next iteration.
        """
        fit = RatingFit(self.players, self.store.versioned_results(), self.store.meta(FIT_KEY))
        changed = {pid: rating for pid, rating in fit.player_ratings().items()
                   if pid in self.players and abs(rating - self.elo.get(pid, INITIAL_ELO)) > 1e-6}
        self.elo.update(changed)
        self.store.set_meta(FIT_KEY, fit.ratings())
        if changed:
            self.store.record_ratings(changed, self.store.last_match_id() or None)

    def _maybe_snapshot(self, learner: str, algo: Algorithm, distribution: dict[str, float], steps: int) -> str | None:
        """Freeze ``learner`` when it beats the opponents it is matched with, or every N env steps.

        The win rate is weighted by the matchmaker's distribution, so easy opponents that
        are rarely drawn do not carry it over the threshold; it must also pass against the
        learner's latest snapshot when that is drawn; and it must rest on ``min_games`` games
        played since the last snapshot, so one strong stretch freezes once. In a PSRO league
        the end of an epoch freezes instead.
        """
        if self._psro is not None:
            if self._psro.over(self.iteration - self._iteration_at_snapshot[learner],
                               steps - self._steps_at_snapshot[learner]):
                return self.freeze(learner, steps)
            return None
        weights = {o: p for o, p in distribution.items() if o != learner and p > 0}
        games = self._games_played(learner) - self._games_at_snapshot[learner]
        win_rate = (sum(p * self.payoff.win_rate(learner, o, decayed=True) for o, p in weights.items())
                    / sum(weights.values())) if weights else 0.5
        # A pool full of old, easy snapshots keeps the mean high: the learner must also beat
        # its latest frozen self, when it plays it, so snapshots stop once it stops improving.
        latest = self._latest_snapshot(learner)
        if latest in weights:
            win_rate = min(win_rate, self.payoff.win_rate(learner, latest, decayed=True))
        by_rate = (self.config.snapshot_win_rate is not None and weights
                   and games >= self.config.snapshot_min_games and win_rate > self.config.snapshot_win_rate)
        by_steps = (self.config.snapshot_every_n_steps is not None
                    and steps - self._steps_at_snapshot[learner] >= self.config.snapshot_every_n_steps)
        if not (by_rate or by_steps):
            return None
        return self.freeze(learner, steps)

    def _latest_snapshot(self, learner: str) -> str | None:
        """The most recent snapshot frozen from ``learner``, if any."""
        own = [p for p in self.players.values() if p.kind == "snapshot" and p.parent == learner]
        return max(own, key=lambda p: (p.step, p.created)).id if own else None

    def _games_played(self, pid: str) -> int:
        """Rated games ``pid`` has played against anyone."""
        return sum(self.payoff.stats(pid, other).games for other in self.players if other != pid)

    def freeze(self, learner: str, steps: int) -> str:
        """Freeze ``learner``'s current weights (a team's: all its trained modules) into a new snapshot
        player, added to every trainer."""
        weights = self._stored_weights(learner)
        digest = self.store.save_snapshot(learner, weights)
        version = sum(p.parent == learner for p in self.players.values()) + 1
        snapshot = PlayerInfo(f"{learner}_v{version}", "snapshot", parent=learner, created=time.time(),
                              step=steps, frozen=True)
        side = self._player_sides.get(learner)
        self.store.add_player(snapshot, snapshot=digest, rating=self.elo[learner],  # starts at its parent's Elo
                              metadata=self._team_metadata(snapshot.id, side))
        self.players[snapshot.id] = snapshot
        self.payoff.add_player(snapshot.id)
        self.elo[snapshot.id] = self.elo[learner]
        self._load_team(snapshot.id)
        self._sources |= {m: self._distributable(w) for m, w in self._module_weights(snapshot.id, weights).items()}
        for pid, algo in self.trainers.items():
            if self._meets(pid, snapshot.id):
                self._add_opponent(algo, snapshot.id)
        self._steps_at_snapshot[learner] = steps
        self._games_at_snapshot[learner] = self._games_played(learner)
        self._iteration_at_snapshot[learner] = self.iteration
        logger.info("froze %s as %s after %d env steps", learner, snapshot.id, steps)
        if resets_on_snapshot(self.players[learner], self._rng):
            self._reset_weights(learner)
        if self._psro is not None:
            self._update_meta_game()
        return snapshot.id

    def _reset_weights(self, learner: str) -> None:
        """Restart ``learner`` as a new player: weights, optimizers, targets, replay and its runners' copy."""
        self.trainers[learner].reset_module(learner)

    def play_matches(self, a: str, b: str, episodes: int) -> list[MatchRecord]:
        """Rated games between any two players (frozen or not), seats alternating; recorded like any match.

        This is how bots that never train still meet each other (a rating ladder of fixed
        bots, the cycle of rock-, paper- and scissors-only players). In a team league the two
        teams alternate sides when the sides are symmetric, and each plays its own side otherwise.
        """
        for pid in (a, b):
            if pid not in self.players:
                raise ValueError(f"No player {pid!r} in this league; players: {sorted(self.players)}.")
            if self.players[pid].kind == "human":
                raise ValueError(f"Player {pid!r} is a person; people play from the dashboard, not in play_matches.")
        if not self._meets(a, b):
            raise ValueError(f"Players {a!r} and {b!r} both play side {self._player_sides[a]!r}; a team meets only "
                             "teams of the other side.")
        trainer = next(iter(self.trainers.values()))
        config = trainer.config.copy()
        specs, weights = {} if self.layout is None else self._fixed_specs(self._player_sides.get(a)), {}
        for pid in (a, b):
            for module_id, (spec, state) in self._module_copies(trainer, pid).items():
                specs[module_id], weights[module_id] = spec, state
        config.policies, config.policies_to_train = dict(specs), []
        runner = EnvRunner(config, MultiRLModuleSpec(specs))
        runner.set_weights(weights, 0)
        matches = []
        for seating, count in self._seatings(a, b, episodes):
            if count:
                runner.set_policy_mapping_fn(SeatAssignment(seating))
                played = runner.sample(num_episodes=count, explore=False).episodes
                matches += [m for m in map(self._match, played) if m is not None]
        runner.stop()
        self._record(matches)
        return matches

    def _seatings(self, a: str, b: str, episodes: int) -> list[tuple[dict[Any, str], int]]:
        """How ``play_matches`` seats ``a`` and ``b`` (agent -> module) and for how many episodes each way:
        half and half with ``a`` first, except for teams of asymmetric sides, who keep their own side."""
        if self.layout is None:
            return [(dict(zip(self.seats, (a, b))), episodes - episodes // 2),
                    (dict(zip(self.seats, (b, a))), episodes // 2)]

        def seating(first: str, second: str, first_side: str) -> dict[Any, str]:
            other = next(side for side in self.layout.names if side != first_side)
            return (self.layout.seat(first_side, self._teams[first]) | self.layout.seat(other, self._teams[second])
                    | self.layout.neutral_mapping())

        if not self.layout.symmetric:
            return [(seating(a, b, self._player_sides[a]), episodes)]
        side_0, side_1 = self.layout.names
        return [(seating(a, b, side_0), episodes - episodes // 2), (seating(a, b, side_1), episodes // 2)]

    def _module_copies(self, trainer: Algorithm, pid: str) -> dict[str, tuple[RLModuleSpec, dict[str, Any]]]:
        """Player ``pid``'s modules by id, each with its spec and current weights (frozen or not): its one
        module, or in a team league its team's own modules (not the fixed members')."""
        specs = self._player_specs(trainer, pid)
        weights = self._player_weights(pid) if pid in self.trainers else self._frozen_weights(pid, specs)
        return {module_id: (spec, weights[module_id]) for module_id, spec in specs.items()}

    # ------------------------------------------------------------------ reading
    def leaderboard(self, side: str | None = None) -> list[dict[str, Any]]:
        """Players by calibrated rating, with Elo and results (see ``leaderboard.leaderboard``).

        In a team league each row also names the player's side (None: either side) and
        members; ``side`` keeps the players of one side, the leaderboard that means something
        when sides are asymmetric (a predator is only ever rated against prey).
        """
        rows = leaderboard(self.players, self.store.versioned_results(), self.elo, self.store.meta(FIT_KEY))
        if self.layout is None:
            if side is not None:
                raise ValueError(f"leaderboard(side={side!r}): this league has no sides.")
            return rows
        if side is not None and side not in self.layout.sides:
            raise ValueError(f"leaderboard(side={side!r}): the league's sides are {list(self.layout.sides)}.")
        for row in rows:
            row["side"] = self._player_sides.get(row["player"])
            row["members"] = self._teams.get(row["player"], {})
        return [row for row in rows if side is None or row["side"] == side]

    def pool_mixture(self, meta_solver: str | Callable = "nash", players: list[str] | None = None, *,
                     episodes: int = 100, exact: bool = True) -> dict[str, float]:
        """The pool's mixture under a meta-solver (PSRO's meta-strategy): weights per player.

        ``players`` defaults to the PSRO pool in a PSRO league; elsewhere, to every player
        with a rated game or, in a league without any (pure self-play), to every player but
        people: the learners and their snapshots, and bots. The meta-game is, where the env
        can compute it (``exact_payoffs``: a small two-player zero-sum OpenSpiel game), each
        member's exact expected return against each; otherwise the empirical win rates,
        after ``episodes`` evaluation matches (``play_matches``, recorded like any) for every
        pair that never met. For an OpenSpiel game, ``marl_arena_envs.openspiel.pool_policy``
        turns the mixture into one OpenSpiel policy.
        """
        if self.layout is not None and not self.layout.symmetric:
            raise ValueError(f"pool_mixture solves one symmetric meta-game, but this league's sides "
                             f"{list(self.layout.names)} are asymmetric: each side would need its own mixture "
                             "(a two-population meta-game), which is not supported.")
        pool = list(players) if players else self._default_pool()
        unknown = [pid for pid in pool if pid not in self.players or self.players[pid].kind == "human"]
        if unknown:
            raise ValueError(f"Pool members {unknown} are not league players that play here; players: "
                             f"{sorted(p for p in self.players if self.players[p].kind != 'human')}.")
        if len(pool) == 1:
            return {pool[0]: 1.0}
        weights = get_meta_solver(meta_solver)(self._pool_payoffs(pool, episodes, exact))
        return {pid: float(w) for pid, w in zip(pool, weights)}

    def _pool_payoffs(self, pool: list[str], episodes: int, exact: bool = True) -> np.ndarray:
        """The meta-game of ``pool``: exact expected returns where the env offers them (and ``exact``),
        else win rates, after ``episodes`` evaluation matches for every pair that never met."""
        payoffs = self._exact_pool_payoffs(pool) if exact else None
        if payoffs is None:
            for i, a in enumerate(pool):
                for b in pool[i + 1:]:
                    if self.payoff.stats(a, b).games == 0:
                        self.play_matches(a, b, episodes)
            payoffs = self.payoff.win_rate_matrix(pool)
        return payoffs

    def _default_pool(self) -> list[str]:
        """A PSRO league's pool; else players with rated games or, in a league without any, all but people."""
        if self.meta_game is not None:
            return list(self.meta_game.players)
        played = [pid for pid in self.players if self._games_played(pid)]
        pool = played or [pid for pid, p in self.players.items() if p.kind != "human"]
        if not pool:
            raise ValueError("The league has no players to mix.")
        return pool

    def pool_modules(self, players: list[str]) -> dict[str, Any]:
        """Inference copies of ``players``' modules with their current weights (frozen or not), one a player."""
        if self.layout is not None:
            raise ValueError("pool_modules gives one module a player, but a team league's players are teams of "
                             "modules.")
        trainer = next(iter(self.trainers.values()))
        modules = {}
        for pid in players:
            spec, weights = self._module_copies(trainer, pid)[pid]
            module = spec.build()
            module.load_state_dict(weights)
            modules[pid] = module.eval()
        return modules

    def _exact_pool_payoffs(self, pool: list[str]) -> np.ndarray | None:
        """The env's exact payoff matrix of ``pool`` (``env.exact_payoffs``), if it offers one."""
        env = make_env(self.config.env, self.config.env_config)
        try:
            exact = getattr(env, "exact_payoffs", None)
            if exact is None:
                return None
            modules = self.pool_modules(pool)
            return exact([modules[pid] for pid in pool])
        finally:
            env.close()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for algo in self.trainers.values():
            algo.stop()
        self.store.close()


def _layout(space_json: Any) -> Any:
    """A space's JSON description without its bounds: the types, shapes and dtypes that weights depend on."""
    if isinstance(space_json, dict):
        return {key: _layout(value) for key, value in space_json.items() if key not in ("low", "high")}
    return list(space_json) if isinstance(space_json, tuple) else space_json
