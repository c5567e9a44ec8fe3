"""A league store's recorded games as offline episodes (``marl-arena league export``).

The store keeps each match's moves as ``(seat, action)``, not observations, so every game
is played again through the league's env to rebuild what each seat saw. Rows follow the
offline table (``marl_arena.offline.schema``): one per move, written by the same
``EpisodeWriter`` the runners use. A move's reward is everything its player received until
its next move or the end (in a turn-based game the reward of a move often arrives after the
opponent's reply), its ``new_obs`` the observation at that next move (at the end: the last
one the player saw), and the last move of each player is ``terminateds``.

A game whose env draws chance events (cards, dice) cannot be rebuilt from the moves alone:
each game is replayed under two env seeds, and if what a player saw differs between them
the export stops with an error that names the game, before any file is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from marl_arena.core.columns import Columns
from marl_arena.env.registry import make_env
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena.offline.writer import EpisodeWriter
from marl_arena.runners.observation_pipeline import ObservationPipeline

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    games: int
    """Games written."""
    rows: int
    """Rows written (moves)."""
    skipped_without_moves: int
    """Matches stored without their moves (before the store kept them, or non-integer actions)."""
    files: tuple[Path, ...]


@dataclasses.dataclass
class _Seat:
    """One player's moves in a replayed game, as rows of the offline table."""

    obs: list[np.ndarray] = dataclasses.field(default_factory=list)
    masks: list[np.ndarray] = dataclasses.field(default_factory=list)
    actions: list[int] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    last_obs: np.ndarray | None = None

    def segment(self) -> dict[str, np.ndarray]:
        n = len(self.actions)
        next_obs = self.obs[1:] + [self.last_obs if self.last_obs is not None else self.obs[-1]]
        segment = {Columns.OBS: np.stack(self.obs), Columns.NEXT_OBS: np.stack(next_obs),
                   Columns.ACTIONS: np.asarray(self.actions, dtype=np.int64),
                   Columns.REWARDS: np.asarray(self.rewards, dtype=np.float32),
                   Columns.TERMINATEDS: np.arange(n) == n - 1, Columns.TRUNCATEDS: np.zeros(n, dtype=bool)}
        if self.masks:
            segment[Columns.ACTION_MASK] = np.stack(self.masks)
        return segment


def export_league(directory: str | os.PathLike, out: str | os.PathLike, *, players: Iterable[str] | None = None,
                  module_id: str | None = None) -> ExportSummary:
    """Write the games of the league store in ``directory`` as Parquet episodes into ``out``.

    ``players``: export only the moves of these players (default: everyone's, people's
    included). ``module_id``: the module id every row gets (default: the player's id, so
    ``config.multi_agent`` can map each player's rows to a module of its own), e.g. the id of
    the league player that will be trained from the games.
    """
    store = LeagueStore(directory, read_only=True)
    try:
        game = store.game()
        if game is None:
            raise ValueError(f"The league store in {directory} has no game record (env and env_config), "
                             "so its games cannot be replayed; it was written by a league that could not store one.")
        matches = store.matches()
    finally:
        store.close()
    wanted = None if players is None else set(players)
    replayable = [m for m in matches if m.moves is not None]
    env, other = make_env(game["env"], game.get("env_config")), make_env(game["env"], game.get("env_config"))
    try:
        seats = tuple(env.possible_agents)
        pipelines = {agent: ObservationPipeline(env.observation_spaces[agent], None) for agent in seats}
        replays = []
        for number, match in enumerate(replayable):
            replay = _replay(env, match, seats, pipelines, seed=number)
            if not _same_observations(replay, _replay(other, match, seats, pipelines, seed=number + 1)):
                raise ValueError(f"Game {number} of {directory} plays differently under two env seeds: env "
                                 f"{game['env']!r} draws chance events that the stored moves do not hold, so "
                                 "its games cannot be rebuilt from them.")
            replays.append((match, replay))
    finally:
        env.close()
        other.close()
    writer = EpisodeWriter(out)
    rows = 0
    for number, (match, replay) in enumerate(replays):
        for seat, agent in enumerate(seats):
            player = match.players[seat]
            if (wanted is not None and player not in wanted) or not replay[agent].actions:
                continue
            writer.add_segment(number, agent, module_id or player, replay[agent].segment())
            rows += len(replay[agent].actions)
        writer.finish_episode(number)
    files = tuple(writer.flush())
    logger.info("exported %d games (%d rows) from %s to %s", len(replays), rows, directory, out)
    return ExportSummary(len(replays), rows, len(matches) - len(replayable), files)


def _replay(env: Any, match: MatchRecord, seats: tuple, pipelines: dict[Any, ObservationPipeline],
            seed: int) -> dict[Any, _Seat]:
    """Play ``match``'s moves in ``env``; every seat's rows. Raises if a move does not fit the game."""
    record = {agent: _Seat() for agent in seats}
    obs, _ = env.reset(seed=seed)
    seen = _processed(obs, pipelines)  # each observation through its pipeline once
    for number, (seat, action) in enumerate(match.moves):
        agent = seats[seat]
        if agent not in seen:
            raise ValueError(f"Move {number} of a stored {match.env} game is by seat {seat} ({agent!r}), but the "
                             f"env asks {sorted(map(str, seen))} to move: the moves do not fit the env.")
        row, mask = seen[agent]
        player = record[agent]
        player.obs.append(row)
        if mask is not None:
            player.masks.append(mask)
        player.actions.append(int(action))
        player.rewards.append(0.0)
        obs, rewards, terminateds, truncateds, _ = env.step({agent: int(action)})
        for rewarded, reward in rewards.items():
            if record[rewarded].rewards:
                record[rewarded].rewards[-1] += float(reward)
        seen = _processed(obs, pipelines)
        for agent_seen, (row, _) in seen.items():
            record[agent_seen].last_obs = row
        if terminateds.get("__all__") or truncateds.get("__all__"):
            break
    return record


def _processed(obs: dict, pipelines: dict[Any, ObservationPipeline]) -> dict[Any, tuple[np.ndarray, np.ndarray | None]]:
    """Each agent's observation as its module reads it, and its action mask (None without one)."""
    out = {}
    for agent, observation in obs.items():
        rows, masks = pipelines[agent].process([observation])
        out[agent] = (rows[0], None if masks is None else masks[0])
    return out


def _same_observations(first: dict[Any, _Seat], second: dict[Any, _Seat]) -> bool:
    return all(len(first[a].obs) == len(second[a].obs)
               and all(np.array_equal(x, y) for x, y in zip(first[a].obs, second[a].obs)) for a in first)
