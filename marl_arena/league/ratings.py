"""Ratings on the Elo scale: online Elo per game, and a Bradley–Terry fit of the whole table.

Online Elo is cheap and follows a learning player as it improves, but depends on the order
of games. The Bradley–Terry fit uses every game at once and gives each rating a confidence
interval, which is what a dashboard or a snapshot rule should compare.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from marl_arena.league.payoff import PayoffTable

ELO_SCALE = 400.0 / math.log(10.0)
"""Elo points per unit of logistic strength: P(a beats b) = sigmoid((ra - rb) / ELO_SCALE)."""


def elo_expected(rating_a: float, rating_b: float) -> float:
    """Expected score of ``a`` against ``b``: ``1 / (1 + 10 ** ((rb - ra) / 400))``."""
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))


def elo_update(rating_a: float, rating_b: float, score: float, k: float = 32.0) -> tuple[float, float]:
    """New ratings of ``a`` and ``b`` after one game; ``score`` is a's (1 win, 0.5 draw, 0 loss)."""
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"An Elo score must be in [0, 1] (1 win, 0.5 draw, 0 loss), got {score!r}.")
    delta = k * (score - elo_expected(rating_a, rating_b))
    return rating_a + delta, rating_b - delta


def elo_ratings(
    results: Iterable[tuple[str, str, float]],
    *,
    k: float = 32.0,
    initial: float = 1500.0,
    ratings: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Online Elo over ``(a, b, a's score)`` results in order, starting from ``ratings``.

    Players not rated yet start at ``initial``. The input mapping is not modified.
    """
    current = dict(ratings or {})
    for a, b, score in results:
        current[a], current[b] = elo_update(current.get(a, initial), current.get(b, initial), score, k)
    return current


@dataclass(frozen=True, eq=False)
class BradleyTerryFit:
    """Bradley–Terry ratings on the Elo scale, with standard errors and confidence intervals."""

    players: tuple[str, ...]
    ratings: np.ndarray
    """Elo-scale ratings, in the order of ``players``."""
    stderr: np.ndarray
    """Standard error of each rating relative to the anchor (0 for an anchor player)."""
    confidence: float
    """Coverage of the intervals ``lower``..``upper``."""

    @property
    def lower(self) -> np.ndarray:
        return self.ratings - _z(self.confidence) * self.stderr

    @property
    def upper(self) -> np.ndarray:
        return self.ratings + _z(self.confidence) * self.stderr

    def rating(self, player: str) -> float:
        return float(self.ratings[self._position(player)])

    def interval(self, player: str) -> tuple[float, float]:
        i = self._position(player)
        return float(self.lower[i]), float(self.upper[i])

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.players, map(float, self.ratings)))

    def _position(self, player: str) -> int:
        try:
            return self.players.index(player)
        except ValueError:
            raise ValueError(f"Player {player!r} is not in this Bradley–Terry fit.") from None


def bradley_terry(
    payoff: PayoffTable,
    players: Sequence[str] | None = None,
    *,
    anchor: str | None = None,
    anchor_rating: float = 1500.0,
    prior_sd: float = 1000.0,
    confidence: float = 0.95,
    decayed: bool = False,
    tol: float = 1e-10,
    max_iter: int = 100,
    initial: Mapping[str, float] | None = None,
) -> BradleyTerryFit:
    """Maximum a-posteriori Bradley–Terry ratings of ``players`` (default: all) from ``payoff``.

    Model: ``P(i beats j) = sigmoid(b_i - b_j)``, a draw counting as half a win for each
    side; ratings are ``b * 400 / ln 10``, so rating gaps read as Elo gaps.

    Regularisation: each ``b_i`` has a weak Gaussian prior ``N(0, prior_sd)`` (in Elo
    points). Without it a player who won every game has no finite maximum likelihood and
    one who never played has none at all; with it the first gets a large but finite rating
    and a wide interval, the second sits at the pool's centre with an interval of about
    ``prior_sd``. With tens of games per player its pull is a few Elo at most.

    Anchoring: the ratings are shifted so that their mean is ``anchor_rating``, or, if
    ``anchor`` names a player, so that that player has ``anchor_rating`` (and stderr 0).
    Intervals are Wald intervals from the observed information (the Hessian of the log
    posterior at the optimum), for the anchored ratings.

    The optimum is found by Newton's method with step halving; the log posterior is
    strictly concave, so it converges from zero in a handful of steps. ``initial`` (ratings
    of an earlier fit, any anchoring) warm-starts it: after a few more games the optimum has
    barely moved, and one or two Newton steps reach it. Players it lacks start at its mean.
    """
    ids = tuple(payoff.players if players is None else players)
    if not ids:
        raise ValueError("bradley_terry needs at least one player.")
    return bradley_terry_matrices(ids, payoff.score_matrix(ids, decayed=decayed),
                                  payoff.games_matrix(ids, decayed=decayed), anchor=anchor,
                                  anchor_rating=anchor_rating, prior_sd=prior_sd, confidence=confidence, tol=tol,
                                  max_iter=max_iter, initial=initial)


def bradley_terry_matrices(
    players: Sequence[str],
    scores: np.ndarray,
    games: np.ndarray,
    *,
    anchor: str | None = None,
    anchor_rating: float = 1500.0,
    prior_sd: float = 1000.0,
    confidence: float = 0.95,
    tol: float = 1e-10,
    max_iter: int = 100,
    initial: Mapping[str, float] | None = None,
) -> BradleyTerryFit:
    """``bradley_terry`` from ``scores[i, j]`` (i's wins plus half its draws against j) and ``games[i, j]``.

    For callers that count results themselves (a store's summary table) rather than in a
    ``PayoffTable``.
    """
    ids = tuple(players)
    if not ids:
        raise ValueError("bradley_terry needs at least one player.")
    if anchor is not None and anchor not in ids:
        raise ValueError(f"Anchor player {anchor!r} is not among the players being rated.")
    if not prior_sd > 0:
        raise ValueError(f"bradley_terry prior_sd must be positive (Elo points), got {prior_sd!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bradley_terry confidence must be in (0, 1), got {confidence!r}.")
    precision = (ELO_SCALE / prior_sd) ** 2

    strengths = np.zeros(len(ids))
    if initial:
        centre = float(np.mean(list(initial.values())))
        strengths = np.array([(initial.get(pid, centre) - centre) / ELO_SCALE for pid in ids])
    objective = _log_posterior(strengths, scores, games, precision)
    for _ in range(max_iter):
        gradient, hessian = _gradient_hessian(strengths, scores, games, precision)
        step = np.linalg.solve(-hessian, gradient)
        size = 1.0
        while True:
            candidate = strengths + size * step
            candidate_objective = _log_posterior(candidate, scores, games, precision)
            if candidate_objective >= objective or size < 1e-8:
                break
            size /= 2.0
        strengths, objective = candidate, candidate_objective
        if np.max(np.abs(size * step)) < tol:
            break

    _, hessian = _gradient_hessian(strengths, scores, games, precision)
    covariance = np.linalg.inv(-hessian)
    # Anchored ratings are a linear map of the strengths; propagate the covariance through it.
    # Var(b_i - c) = C_ii - 2 Cov(b_i, c) + Var(c), c the anchor's strength or the mean of all.
    if anchor is None:
        anchored = strengths - strengths.mean()
        cross = covariance.mean(axis=1)
        variance = np.diag(covariance) - 2.0 * cross + cross.mean()
    else:
        a = ids.index(anchor)
        anchored = strengths - strengths[a]
        variance = np.diag(covariance) - 2.0 * covariance[:, a] + covariance[a, a]
    return BradleyTerryFit(
        players=ids,
        ratings=anchor_rating + ELO_SCALE * anchored,
        stderr=ELO_SCALE * np.sqrt(np.clip(variance, 0.0, None)),
        confidence=confidence,
    )


def calibration(
    payoff: PayoffTable, ratings: Mapping[str, float], *, min_games: int = 100
) -> list[dict[str, float | str | int]]:
    """Predicted against observed win rates for every pair of rated players with ``min_games`` games.

    The prediction is ``elo_expected`` of the two ratings; the observed rate counts draws
    half. A rating system is calibrated where ``error`` (predicted minus observed) is small.
    """
    rows = []
    ids = [pid for pid in payoff.players if pid in ratings]
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            games = payoff.stats(a, b).games
            if games >= min_games:
                observed = payoff.win_rate(a, b)
                predicted = elo_expected(ratings[a], ratings[b])
                rows.append({"a": a, "b": b, "games": games, "observed": observed, "predicted": predicted,
                             "error": predicted - observed})
    return rows


def _log_posterior(strengths: np.ndarray, scores: np.ndarray, games: np.ndarray, precision: float) -> float:
    """Sum over ordered pairs of ``S_ij log sigmoid(b_i - b_j)`` minus the Gaussian prior."""
    gaps = strengths[:, None] - strengths[None, :]
    return float(-(scores * np.logaddexp(0.0, -gaps)).sum() - 0.5 * precision * strengths @ strengths)


def _gradient_hessian(
    strengths: np.ndarray, scores: np.ndarray, games: np.ndarray, precision: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``sum_j S_ij - N_ij p_ij`` and Hessian of the log posterior."""
    gaps = strengths[:, None] - strengths[None, :]
    p = 0.5 * (1.0 + np.tanh(0.5 * gaps))  # sigmoid without overflow
    gradient = (scores - games * p).sum(axis=1) - precision * strengths
    information = games * p * (1.0 - p)
    hessian = information - np.diag(information.sum(axis=1)) - precision * np.eye(len(strengths))
    return gradient, hessian


def _z(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence``."""
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)
