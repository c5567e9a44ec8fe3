"""Calibrated ratings on a real league run, external matches, and the pool mixture of every league."""

from __future__ import annotations

import numpy as np
import pytest

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.leaderboard import calibration_report, store_leaderboard
from marl_arena.league.league_config import LeagueConfig
from marl_arena.league.players import PlayerInfo
from marl_arena.league.store import LeagueStore, MatchRecord
from test_league import take_away_league as base_take_away_league


def take_away_league(directory, **roster) -> LeagueConfig:
    """test_league's take_away league, freezing after 100 games, rated with k=16, seeded."""
    return base_take_away_league(directory, min_games=100).roster(**roster).rating(k=16).debugging(seed=3)


def test_elo_and_bradley_terry_predict_observed_win_rates_on_a_real_league(tmp_path):
    league = take_away_league(tmp_path).build()
    try:
        league.run(30)
        # Evaluation games of the learner as it is now: pairs that Elo (which rates current players) covers.
        latest = max((p for p in league.players.values() if p.kind == "snapshot"), key=lambda p: p.created).id
        for opponent in ("random", latest):
            league.play_matches("main_0", opponent, 100)
        players, elo = dict(league.players), dict(league.elo)
        report = calibration_report(players, league.store.versioned_results(), elo, min_games=100)
        board = league.leaderboard()
    finally:
        league.stop()
    assert any(p.kind == "snapshot" for p in players.values())
    assert len(report["bradley_terry"]) >= 5 and len(report["elo"]) == 2
    # Against its whole history the learner's current rating is far off: what the issue measured.
    assert max(abs(row["error"]) for row in report["elo_whole_history"]) > 0.1
    for system in ("bradley_terry", "elo"):
        for row in report[system]:
            assert abs(row["error"]) <= 0.05, (system, row)
    ratings = [row["bt"] for row in board]
    assert ratings == sorted(ratings, reverse=True)  # sorted by the calibrated rating
    assert all(row["elo"] == pytest.approx(row["bt"]) for row in board)  # Elo re-anchored at the iteration's end
    reader = LeagueStore(tmp_path, read_only=True)
    assert [row["player"] for row in store_leaderboard(reader)] == [row["player"] for row in board]
    reader.close()


def test_a_match_written_by_someone_else_reaches_the_running_leagues_ratings(tmp_path):
    league = take_away_league(tmp_path).build()
    try:
        league.run(1)
        outside = LeagueStore(tmp_path)  # what the dashboard's Play page does, while the league runs
        outside.add_player(PlayerInfo("human", "human"))
        for _ in range(3):
            outside.record_match(MatchRecord(league.config.env, ("human", "random"), (1.0, -1.0), 4), {})
        outside.close()
        league.run(1)
        assert league.payoff.stats("human", "random").wins == 3
        board = {r["player"]: r for r in league.leaderboard()}
        elo = league.elo["human"]
        league.run(1)  # read once: the next iteration does not count them again
        assert league.payoff.stats("human", "random").games == 3
    finally:
        league.stop()
    assert league.players["human"].kind == "human"
    assert board["human"]["games"] == 3 and board["human"]["wins"] == 3
    assert elo == pytest.approx(board["human"]["bt"]) and board["human"]["bt"] > board["random"]["bt"]


def test_pool_mixture_fills_pairs_that_never_met_with_evaluation_matches(tmp_path):
    from marl_arena_envs.games import OptimalTaker

    league = take_away_league(tmp_path, scripted={"random": RandomModule, "optimal": OptimalTaker}).build()
    try:
        assert league.store.count_matches() == 0
        mixture = league.pool_mixture("nash")  # no rated games: every player is in the pool
        played = league.store.count_matches()
        assert league.pool_mixture("nash", ["random", "optimal"]) == pytest.approx({"random": 0.0, "optimal": 1.0})
        assert league.store.count_matches() == played  # every pair has met now: nothing more to play
    finally:
        league.stop()
    assert set(mixture) == {"main_0", "random", "optimal"}
    assert played == 3 * 100
    assert mixture["optimal"] == pytest.approx(1.0)  # perfect play beats the others


def kuhn_league(directory) -> LeagueConfig:
    trainer = (PPOConfig().training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2,
                                    entropy_coeff=0.1)
               .env_runners(num_envs_per_env_runner=4).rl_module(model_config={"fcnet_hiddens": [16]}))
    return (LeagueConfig().environment("open_spiel:kuhn_poker").trainer(trainer).roster(main_agents=1)
            .matchmaking("self_play").snapshots(win_rate=None, every_n_steps=400).debugging(seed=0)
            .store(str(directory)))


def test_a_self_play_league_has_an_exact_pool_mixture_and_an_openspiel_policy(tmp_path):
    import pyspiel
    from open_spiel.python.algorithms import exploitability

    from marl_arena_envs.openspiel import SequenceForm, pool_policy
    from marl_arena_envs.openspiel.sequence_form import policy_arrays

    league = kuhn_league(tmp_path).build()
    try:
        league.run(3)
        assert not any(league._games_played(pid) for pid in league.players)  # self-play only: nothing rated
        matches = league.store.count_matches()
        mixture = league.pool_mixture("nash")
        assert league.store.count_matches() == matches  # exact values: no evaluation games needed
        policy = pool_policy(league, mixture)
        modules = league.pool_modules(list(mixture))
    finally:
        league.stop()
    assert set(mixture) == {"main_0", "main_0_v1", "main_0_v2", "main_0_v3"}
    assert sum(mixture.values()) == pytest.approx(1.0)
    game = pyspiel.load_game("kuhn_poker")
    form = SequenceForm(game)
    arrays = policy_arrays(game, list(modules.values()))
    weights = np.array([mixture[pid] for pid in modules])
    members = form.payoff_matrix(arrays)
    # The policy is the mixture: against each member it earns the weighted average of the members' returns.
    against = form.payoff_matrix(np.concatenate([policy.action_probability_array[None], arrays]))[0, 1:]
    np.testing.assert_allclose(against, weights @ members, atol=1e-9)
    # A Nash mixture of the meta-game loses to no member.
    assert (weights @ members).min() >= -1e-9
    assert 0.0 <= exploitability.exploitability(game, policy) < 0.5
