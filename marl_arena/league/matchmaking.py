"""Matchmakers: who a learner plays next, as a probability distribution over opponents.

Every matchmaker is a pure function ``(learner, players, payoff) -> {opponent id: p}``;
drawing from it is a separate step (``sample_opponent``) with an explicit generator, so
the probabilities can be tested exactly and logged. Select one by name from
``MATCHMAKERS`` or pass any callable of that shape (``get_matchmaker``).

Win rates are the learner's against each candidate, from the payoff table's decayed
estimate by default (AlphaStar's choice: a learner's old losses should fade as it
improves). A candidate the table has not seen yet has played no games: win rate 0.5.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from marl_arena.league.meta_solvers import MetaSolver, get_meta_solver
from marl_arena.league.payoff import PayoffTable
from marl_arena.league.players import PlayerInfo
from marl_arena.league.psro import MetaGame

Distribution = dict[str, float]
Matchmaker = Callable[[str, Sequence[PlayerInfo], PayoffTable], Distribution]
Weighting = Callable[[np.ndarray], np.ndarray]

PFSP_WEIGHTINGS: dict[str, Weighting] = {
    "squared": lambda x: (1.0 - x) ** 2,
    "hard": lambda x: (1.0 - x) ** 2,
    "variance": lambda x: x * (1.0 - x),
    "linear": lambda x: 1.0 - x,
    "linear_capped": lambda x: np.minimum(0.5, 1.0 - x),
}
"""AlphaStar's PFSP weightings f(x) of the learner's win rate x against a candidate.

"squared" ("hard") focuses on the opponents the learner loses to; "variance" on those it
beats about half the time (a curriculum); "linear_capped" treats every opponent the
learner beats at most half the time alike.
"""


def pfsp_weights(win_rates: Sequence[float] | np.ndarray, weighting: str | Weighting = "squared") -> np.ndarray:
    """PFSP probabilities ``f(x) / sum f(x)``; uniform when all weights vanish (AlphaStar)."""
    if isinstance(weighting, str):
        if weighting not in PFSP_WEIGHTINGS:
            raise ValueError(f"Unknown PFSP weighting {weighting!r}; known: {', '.join(PFSP_WEIGHTINGS)}.")
        weighting = PFSP_WEIGHTINGS[weighting]
    rates = np.asarray(win_rates, dtype=float)
    weights = np.asarray(weighting(rates), dtype=float)
    total = weights.sum()
    if total < 1e-10:
        return np.full(len(rates), 1.0 / len(rates)) if len(rates) else weights
    return weights / total


def self_play(learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable) -> Distribution:
    """Latest against latest: the learner plays its own current version."""
    _by_id(players, learner)
    return {learner: 1.0}


def uniform_fsp(learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable) -> Distribution:
    """Fictitious self-play: uniform over past (frozen) players; self-play until there are any."""
    past = _past_players(learner, players)
    if not past:
        return self_play(learner, players, payoff)
    return _uniform(past)


def pfsp(
    learner: str,
    players: Sequence[PlayerInfo],
    payoff: PayoffTable,
    *,
    weighting: str | Weighting = "squared",
    decayed: bool = True,
) -> Distribution:
    """Prioritized fictitious self-play over past players; self-play until there are any."""
    past = _past_players(learner, players)
    if not past:
        return self_play(learner, players, payoff)
    return _pfsp_over(learner, past, payoff, weighting, decayed)


def alphastar_main_agent(
    learner: str,
    players: Sequence[PlayerInfo],
    payoff: PayoffTable,
    *,
    pfsp_share: float = 0.5,
    verification_share: float = 0.15,
    self_play_threshold: float = 0.3,
    exploiter_threshold: float = 0.3,
    forgetting_threshold: float = 0.7,
    decayed: bool = True,
) -> Distribution:
    """AlphaStar's main agent: 50% PFSP, 15% verification, 35% self-play.

    - PFSP ("squared") over all past players: keep beating the whole league.
    - Verification, against a main agent m drawn uniformly: if the learner wins less than
      ``exploiter_threshold`` against some snapshot of a main exploiter, PFSP over those
      snapshots (an exploit is still open); else if it has forgotten how to beat m's own
      snapshots (win rate under ``forgetting_threshold`` against one of them, ignoring the
      newest run of snapshots it beats less and less, which are just harder), PFSP over
      those; else the self-play branch.
    - Self-play branch, against a main agent m drawn uniformly (the learner itself when it
      is the only one): play m if the learner wins more than ``self_play_threshold``
      against it, otherwise a curriculum of m's snapshots by PFSP "variance".

    Without past players the PFSP share goes to the self-play branch.
    """
    if _by_id(players, learner).kind != "main_agent":
        raise ValueError(f"alphastar_main_agent needs a main agent as learner, got {learner!r}.")
    if not (pfsp_share >= 0 and verification_share >= 0 and pfsp_share + verification_share <= 1):
        raise ValueError(
            f"alphastar_main_agent shares must be non-negative and sum to at most 1, got "
            f"pfsp_share={pfsp_share!r}, verification_share={verification_share!r}."
        )
    mains = [p.id for p in players if p.kind == "main_agent"]
    snapshots = _snapshots_by_parent(players)
    exploiter_snapshots = [s for p in players if p.kind == "main_exploiter" for s in snapshots.get(p.id, [])]

    def rates(candidates: Sequence[str]) -> list[float]:
        return [_win_rate(payoff, learner, c, decayed) for c in candidates]

    def self_play_branch(main: str) -> Distribution:
        if _win_rate(payoff, learner, main, decayed) > self_play_threshold or not snapshots.get(main):
            return {main: 1.0}
        return _pfsp_over(learner, snapshots[main], payoff, "variance", decayed)

    def verification_branch(main: str) -> Distribution:
        if exploiter_snapshots and min(rates(exploiter_snapshots)) < exploiter_threshold:
            return _pfsp_over(learner, exploiter_snapshots, payoff, "squared", decayed)
        own = snapshots.get(main, [])
        kept = _drop_monotonic_suffix(own, rates(own))
        if kept and min(rates(kept)) < forgetting_threshold:
            return _pfsp_over(learner, kept, payoff, "squared", decayed)
        return self_play_branch(main)

    past = _past_players(learner, players)
    self_play_part = _mix([(1.0, self_play_branch(m)) for m in mains])
    pfsp_part = _pfsp_over(learner, past, payoff, "squared", decayed) if past else self_play_part
    verification_part = _mix([(1.0, verification_branch(m)) for m in mains])
    return _mix(
        [
            (pfsp_share, pfsp_part),
            (verification_share, verification_part),
            (1.0 - pfsp_share - verification_share, self_play_part),
        ]
    )


def alphastar_main_exploiter(
    learner: str,
    players: Sequence[PlayerInfo],
    payoff: PayoffTable,
    *,
    threshold: float = 0.1,
    decayed: bool = True,
) -> Distribution:
    """AlphaStar's main exploiter: find the weaknesses of the current main agents.

    Against a main agent drawn uniformly; when the exploiter wins no more than
    ``threshold`` against it, PFSP "variance" over that agent's snapshots instead, a
    curriculum of opponents it can learn from.
    """
    mains = [p.id for p in players if p.kind == "main_agent"]
    if not mains:
        raise ValueError("alphastar_main_exploiter needs at least one main agent in the league.")
    snapshots = _snapshots_by_parent(players)

    def against(main: str) -> Distribution:
        if _win_rate(payoff, learner, main, decayed) > threshold or not snapshots.get(main):
            return {main: 1.0}
        return _pfsp_over(learner, snapshots[main], payoff, "variance", decayed)

    return _mix([(1.0, against(m)) for m in mains])


def alphastar_league_exploiter(
    learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable, *, decayed: bool = True
) -> Distribution:
    """AlphaStar's league exploiter: PFSP "linear_capped" over every past player."""
    return pfsp(learner, players, payoff, weighting="linear_capped", decayed=decayed)


_ALPHASTAR_BY_KIND: dict[str, Matchmaker] = {
    "main_agent": alphastar_main_agent,
    "main_exploiter": alphastar_main_exploiter,
    "league_exploiter": alphastar_league_exploiter,
}


def alphastar(learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable) -> Distribution:
    """AlphaStar's matchmaking, chosen by the learner's kind (its three trainable kinds)."""
    kind = _by_id(players, learner).kind
    if kind not in _ALPHASTAR_BY_KIND:
        raise ValueError(
            f"AlphaStar matchmaking has no rule for {learner!r} of kind {kind!r}; "
            f"it matches {', '.join(_ALPHASTAR_BY_KIND)}."
        )
    return _ALPHASTAR_BY_KIND[kind](learner, players, payoff)


def psro_meta_strategy(
    learner: str,
    players: Sequence[PlayerInfo],
    payoff: PayoffTable,
    *,
    meta_solver: str | MetaSolver = "nash",
    meta_game: MetaGame | None = None,
) -> Distribution:
    """PSRO's opponents ("psro"): the meta-solver's mixture over the pool of frozen players.

    The meta-game is ``meta_game`` (the one a PSRO league computes once per epoch) when it
    covers the pool, else the payoff table's win rates among the pool's members. Self-play
    until the pool has a member.
    """
    pool = _past_players(learner, players)
    if not pool:
        return self_play(learner, players, payoff)
    payoffs = meta_game.restricted(pool) if meta_game is not None else None
    if payoffs is None:
        payoffs = payoff.win_rate_matrix(pool)
    weights = get_meta_solver(meta_solver)(payoffs)
    return {pid: float(w) for pid, w in zip(pool, weights)}


def _pfsp_variant(weighting: str) -> Matchmaker:
    def matchmaker(learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable) -> Distribution:
        return pfsp(learner, players, payoff, weighting=weighting)

    matchmaker.__name__ = f"pfsp_{weighting}"
    matchmaker.__doc__ = f'PFSP over past players with the "{weighting}" weighting.'
    return matchmaker


MATCHMAKERS: dict[str, Matchmaker] = {
    "self_play": self_play,
    "uniform": uniform_fsp,
    "pfsp": pfsp,
    **{f"pfsp_{name}": _pfsp_variant(name) for name in PFSP_WEIGHTINGS},
    "alphastar": alphastar,
    "psro": psro_meta_strategy,
}
"""Matchmakers by name; "pfsp" uses the "squared" weighting, "psro" the "nash" meta-solver."""


def get_matchmaker(matchmaker: str | Matchmaker) -> Matchmaker:
    """The matchmaker named ``matchmaker``, or ``matchmaker`` itself if it is callable."""
    if callable(matchmaker):
        return matchmaker
    if isinstance(matchmaker, str) and matchmaker in MATCHMAKERS:
        return MATCHMAKERS[matchmaker]
    raise ValueError(f"Unknown matchmaker {matchmaker!r}; known: {', '.join(MATCHMAKERS)}, or pass a callable.")


def sample_opponent(distribution: Mapping[str, float], rng: np.random.Generator) -> str:
    """Draw one opponent id from a matchmaker's distribution with ``rng``."""
    ids = list(distribution)
    probabilities = np.asarray([distribution[i] for i in ids], dtype=float)
    if not ids or np.any(probabilities < 0) or not np.isclose(probabilities.sum(), 1.0):
        raise ValueError(f"sample_opponent needs non-negative probabilities summing to 1, got {dict(distribution)!r}.")
    return ids[rng.choice(len(ids), p=probabilities / probabilities.sum())]


class EpisodeDraw:
    """Base of a league trainer's policy mapping: a plan (agent id -> module id) drawn per episode.

    The plan is drawn when an episode's first agent is mapped and dropped once every agent
    in it has been, so all agents of one episode see the same draw. Subclasses are picklable
    dataclasses with a ``seed`` field (they travel to Ray runners) and say what a plan is
    (``plan``); each runner draws from its own copy (``for_env_runner``), so runners do not
    replay one sequence of opponents.
    """

    seed: int

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._plans: dict[Any, tuple[dict[Any, str], list[int]]] = {}

    def plan(self) -> dict[Any, str]:
        """One episode's agent -> module mapping, drawn now with ``self._rng``."""
        raise NotImplementedError

    def for_env_runner(self, worker_index: int) -> "EpisodeDraw":
        """This draw for env runner ``worker_index``: the same distribution, a random stream of its own.

        Runner 0 samples in the driver, alone, and keeps the draw's own seed.
        """
        if worker_index == 0:
            return dataclasses.replace(self)
        seed = int(np.random.SeedSequence([self.seed, worker_index]).generate_state(1)[0])
        return dataclasses.replace(self, seed=seed)

    def __call__(self, agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
        key = episode.id_ if episode is not None else -1
        if key not in self._plans:
            self._plans[key] = (self.plan(), [0])
        plan, mapped = self._plans[key]
        mapped[0] += 1
        if mapped[0] == len(plan):
            del self._plans[key]
        return plan[agent_id]


def _by_id(players: Sequence[PlayerInfo], player: str) -> PlayerInfo:
    for info in players:
        if info.id == player:
            return info
    raise ValueError(f"Player {player!r} is not among the league's {len(players)} players.")


def _past_players(learner: str, players: Sequence[PlayerInfo]) -> list[str]:
    """Frozen opponents a matchmaker may draw: snapshots and scripted bots, never a human."""
    _by_id(players, learner)
    return [p.id for p in players if p.frozen and p.kind != "human" and p.id != learner]


def _snapshots_by_parent(players: Sequence[PlayerInfo]) -> dict[str, list[str]]:
    """Each parent's snapshots, oldest first."""
    snapshots = [p for p in players if p.kind == "snapshot" and p.parent is not None]
    ordered = sorted(snapshots, key=lambda p: (p.created, p.step))
    lineage: dict[str, list[str]] = {}
    for snapshot in ordered:
        lineage.setdefault(snapshot.parent, []).append(snapshot.id)
    return lineage


def _win_rate(payoff: PayoffTable, learner: str, opponent: str, decayed: bool) -> float:
    if learner not in payoff or opponent not in payoff:
        return 0.5
    return payoff.win_rate(learner, opponent, decayed=decayed)


def _pfsp_over(
    learner: str, candidates: Sequence[str], payoff: PayoffTable, weighting: str | Weighting, decayed: bool
) -> Distribution:
    weights = pfsp_weights([_win_rate(payoff, learner, c, decayed) for c in candidates], weighting)
    return dict(zip(candidates, map(float, weights)))


def _uniform(candidates: Sequence[str]) -> Distribution:
    return {c: 1.0 / len(candidates) for c in candidates}


def _mix(parts: Sequence[tuple[float, Distribution]]) -> Distribution:
    """``sum_k w_k * d_k``, normalised by ``sum_k w_k``; ids in first-seen order."""
    total = sum(weight for weight, _ in parts)
    mixed: Distribution = {}
    for weight, distribution in parts:
        for player, p in distribution.items():
            mixed[player] = mixed.get(player, 0.0) + weight * p / total
    return mixed


def _drop_monotonic_suffix(snapshots: Sequence[str], win_rates: Sequence[float]) -> list[str]:
    """Drop the newest snapshots while the learner's win rate falls from one to the next.

    AlphaStar's rule for the forgetting check: that a learner beats newer snapshots of an
    improving player less often is expected; only losing to an older one after beating a
    newer one is forgetting. Returns the snapshots up to the last rise in win rate.
    """
    for i in range(len(win_rates) - 1, 0, -1):
        if win_rates[i - 1] < win_rates[i]:
            return list(snapshots[: i + 1])
    return []
