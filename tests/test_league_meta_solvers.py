"""Meta-solvers on small meta-games with known answers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from marl_arena.league import (
    META_SOLVERS,
    PayoffTable,
    alpharank_mixture,
    get_meta_solver,
    nash_mixture,
    uniform_mixture,
)

ROCK_PAPER_SCISSORS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])

# Win rates of rock, paper, scissors and a weak rock that does worse than rock against everyone.
WITH_WEAK_ROCK = np.array(
    [
        [0.5, 0.0, 1.0, 0.7],
        [1.0, 0.5, 0.0, 1.0],
        [0.0, 1.0, 0.5, 0.2],
        [0.3, 0.0, 0.8, 0.5],
    ]
)

# Player 0 beats everyone; 1 and 2 play rock-paper-scissors-like between themselves.
DOMINANT_FIRST = np.array([[0.5, 0.9, 0.8], [0.1, 0.5, 0.3], [0.2, 0.7, 0.5]])

NO_SCIPY = importlib.util.find_spec("scipy") is None
NASH_METHODS = ["regret_matching", pytest.param("lp", marks=pytest.mark.skipif(NO_SCIPY, reason="the LP needs scipy"))]


def test_uniform():
    np.testing.assert_allclose(uniform_mixture(np.zeros((4, 4))), [0.25] * 4)


@pytest.mark.parametrize("method", NASH_METHODS)
def test_nash_of_rock_paper_scissors_is_uniform(method):
    np.testing.assert_allclose(nash_mixture(ROCK_PAPER_SCISSORS, method=method), [1 / 3] * 3, atol=1e-6)
    np.testing.assert_allclose(nash_mixture(ROCK_PAPER_SCISSORS + 0.5, method=method), [1 / 3] * 3, atol=1e-6)


@pytest.mark.parametrize("method", NASH_METHODS)
def test_nash_gives_no_weight_to_a_dominated_strategy(method):
    mixture = nash_mixture(WITH_WEAK_ROCK, method=method)
    np.testing.assert_allclose(mixture, [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-5)
    np.testing.assert_allclose(nash_mixture(DOMINANT_FIRST, method=method), [1.0, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("method", NASH_METHODS)
def test_nash_of_a_random_game_is_unexploitable(method):
    rng = np.random.default_rng(0)
    upper = np.triu(rng.normal(size=(6, 6)), 1)
    game = upper - upper.T  # symmetric zero-sum: value 0
    mixture = nash_mixture(game, method=method)
    assert mixture.sum() == pytest.approx(1.0) and np.all(mixture >= 0)
    assert np.min(mixture @ game) >= -1e-6  # no pure strategy beats it


def test_nash_from_a_payoff_table():
    table = PayoffTable(players=["rock", "paper", "scissors"])
    for winner, loser in [("rock", "scissors"), ("scissors", "paper"), ("paper", "rock")]:
        for _ in range(3):
            table.record(winner, loser, 1.0)
    np.testing.assert_allclose(nash_mixture(table.win_rate_matrix()), [1 / 3] * 3, atol=1e-6)


def test_nash_refuses_a_general_sum_matrix_and_unknown_methods():
    with pytest.raises(ValueError, match="constant-sum"):
        nash_mixture(np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="auto, lp, regret_matching"):
        nash_mixture(ROCK_PAPER_SCISSORS, method="simplex")


def test_alpharank_favours_the_dominant_strategy():
    pytest.importorskip("open_spiel")
    mixture = alpharank_mixture(DOMINANT_FIRST)
    assert mixture.sum() == pytest.approx(1.0) and np.all(mixture >= 0)
    assert mixture[0] > 0.9 and mixture[0] == mixture.max()


def test_alpharank_of_rock_paper_scissors_is_uniform():
    pytest.importorskip("open_spiel")
    np.testing.assert_allclose(alpharank_mixture(ROCK_PAPER_SCISSORS), [1 / 3] * 3, atol=1e-9)
    np.testing.assert_allclose(alpharank_mixture(np.zeros((1, 1))), [1.0])


@pytest.mark.parametrize("name", list(META_SOLVERS))
def test_every_solver_returns_a_distribution_over_the_pool(name):
    if name == "alpharank":
        pytest.importorskip("open_spiel")
    mixture = get_meta_solver(name)(WITH_WEAK_ROCK)
    assert mixture.shape == (4,) and mixture.sum() == pytest.approx(1.0) and np.all(mixture >= 0)


def test_solvers_by_name_or_callable():
    assert get_meta_solver("nash") is nash_mixture
    assert get_meta_solver("uniform") is uniform_mixture

    def first(payoffs):
        return np.eye(len(payoffs))[0]

    assert get_meta_solver(first) is first
    with pytest.raises(ValueError, match="Unknown meta-solver 'prd'; known: uniform, nash, alpharank"):
        get_meta_solver("prd")


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros((0, 0)), np.array([[0.0, np.nan], [np.nan, 0.0]])])
def test_solvers_refuse_bad_matrices(bad):
    with pytest.raises(ValueError, match="meta-solver needs"):
        uniform_mixture(bad)
