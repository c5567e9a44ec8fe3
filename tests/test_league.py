"""The League runner: trains against drawn opponents, records every match, freezes, resumes."""

from __future__ import annotations

import pathlib
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import torch

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig
from marl_arena.league.module_specs import load_player_module
from marl_arena.league.store import SNAPSHOT_DIR, StoreError

TESTS = pathlib.Path(__file__).resolve().parent


def take_away_league(directory, **snapshots) -> LeagueConfig:
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=500, minibatch_size=100, num_epochs=5, gamma=1.0,
                  entropy_coeff=0.01, lr=1e-3)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
    )
    return (
        LeagueConfig()
        .environment("games:take_away", env_config={"pile": 10})
        .trainer(trainer)
        .roster(main_agents=1, scripted={"random": RandomModule})
        .matchmaking("pfsp", weighting="hard")
        .snapshots(**({"win_rate": 0.7, "min_games": 60} | snapshots))
        .store(str(directory))
    )


def test_league_trains_records_every_match_and_ranks_the_learner_above_random(tmp_path):
    league = take_away_league(tmp_path).build()
    played = []
    league.run(10, lambda lg, summary: played.append(summary["players"]["main_0"]["matches"]))
    board = {row["player"]: row for row in league.leaderboard()}
    count = league.store.count_matches()
    league.stop()
    assert count == sum(played) > 0
    assert board["main_0"]["elo"] > board["random"]["elo"]
    assert board["main_0"]["bt"] > board["random"]["bt"]
    assert any(row["kind"] == "snapshot" for row in board.values())
    assert board["main_0"]["wins"] + board["main_0"]["losses"] + board["main_0"]["draws"] == board["main_0"]["games"]


def test_the_store_holds_each_trainable_players_current_weights_in_one_file(tmp_path):
    league = take_away_league(tmp_path, win_rate=None).build()
    try:
        league.run(1)
        league.freeze("main_0", steps=0)  # a snapshot file, which the current weights' updates must keep
        league.run(2)
        stored = league.store.load_snapshot(league.store.player_snapshot("main_0"))
        current = league.trainers["main_0"].learner_group.get_weights(["main_0"])["main_0"]
        frozen = [p for p in league.store.players() if p.frozen and p.kind == "snapshot"]
        files = list((tmp_path / SNAPSHOT_DIR).glob("*.pt"))
        module = load_player_module(league.store, "main_0")  # what the dashboard's Play page builds
    finally:
        league.stop()
    assert stored.keys() == current.keys() and all(torch.equal(stored[k], current[k]) for k in stored)
    assert len(frozen) == 1 and len(files) == 2  # one file for the current weights, not one per iteration
    assert all(torch.equal(module.state_dict()[k], current[k]) for k in current)


def test_snapshot_rule_weights_opponents_by_the_draw_and_counts_fresh_games(tmp_path):
    league = take_away_league(tmp_path, min_games=20).build()
    try:
        main, algo = "main_0", league.trainers["main_0"]
        league.freeze(main, steps=0)  # main_0_v1, an equal opponent
        for _ in range(20):
            league.payoff.record(main, "random", 1.0)
            league.payoff.record(main, "main_0_v1", 0.5)
        draw = {"random": 0.1, "main_0_v1": 0.9}
        # Unweighted, (1.0 + 0.5) / 2 = 0.75 would pass 0.7; weighted by the draw it is 0.55.
        assert league._maybe_snapshot(main, algo, draw, steps=1) is None
        # Weighted 0.95, but it does not beat its latest snapshot (0.5): no freeze either.
        assert league._maybe_snapshot(main, algo, {"random": 0.9, "main_0_v1": 0.1}, steps=1) is None
        for _ in range(40):
            league.payoff.record(main, "main_0_v1", 1.0)  # now it does (decayed rate well above 0.7)
        assert league._maybe_snapshot(main, algo, {"random": 0.9, "main_0_v1": 0.1}, steps=1) == "main_0_v2"
        # Right after a snapshot the same record does not freeze again: no fresh games yet.
        assert league._maybe_snapshot(main, algo, {"random": 1.0}, steps=2) is None
        for _ in range(20):
            league.payoff.record(main, "random", 1.0)
        assert league._maybe_snapshot(main, algo, {"random": 1.0}, steps=3) == "main_0_v3"
    finally:
        league.stop()


def test_league_resumes_from_its_directory(tmp_path):
    league = take_away_league(tmp_path).build()
    league.run(4)
    players = sorted(league.players)
    matches = league.store.count_matches()
    elo = dict(league.elo)
    weights = {k: v.clone() for k, v in league.trainers["main_0"].get_module("main_0").state_dict().items()}
    league.stop()

    again = take_away_league(tmp_path).build()
    try:
        assert sorted(again.players) == players
        assert again.store.count_matches() == matches
        assert again.elo == pytest.approx(elo)
        assert again.iteration == 4
        restored = again.trainers["main_0"].get_module("main_0").state_dict()
        assert all(torch.equal(restored[k], v) for k, v in weights.items())
        again.run(1)
        assert again.iteration == 5 and again.store.count_matches() > matches
    finally:
        again.stop()


KILLED_LEAGUE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from test_league import take_away_league
    league = take_away_league(sys.argv[1], win_rate=0.55, min_games=20).build()
    league.run(1000, lambda lg, s: print(lg.store.count_matches(), flush=True))
    """
)


def test_sigkilled_league_resumes_with_every_finished_match(tmp_path):
    script = tmp_path / "league.py"
    script.write_text(KILLED_LEAGUE)
    directory = tmp_path / "league"
    child = subprocess.Popen([sys.executable, str(script), str(directory), str(TESTS)], stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    for _ in range(6):
        acknowledged = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    for line in child.stdout:
        acknowledged = int(line)

    league = take_away_league(directory, win_rate=0.55, min_games=20).build()
    try:
        count = league.store.count_matches()
        snapshots = [p for p in league.players.values() if p.kind == "snapshot"]
        assert count >= acknowledged  # nothing acknowledged is lost
        ids = [row[0] for row in sqlite3.connect(directory / "league.sqlite").execute("SELECT id FROM matches")]
        assert ids == list(range(1, count + 1))  # none counted twice, no gaps
        league.store.verify_all_snapshots()
        assert all((directory / SNAPSHOT_DIR / f"{league.store.player_snapshot(p.id)}.pt").exists() for p in snapshots)
        league.run(1)
        assert league.store.count_matches() > count
    finally:
        league.stop()


def test_a_game_the_roster_cannot_seat_fails_before_touching_the_store(tmp_path):
    from marl_arena.env import MultiAgentCartPole, register_env

    register_env("three_poles", lambda cfg: MultiAgentCartPole({"num_agents": 3}))
    config = take_away_league(tmp_path / "league").environment("three_poles")
    with pytest.raises(ValueError, match="seats two players per game.*3 agents"):
        config.build()
    assert not (tmp_path / "league").exists()


def test_a_league_whose_observations_changed_shape_refuses_to_resume(tmp_path):
    """Stored players read the old layout; resuming them on another one must fail, not scramble them."""
    league = take_away_league(tmp_path).build()
    league.run(1)
    league.stop()
    before = (tmp_path / "league.sqlite").read_bytes()
    changed = take_away_league(tmp_path)
    changed.env_config = {"pile": 12}
    with pytest.raises(StoreError, match=r"trained on observations .*\[11\].* now gives .*\[13\]"):
        changed.build()
    assert (tmp_path / "league.sqlite").read_bytes() == before


@pytest.mark.parametrize(
    "damage, error",
    [
        ("newer_schema", "newer marl_arena"),
        ("missing_snapshot", "is missing"),
        ("corrupt_snapshot", "is corrupt"),
    ],
)
def test_bad_league_directories_fail_clearly_and_change_nothing(tmp_path, damage, error):
    league = take_away_league(tmp_path, win_rate=None, every_n_steps=400).build()
    league.run(2)
    league.stop()
    snapshot_files = sorted((tmp_path / SNAPSHOT_DIR).glob("*.pt"))
    assert snapshot_files
    if damage == "newer_schema":
        with sqlite3.connect(tmp_path / "league.sqlite") as db:
            db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    elif damage == "missing_snapshot":
        snapshot_files[0].unlink()
    else:
        snapshot_files[0].write_bytes(b"not the weights")
    before = (tmp_path / "league.sqlite").read_bytes()
    with pytest.raises(StoreError, match=error):
        take_away_league(tmp_path, win_rate=None, every_n_steps=400).build()
    assert (tmp_path / "league.sqlite").read_bytes() == before


def test_rock_paper_scissors_bots_form_a_cycle_in_the_beats_graph(tmp_path):
    from marl_arena.league import strategic_cycles
    from marl_arena_envs.games import PaperOnly, RockOnly, ScissorsOnly

    config = (
        take_away_league(tmp_path)
        .environment("games:rock_paper_scissors", env_config={"num_rounds": 3})
        .roster(main_agents=1, scripted={"rock": RockOnly, "paper": PaperOnly, "scissors": ScissorsOnly})
    )
    league = config.build()
    try:
        for a, b in (("rock", "paper"), ("paper", "scissors"), ("scissors", "rock")):
            matches = league.play_matches(a, b, episodes=10)
            assert len(matches) == 10
        cycles = strategic_cycles(league.payoff, min_games=10)
        mixture = league.pool_mixture("nash")
        assert league.store.count_matches() == 30
    finally:
        league.stop()
    assert [sorted(c) for c in cycles] == [["paper", "rock", "scissors"]]
    assert mixture == pytest.approx({"rock": 1 / 3, "paper": 1 / 3, "scissors": 1 / 3}, abs=1e-6)  # the RPS Nash


def test_elo_and_bradley_terry_order_bots_of_known_strength(tmp_path):
    """random < one-ply greedy < perfect play on take-away, after a bounded number of matches."""
    from marl_arena_envs.games import GreedyTaker, OptimalTaker

    config = take_away_league(tmp_path).roster(
        main_agents=1, scripted={"random": RandomModule, "greedy": GreedyTaker, "optimal": OptimalTaker}
    )
    league = config.build()
    try:
        for _ in range(3):
            for a, b in (("random", "greedy"), ("greedy", "optimal"), ("random", "optimal")):
                league.play_matches(a, b, episodes=40)
        board = league.leaderboard()
    finally:
        league.stop()
    bots = [row for row in board if row["kind"] == "scripted"]
    assert [row["player"] for row in bots] == ["optimal", "greedy", "random"]  # by Elo
    assert [row["player"] for row in sorted(bots, key=lambda r: -r["bt"])] == ["optimal", "greedy", "random"]
    assert all(row["games"] == 240 for row in bots)


def test_ratings_order_random_greedy_and_mcts_on_tic_tac_toe(tmp_path):
    """The issue's ladder: random < one-ply greedy < MCTS (300 simulations), by Elo and Bradley-Terry."""
    from marl_arena_envs.openspiel import TicTacToeGreedy, TicTacToeMCTS

    config = (
        take_away_league(tmp_path)
        .environment("open_spiel:tic_tac_toe")
        .roster(main_agents=1, scripted={"random": RandomModule, "greedy": TicTacToeGreedy, "mcts": TicTacToeMCTS})
    )
    league = config.build()
    try:
        for _ in range(2):
            for a, b in (("random", "greedy"), ("greedy", "mcts"), ("random", "mcts")):
                league.play_matches(a, b, episodes=30)
        bots = [row for row in league.leaderboard() if row["kind"] == "scripted"]
    finally:
        league.stop()
    assert [row["player"] for row in bots] == ["mcts", "greedy", "random"]
    assert [row["player"] for row in sorted(bots, key=lambda r: -r["bt"])] == ["mcts", "greedy", "random"]


def test_a_league_players_policy_scores_with_openspiel_exploitability(tmp_path):
    from open_spiel.python.algorithms.exploitability import exploitability

    from marl_arena_envs.openspiel import ModulePolicy

    config = take_away_league(tmp_path).environment("open_spiel:kuhn_poker").snapshots(win_rate=None, every_n_steps=500)
    league = config.build()
    try:
        league.run(2)
        trainer = league.trainers["main_0"]
        policy = ModulePolicy.from_algorithm(trainer, module_id="main_0")
        score = exploitability(policy.game, policy)
        direct = ModulePolicy(policy.game, trainer.get_module("main_0"))
        expected = exploitability(direct.game, direct)
    finally:
        league.stop()
    assert score == pytest.approx(expected) and 0.0 < score < 1.0


def test_a_league_starts_its_players_from_a_one_module_checkpoint_and_resets_to_it(tmp_path):
    """Pre-training (e.g. BC on exported games) under one module id starts every trainable player."""
    pretrained = (PPOConfig().environment("games:take_away", env_config={"pile": 10})
                  .rl_module(model_config={"fcnet_hiddens": [32, 32]}).training(train_batch_size_per_learner=200)
                  .build_algo())
    pretrained.train()
    path = pretrained.save_to_path(str(tmp_path / "pretrained"))
    start = pretrained.get_module().state_dict()
    pretrained.stop()
    config = take_away_league(tmp_path / "league")
    config.trainer_config.rl_module(initial_weights_from=path)
    league = config.build()
    try:
        algo = league.trainers["main_0"]
        assert all(torch.equal(start[k], v) for k, v in algo.get_module("main_0").state_dict().items())
        league.run(1)
        assert not all(torch.equal(start[k], v) for k, v in algo.get_module("main_0").state_dict().items())
        algo.reset_module("main_0")  # an exploiter's restart after its snapshot: back to the pre-trained policy
        assert all(torch.equal(start[k], v) for k, v in algo.get_module("main_0").state_dict().items())
    finally:
        league.stop()
