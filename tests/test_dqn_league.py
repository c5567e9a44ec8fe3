"""DQN as a league trainer: the ready-made tic_tac_toe league learns to beat random from both seats."""

from __future__ import annotations

from marl_arena.league.league import League
from marl_arena_envs.openspiel import ModulePolicy, play_against_random
from marl_arena_leagues import tic_tac_toe


def test_dqn_main_agent_beats_random_from_both_seats(tmp_path):
    league = League(tic_tac_toe.make_config(str(tmp_path)).debugging(seed=0))
    try:
        for _ in range(8):
            league.run(4)
            policy = ModulePolicy.from_algorithm(league.trainers["main_0"], module_id="main_0", greedy=True)
            results = [play_against_random(policy, "tic_tac_toe", seat, 100) for seat in (0, 1)]
            non_loss = [r["win"] + r["draw"] for r in results]
            if min(non_loss) >= 0.85:
                break
        board = {row["player"]: row for row in league.leaderboard()}
        matches = league.store.matches()
    finally:
        league.stop()
    assert min(non_loss) >= 0.85, non_loss
    assert board["main_0"]["elo"] > board["random"]["elo"]
    # Every game the trainer played is in the store; the rated ones (not against itself) are on the board.
    rated = [m for m in matches if m.players[0] != m.players[1]]
    assert sum(row["games"] for row in board.values()) == 2 * len(rated) > 0
