"""Payoff table arithmetic, Elo against hand-computed numbers, Bradley–Terry recovery, cycles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from marl_arena.league import (
    PayoffTable,
    beats_graph,
    bradley_terry,
    elo_expected,
    elo_ratings,
    elo_update,
    strategic_cycles,
)

WIN, DRAW, LOSS = 1.0, 0.5, 0.0


def table_from(results, decay=0.99, players=()):
    table = PayoffTable(decay=decay, players=players)
    for a, b, score in results:
        table.record(a, b, score)
    return table


# -- payoff table ---------------------------------------------------------------------------


def test_record_is_symmetric_and_draws_count_half():
    table = table_from([("a", "b", WIN), ("a", "b", DRAW), ("b", "a", WIN), ("a", "b", WIN)])
    assert table.stats("a", "b") == (2, 1, 1)
    assert table.stats("b", "a") == (1, 1, 2)
    assert table.stats("a", "b").games == 4
    assert table.win_rate("a", "b") == pytest.approx(2.5 / 4)
    assert table.win_rate("b", "a") == pytest.approx(1.5 / 4)


def test_players_can_join_any_time_and_start_even():
    table = table_from([("a", "b", WIN)])
    table.add_player("c")
    table.add_player("a")  # known: no change
    assert table.players == ("a", "b", "c")
    assert table.win_rate("a", "c") == 0.5
    assert table.win_rate("c", "c") == 0.5
    table.record("c", "d", LOSS)
    assert table.players == ("a", "b", "c", "d")


def test_decayed_win_rate_weights_recent_games_more():
    # decay 0.5; win, loss, loss: wins 1 -> .5 -> .25, games 1 -> 1.5 -> 1.75
    table = table_from([("a", "b", WIN), ("a", "b", LOSS), ("a", "b", LOSS)], decay=0.5)
    assert table.win_rate("a", "b") == pytest.approx(1 / 3)
    assert table.win_rate("a", "b", decayed=True) == pytest.approx(0.25 / 1.75)
    assert table.win_rate("b", "a", decayed=True) == pytest.approx(1.5 / 1.75)


def test_decayed_draws_count_half():
    # decay 0.5; draw then win: wins 1, draws .5, games 1.5 -> (1 + .25) / 1.5
    table = table_from([("a", "b", DRAW), ("a", "b", WIN)], decay=0.5)
    assert table.win_rate("a", "b", decayed=True) == pytest.approx(1.25 / 1.5)
    assert table.win_rate("b", "a", decayed=True) == pytest.approx(0.25 / 1.5)


def test_decay_one_is_the_exact_win_rate():
    rng = np.random.default_rng(0)
    table = table_from([("a", "b", float(s)) for s in rng.choice([0.0, 0.5, 1.0], size=50)], decay=1.0)
    assert table.win_rate("a", "b", decayed=True) == pytest.approx(table.win_rate("a", "b"))


def test_matrices_are_consistent():
    results = [("a", "b", WIN), ("b", "c", DRAW), ("c", "a", WIN), ("c", "a", LOSS)]
    table = table_from(results, players=["a", "b", "c", "d"])
    rates = table.win_rate_matrix()
    np.testing.assert_allclose(rates + rates.T, np.ones((4, 4)))
    np.testing.assert_allclose(np.diag(rates), 0.5)
    games = table.games_matrix()
    np.testing.assert_array_equal(games, games.T)
    assert games[0, 2] == 2 and games[3].sum() == 0
    np.testing.assert_allclose(table.score_matrix() + table.score_matrix().T, games)
    assert table.win_rate_matrix(["c", "a"])[0, 1] == pytest.approx(0.5)


def test_state_round_trips_through_json():
    table = table_from([("a", "b", WIN), ("b", "c", DRAW), ("c", "a", WIN), ("a", "b", LOSS)], decay=0.7, players=["z"])
    restored = PayoffTable.from_state(json.loads(json.dumps(table.state())))
    assert restored.players == table.players and restored.decay == 0.7
    for decayed in (False, True):
        np.testing.assert_allclose(restored.win_rate_matrix(decayed=decayed), table.win_rate_matrix(decayed=decayed))
    restored.record("a", "b", WIN)
    table.record("a", "b", WIN)
    assert restored.win_rate("a", "b", decayed=True) == pytest.approx(table.win_rate("a", "b", decayed=True))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: t.record("a", "a", WIN), "against itself"),
        (lambda t: t.record("a", "b", 2.0), "score"),
        (lambda t: t.win_rate("a", "nobody"), "Unknown player 'nobody'"),
        (lambda t: PayoffTable(decay=0.0), "decay"),
    ],
)
def test_bad_input_is_refused_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call(table_from([("a", "b", WIN)]))


# -- Elo ------------------------------------------------------------------------------------


def test_elo_expected_score():
    assert elo_expected(1500, 1500) == 0.5
    assert elo_expected(1600, 1400) == pytest.approx(1 / (1 + 10 ** -0.5))  # 0.759747
    assert elo_expected(1400, 1600) == pytest.approx(1 - 0.7597469)


def test_elo_update_hand_computed():
    assert elo_update(1500, 1500, WIN, k=32) == pytest.approx((1516.0, 1484.0))
    # 1600 vs 1400 draw: 32 * (0.5 - 0.7597469) = -8.3119
    assert elo_update(1600, 1400, DRAW, k=32) == pytest.approx((1591.6881, 1408.3119), abs=1e-4)
    # upset with K=16: 16 * (1 - 0.2402531) = 12.1560
    assert elo_update(1400, 1600, WIN, k=16) == pytest.approx((1412.1560, 1587.8440), abs=1e-4)
    with pytest.raises(ValueError, match="score"):
        elo_update(1500, 1500, 1.5)


def test_elo_ratings_replays_results_in_order():
    start = {"a": 1600.0}
    ratings = elo_ratings([("a", "b", WIN), ("b", "c", DRAW)], k=20, ratings=start)
    a, b = elo_update(1600, 1500, WIN, k=20)
    b, c = elo_update(b, 1500, DRAW, k=20)
    assert ratings == pytest.approx({"a": a, "b": b, "c": c})
    assert start == {"a": 1600.0}


# -- Bradley–Terry --------------------------------------------------------------------------

TRUE_RATINGS = np.array([1100.0, 1300.0, 1400.0, 1650.0, 1800.0])


def synthetic_table(games_per_pair, seed, ratings=TRUE_RATINGS):
    """Round robin between players of known Elo, with draws, expected score the Elo one.

    A draw takes equal mass from a win and a loss (``P(draw) = 0.4 * min(p, 1 - p)``), so
    the expected score stays ``p`` and the Elo-scale truth is what the fit should find.
    """
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(len(ratings))]
    table = PayoffTable(players=ids)
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            p = elo_expected(ratings[i], ratings[j])
            draw = 0.4 * min(p, 1 - p)
            for u in rng.random(games_per_pair):
                table.record(ids[i], ids[j], WIN if u < p - draw / 2 else DRAW if u < p + draw / 2 else LOSS)
    return table


def test_bradley_terry_recovers_order_and_gaps():
    fit = bradley_terry(synthetic_table(300, seed=1))
    assert list(np.argsort(fit.ratings)) == [0, 1, 2, 3, 4]
    assert fit.ratings.mean() == pytest.approx(1500.0)
    centred_truth = TRUE_RATINGS - TRUE_RATINGS.mean() + 1500.0
    np.testing.assert_allclose(fit.ratings, centred_truth, atol=50)
    assert fit.as_dict()["p4"] == fit.rating("p4")


def test_bradley_terry_intervals_shrink_with_more_games():
    few = bradley_terry(synthetic_table(20, seed=2))
    many = bradley_terry(synthetic_table(500, seed=2))
    assert np.all(many.stderr < few.stderr / 3)  # ~ sqrt(25) = 5 times narrower
    assert np.all(many.upper - many.lower < few.upper - few.lower)


def test_bradley_terry_intervals_contain_the_truth_most_of_the_time():
    centred_truth = TRUE_RATINGS - TRUE_RATINGS.mean() + 1500.0
    covered = []
    for seed in range(40):
        fit = bradley_terry(synthetic_table(60, seed=100 + seed), confidence=0.9)
        covered.extend((fit.lower <= centred_truth) & (centred_truth <= fit.upper))
    assert 0.8 <= np.mean(covered) <= 0.98  # nominal 0.9 over 200 intervals


def test_bradley_terry_anchor_player():
    table = synthetic_table(100, seed=3)
    fit = bradley_terry(table, anchor="p2", anchor_rating=1000.0)
    mean_fit = bradley_terry(table)
    assert fit.rating("p2") == 1000.0 and fit.stderr[2] == 0.0
    np.testing.assert_allclose(np.diff(fit.ratings), np.diff(mean_fit.ratings))
    with pytest.raises(ValueError, match="Anchor"):
        bradley_terry(table, anchor="nobody")


def test_bradley_terry_survives_perfect_records_and_absent_players():
    table = table_from([("a", "b", WIN)] * 30, players=["a", "b", "idle"])
    fit = bradley_terry(table)
    assert np.all(np.isfinite(fit.ratings)) and np.all(np.isfinite(fit.stderr))
    assert fit.rating("a") > fit.rating("idle") > fit.rating("b")
    assert fit.rating("idle") == pytest.approx(1500.0, abs=1.0)  # the prior's centre, where a and b balance
    assert fit.interval("idle")[1] - fit.interval("idle")[0] > 1000  # it never played: nothing known


def test_bradley_terry_on_a_subset_and_with_decay():
    table = synthetic_table(50, seed=4)
    fit = bradley_terry(table, ["p0", "p4"], decayed=True)
    assert fit.players == ("p0", "p4") and fit.rating("p4") > fit.rating("p0")
    with pytest.raises(ValueError, match="not in this"):
        fit.rating("p1")


# -- cycles ---------------------------------------------------------------------------------


def rock_paper_scissors(games=5):
    beats = [("rock", "scissors"), ("scissors", "paper"), ("paper", "rock")]
    return table_from([(w, l, WIN) for w, l in beats for _ in range(games)], players=["rock", "paper", "scissors"])


def test_rock_paper_scissors_is_one_three_cycle():
    assert strategic_cycles(rock_paper_scissors()) == [["rock", "scissors", "paper"]]
    graph = beats_graph(rock_paper_scissors())
    assert graph.edges["rock", "scissors"] == {"win_rate": 1.0, "games": 5}


def test_transitive_league_has_no_cycle():
    assert strategic_cycles(synthetic_table(100, seed=5)) == []


def test_cycles_need_enough_games():
    assert strategic_cycles(rock_paper_scissors(games=2), min_games=3) == []
    assert beats_graph(rock_paper_scissors(games=2), min_games=3).number_of_edges() == 0


def test_cycles_are_listed_shortest_first():
    table = rock_paper_scissors()
    for loser in ("rock", "paper", "scissors"):  # lizard loses to all three but beats spock
        table.record(loser, "lizard", WIN)
    table.record("lizard", "spock", WIN)
    table.record("spock", "rock", WIN)
    cycles = strategic_cycles(table)
    assert cycles[0] == ["rock", "scissors", "paper"]
    assert ["rock", "lizard", "spock"] in cycles
    assert strategic_cycles(table, max_length=3) == [["rock", "scissors", "paper"], ["rock", "lizard", "spock"]]
