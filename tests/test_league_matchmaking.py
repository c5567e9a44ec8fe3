"""Matchmakers' exact probabilities on hand-made payoff tables, sampling, and the reset rule."""

from __future__ import annotations

import numpy as np
import pytest

from marl_arena.league import (
    MATCHMAKERS,
    PayoffTable,
    PlayerInfo,
    alphastar,
    alphastar_league_exploiter,
    alphastar_main_agent,
    alphastar_main_exploiter,
    get_matchmaker,
    pfsp,
    pfsp_weights,
    resets_on_snapshot,
    sample_opponent,
    self_play,
    uniform_fsp,
)


def main(id="m"):
    return PlayerInfo(id, "main_agent")


def snapshot(id, parent, created):
    return PlayerInfo(id, "snapshot", parent=parent, created=created, frozen=True)


def with_win_rates(learner, rates, games=20):
    """A table (no decay) where ``learner`` has exactly the given win rates (multiples of 1/games)."""
    table = PayoffTable(decay=1.0)
    for opponent, rate in rates.items():
        wins = round(rate * games)
        for i in range(games):
            table.record(learner, opponent, 1.0 if i < wins else 0.0)
    return table


def assert_distribution(actual, expected):
    assert set(actual) == set(expected), (actual, expected)
    for player, p in expected.items():
        assert actual[player] == pytest.approx(p), (player, actual)
    assert sum(actual.values()) == pytest.approx(1.0)


# -- PFSP weightings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weighting, weights",
    [
        ("squared", [0.64, 0.25, 0.01]),
        ("hard", [0.64, 0.25, 0.01]),
        ("variance", [0.16, 0.25, 0.09]),
        ("linear", [0.8, 0.5, 0.1]),
        ("linear_capped", [0.5, 0.5, 0.1]),
    ],
)
def test_pfsp_weightings(weighting, weights):
    np.testing.assert_allclose(pfsp_weights([0.2, 0.5, 0.9], weighting), np.asarray(weights) / sum(weights))


def test_pfsp_is_uniform_when_every_weight_vanishes():
    np.testing.assert_allclose(pfsp_weights([1.0, 1.0, 1.0], "squared"), [1 / 3] * 3)
    np.testing.assert_allclose(pfsp_weights([0.0, 1.0], "variance"), [0.5, 0.5])


def test_pfsp_accepts_a_callable_and_refuses_unknown_names():
    np.testing.assert_allclose(pfsp_weights([0.2, 0.6], lambda x: x), [0.25, 0.75])
    with pytest.raises(ValueError, match="squared.*variance"):
        pfsp_weights([0.5], "cubic")


# -- self-play, FSP, PFSP -------------------------------------------------------------------

LEAGUE = [
    main("m"),
    snapshot("m_1", "m", 1.0),
    snapshot("m_2", "m", 2.0),
    PlayerInfo("bot", "scripted", frozen=True),
    PlayerInfo("alice", "human"),
    PlayerInfo("x", "league_exploiter"),
]


def test_self_play_is_the_learner_itself():
    assert self_play("m", LEAGUE, PayoffTable()) == {"m": 1.0}


def test_uniform_is_over_frozen_players_only():
    assert_distribution(uniform_fsp("m", LEAGUE, PayoffTable()), {"m_1": 1 / 3, "m_2": 1 / 3, "bot": 1 / 3})


def test_uniform_and_pfsp_fall_back_to_self_play_without_past_players():
    league = [main("m"), PlayerInfo("x", "league_exploiter")]
    assert uniform_fsp("m", league, PayoffTable()) == {"m": 1.0}
    assert pfsp("m", league, PayoffTable()) == {"m": 1.0}


def test_pfsp_exact_probabilities():
    table = with_win_rates("m", {"m_1": 0.25, "m_2": 0.75, "bot": 1.0})
    # squared: .5625, .0625, 0 -> / .625
    assert_distribution(pfsp("m", LEAGUE, table), {"m_1": 0.9, "m_2": 0.1, "bot": 0.0})
    # variance: .1875, .1875, 0
    assert_distribution(pfsp("m", LEAGUE, table, weighting="variance"), {"m_1": 0.5, "m_2": 0.5, "bot": 0.0})
    assert_distribution(MATCHMAKERS["pfsp_linear"]("m", LEAGUE, table), {"m_1": 0.75, "m_2": 0.25, "bot": 0.0})


def test_pfsp_treats_unseen_opponents_as_even():
    table = with_win_rates("m", {"m_1": 0.0})  # m_2 and bot never met m: 0.5 each
    assert_distribution(pfsp("m", LEAGUE, table), {"m_1": 1 / 1.5, "m_2": 0.25 / 1.5, "bot": 0.25 / 1.5})


def test_pfsp_uses_the_decayed_win_rate_by_default():
    table = PayoffTable(decay=0.5)
    for score in (1.0, 1.0, 1.0, 0.0):  # exact 0.75, decayed .875 / 1.875 = 7/15
        table.record("m", "m_1", score)
    league = [main("m"), snapshot("m_1", "m", 1.0), snapshot("m_2", "m", 2.0)]
    decayed_weight = (1 - 7 / 15) ** 2
    assert pfsp("m", league, table)["m_1"] == pytest.approx(decayed_weight / (decayed_weight + 0.25))
    assert pfsp("m", league, table, decayed=False)["m_1"] == pytest.approx(0.0625 / (0.0625 + 0.25))


# -- AlphaStar ------------------------------------------------------------------------------

ALPHASTAR_LEAGUE = [
    main("m"),
    PlayerInfo("e", "main_exploiter"),
    PlayerInfo("l", "league_exploiter"),
    snapshot("m_1", "m", 1.0),
    snapshot("m_2", "m", 2.0),
    snapshot("e_1", "e", 1.5),
]


def test_main_agent_without_open_exploits_or_forgetting():
    # Own snapshots beaten less and less (0.8 then 0.6): a monotonic suffix, not forgetting.
    table = with_win_rates("m", {"m_1": 0.8, "m_2": 0.6, "e_1": 0.5})
    pfsp_total = 0.04 + 0.16 + 0.25
    expected = {p: 0.5 * w / pfsp_total for p, w in {"m_1": 0.04, "m_2": 0.16, "e_1": 0.25}.items()} | {"m": 0.5}
    assert_distribution(alphastar_main_agent("m", ALPHASTAR_LEAGUE, table), expected)


def test_main_agent_verifies_an_open_exploit():
    table = with_win_rates("m", {"m_1": 0.8, "m_2": 0.6, "e_1": 0.2})
    pfsp_total = 0.04 + 0.16 + 0.64
    expected = {
        "m_1": 0.5 * 0.04 / pfsp_total,
        "m_2": 0.5 * 0.16 / pfsp_total,
        "e_1": 0.5 * 0.64 / pfsp_total + 0.15,
        "m": 0.35,
    }
    assert_distribution(alphastar_main_agent("m", ALPHASTAR_LEAGUE, table), expected)


def test_main_agent_revisits_forgotten_snapshots():
    # Beats the newer m_2 (0.9) but only half of the older m_1: forgetting.
    table = with_win_rates("m", {"m_1": 0.5, "m_2": 0.9, "e_1": 0.5})
    pfsp_total = 0.25 + 0.01 + 0.25
    expected = {
        "m_1": 0.5 * 0.25 / pfsp_total + 0.15 * 0.25 / 0.26,
        "m_2": 0.5 * 0.01 / pfsp_total + 0.15 * 0.01 / 0.26,
        "e_1": 0.5 * 0.25 / pfsp_total,
        "m": 0.35,
    }
    assert_distribution(alphastar_main_agent("m", ALPHASTAR_LEAGUE, table), expected)


def test_main_agent_curriculum_against_a_stronger_main_agent():
    league = [main("m"), main("n"), snapshot("n_1", "n", 1.0), snapshot("n_2", "n", 2.0)]
    table = with_win_rates("m", {"n": 0.1, "n_1": 0.5, "n_2": 0.2})
    # Self-play branch: m half the time; n is too strong (0.1 <= 0.3): PFSP variance over n's
    # snapshots (.25, .16). Verification: n's snapshots are a monotonic suffix, so self-play branch.
    self_play_branch = {"m": 0.5, "n_1": 0.5 * 0.25 / 0.41, "n_2": 0.5 * 0.16 / 0.41}
    pfsp_part = {"n_1": 0.25 / 0.89, "n_2": 0.64 / 0.89}
    expected = {p: 0.5 * pfsp_part.get(p, 0.0) + 0.5 * self_play_branch[p] for p in self_play_branch}
    assert_distribution(alphastar_main_agent("m", league, table), expected)


def test_main_agent_alone_plays_itself():
    assert alphastar_main_agent("m", [main("m")], PayoffTable()) == {"m": 1.0}


def test_main_exploiter_plays_the_main_agent_it_can_learn_against():
    table = with_win_rates("e", {"m": 0.2})
    assert alphastar_main_exploiter("e", ALPHASTAR_LEAGUE, table) == {"m": 1.0}


def test_main_exploiter_falls_back_to_snapshots_when_it_cannot_win():
    table = with_win_rates("e", {"m": 0.05, "m_1": 0.5, "m_2": 0.2})
    # variance: .25 and .16
    expected = {"m_1": 0.25 / 0.41, "m_2": 0.16 / 0.41}
    assert_distribution(alphastar_main_exploiter("e", ALPHASTAR_LEAGUE, table), expected)


def test_main_exploiter_needs_a_main_agent():
    with pytest.raises(ValueError, match="main agent"):
        alphastar_main_exploiter("e", [PlayerInfo("e", "main_exploiter")], PayoffTable())


def test_league_exploiter_pfsp_linear_capped_over_everyone():
    table = with_win_rates("l", {"m_1": 0.1, "m_2": 0.6, "e_1": 0.9})
    total = 0.5 + 0.4 + 0.1
    expected = {"m_1": 0.5 / total, "m_2": 0.4 / total, "e_1": 0.1 / total}
    assert_distribution(alphastar_league_exploiter("l", ALPHASTAR_LEAGUE, table), expected)


def test_alphastar_dispatches_on_the_learner_kind():
    table = with_win_rates("m", {"m_1": 0.8, "m_2": 0.6, "e_1": 0.5})
    assert alphastar("m", ALPHASTAR_LEAGUE, table) == alphastar_main_agent("m", ALPHASTAR_LEAGUE, table)
    assert alphastar("e", ALPHASTAR_LEAGUE, table) == alphastar_main_exploiter("e", ALPHASTAR_LEAGUE, table)
    assert alphastar("l", ALPHASTAR_LEAGUE, table) == alphastar_league_exploiter("l", ALPHASTAR_LEAGUE, table)
    with pytest.raises(ValueError, match="kind 'snapshot'"):
        alphastar("m_1", ALPHASTAR_LEAGUE, table)


# -- selection and sampling -----------------------------------------------------------------


def test_matchmakers_by_name_or_callable():
    assert get_matchmaker("self_play") is self_play
    assert get_matchmaker("uniform") is uniform_fsp
    table = with_win_rates("m", {"m_1": 0.25, "m_2": 0.75, "bot": 1.0})
    assert get_matchmaker("pfsp_variance")("m", LEAGUE, table) == pfsp("m", LEAGUE, table, weighting="variance")

    def mine(learner, players, payoff):
        return {"bot": 1.0}

    assert get_matchmaker(mine) is mine


def test_unknown_matchmaker_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown matchmaker 'pfps'.*self_play, uniform, pfsp.*alphastar"):
        get_matchmaker("pfps")


def test_unknown_learner_is_refused():
    with pytest.raises(ValueError, match="'ghost' is not among"):
        uniform_fsp("ghost", LEAGUE, PayoffTable())


def test_sample_opponent_follows_the_distribution_and_the_seed():
    distribution = {"a": 0.7, "b": 0.2, "c": 0.1}
    draws = [sample_opponent(distribution, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(draws)) == 1  # same seed, same draw
    rng = np.random.default_rng(0)
    counts = {k: 0 for k in distribution}
    for _ in range(5000):
        counts[sample_opponent(distribution, rng)] += 1
    for k, p in distribution.items():
        assert counts[k] / 5000 == pytest.approx(p, abs=0.02)


@pytest.mark.parametrize("bad", [{}, {"a": 0.5}, {"a": 1.5, "b": -0.5}])
def test_sample_opponent_refuses_non_distributions(bad):
    with pytest.raises(ValueError, match="summing to 1"):
        sample_opponent(bad, np.random.default_rng(0))


# -- players and the reset rule -------------------------------------------------------------


def test_player_info_validates_kind_and_frozen():
    with pytest.raises(ValueError, match="main_agent.*snapshot"):
        PlayerInfo("p", "champion")
    with pytest.raises(ValueError, match="frozen=True"):
        PlayerInfo("s", "snapshot", parent="m")
    assert main().trainable and not snapshot("s", "m", 0.0).trainable


def test_reset_rule():
    rng = np.random.default_rng(0)
    assert resets_on_snapshot(PlayerInfo("e", "main_exploiter"), rng)
    assert not resets_on_snapshot(main(), rng)
    league_exploiter = PlayerInfo("l", "league_exploiter")
    resets = [resets_on_snapshot(league_exploiter, rng) for _ in range(4000)]
    assert np.mean(resets) == pytest.approx(0.25, abs=0.02)
    with pytest.raises(ValueError, match="not trainable"):
        resets_on_snapshot(snapshot("s", "m", 0.0), rng)
