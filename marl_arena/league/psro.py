"""PSRO in a league: the epoch rule and the meta-game that the "psro" matchmaker reads.

Policy-Space Response Oracles (Lanctot et al., 2017; OpenSpiel's ``psro_v2``) split into
an oracle, a meta-game and a meta-solver. In a League they are:

* the oracle: the league's one trainable player, trained by its Algorithm against
  opponents drawn from the current meta-strategy (its policy mapping, like any
  matchmaker's). It keeps its weights from one epoch to the next: a warm start, so an
  epoch's budget refines the last response rather than learning one from scratch;
* the epoch (``PSROEpochs``): after ``oracle_iterations`` trainer iterations or
  ``oracle_env_steps`` env steps the League freezes the oracle into a snapshot, which
  is the one policy the epoch adds to the pool. The epoch replaces the snapshot rule;
* the pool: every frozen player but people. It starts with the oracle's untrained
  network, frozen when the League is built (close to uniform play, as ``psro_v2`` starts
  from the uniform policy), plus any scripted bots of the roster;
* the meta-game (``MetaGame``): each pool member's payoff against each. The League
  computes it once per epoch, when the pool grows: exact expected returns where the env
  offers them (``exact_payoffs``: small two-player zero-sum OpenSpiel games), otherwise
  win rates after ``meta_game_episodes`` evaluation matches for each pair that never met;
* the meta-solver (``meta_solvers``): by name or callable, applied by the "psro"
  matchmaker (``matchmaking.psro_meta_strategy``), which stays a pure function of the
  players, the payoff table and the meta-game the League binds to it.

So the League owns what changes state (epochs, snapshots, evaluation matches) and the
matchmaker only reads; ``League.pool_mixture`` solves the same pool for evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_ORACLE_ITERATIONS = 10
"""Epoch length when neither ``oracle_iterations`` nor ``oracle_env_steps`` is given."""


@dataclasses.dataclass(frozen=True)
class PSROEpochs:
    """When an epoch ends and how the meta-game is filled when it cannot be computed exactly."""

    oracle_iterations: int | None = None
    """Trainer iterations per epoch; None when ``oracle_env_steps`` sets the epoch."""
    oracle_env_steps: int | None = None
    """Env steps the oracle samples per epoch (the epoch ends at the first iteration that reaches them)."""
    meta_game_episodes: int = 100
    """Evaluation matches per pair of pool members when the env offers no exact payoffs."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "PSROEpochs":
        """The epochs named in ``matchmaking("psro", ...)``'s options; ``oracle_iterations=10`` by default."""
        chosen = {name: options[name] for name in ("oracle_iterations", "oracle_env_steps") if name in options}
        if len(chosen) == 2 and None not in chosen.values():
            raise ValueError("matchmaking('psro') takes oracle_iterations or oracle_env_steps, not both: "
                             "one of them sets the epoch length.")
        if not chosen:
            chosen = {"oracle_iterations": DEFAULT_ORACLE_ITERATIONS}
        episodes = {"meta_game_episodes": options["meta_game_episodes"]} if "meta_game_episodes" in options else {}
        return cls(**chosen, **episodes)

    def __post_init__(self) -> None:
        for name in ("oracle_iterations", "oracle_env_steps", "meta_game_episodes"):
            value = getattr(self, name)
            if value is None and name != "meta_game_episodes":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"matchmaking('psro') {name}={value!r} is not allowed: it must be an integer >= 1.")
        if (self.oracle_iterations is None) == (self.oracle_env_steps is None):
            raise ValueError("PSROEpochs needs exactly one of oracle_iterations and oracle_env_steps.")

    def over(self, iterations: int, env_steps: int) -> bool:
        """Whether an epoch in which the oracle ran ``iterations`` iterations and ``env_steps`` steps is over."""
        if self.oracle_iterations is not None:
            return iterations >= self.oracle_iterations
        return env_steps >= self.oracle_env_steps


@dataclasses.dataclass(frozen=True)
class MetaGame:
    """The pool's payoff matrix: ``payoffs[i, j]`` is what ``players[i]`` gets against ``players[j]``."""

    players: tuple[str, ...]
    payoffs: np.ndarray

    def __post_init__(self) -> None:
        shape = np.shape(self.payoffs)
        if shape != (len(self.players), len(self.players)):
            raise ValueError(f"A meta-game of {len(self.players)} players needs a square payoff matrix of that size, "
                             f"got shape {shape}.")

    def restricted(self, pool: Sequence[str]) -> np.ndarray | None:
        """The payoffs among ``pool``, in its order; None when the meta-game lacks one of them."""
        index = {pid: i for i, pid in enumerate(self.players)}
        if any(pid not in index for pid in pool):
            return None
        rows = [index[pid] for pid in pool]
        return np.asarray(self.payoffs, dtype=float)[np.ix_(rows, rows)]
