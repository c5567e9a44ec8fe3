"""An LSTM module through the OpenSpiel policy bridge (``ModulePolicy``): at any game state it
acts from the memory its own earlier decisions in that game left, as in the runners."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
import torch
from open_spiel.python.algorithms.exploitability import exploitability

from marl_arena.algorithms import PPOConfig
from marl_arena.core.columns import Columns
from marl_arena_envs.openspiel import ModulePolicy
from marl_arena_envs.openspiel.observations import ObservationEncoder

GAME = "kuhn_poker"


@pytest.fixture(scope="module")
def lstm_module():
    config = (PPOConfig().environment(f"open_spiel:{GAME}")
              .rl_module(model_config={"use_lstm": True, "lstm_cell_size": 8, "fcnet_hiddens": [16]})
              .training(train_batch_size_per_learner=200, minibatch_size=50, num_epochs=1)
              .debugging(seed=3))
    algo = config.build_algo()
    try:
        algo.train()
        yield algo.get_module()
    finally:
        algo.stop()


def _sequence_probabilities(module, state: pyspiel.State, player: int) -> np.ndarray:
    """The player's decisions so far as one sequence through ``forward_train``: the last step's probabilities."""
    encoder = ObservationEncoder(state.get_game(), "auto", False)
    replay, decisions = state.get_game().new_initial_state(), []
    for action in [*state.history(), None]:
        if not replay.is_chance_node() and replay.current_player() == player:
            decisions.append(replay.clone())
        if action is not None:
            replay.apply_action(action)
    obs = torch.as_tensor(np.stack([encoder.vector(s, player) for s in decisions])[None], dtype=torch.float32)
    mask = torch.as_tensor(encoder.mask(state, player)[None], dtype=torch.float32)
    with torch.no_grad():
        logits = module.forward_train({Columns.OBS: obs,
                                       Columns.STATE_IN: module.get_initial_state()[None]})[Columns.ACTION_DIST_INPUTS]
    last = logits[0, -1].masked_fill(mask[0] <= 0, float("-inf"))
    return torch.softmax(last, dim=-1).numpy()


def _states_with_history(game: pyspiel.Game):
    """Every decision state of the game where its player has decided before (memory matters there)."""
    found, stack = [], [game.new_initial_state()]
    while stack:
        state = stack.pop()
        if state.is_terminal():
            continue
        if not state.is_chance_node():
            player = state.current_player()
            earlier = [s for s in range(len(state.history())) if _player_at(game, state.history()[:s]) == player]
            if earlier:
                found.append(state)
        for action in (state.legal_actions() if not state.is_chance_node() else [a for a, _ in state.chance_outcomes()]):
            stack.append(state.child(action))
    return found


def _player_at(game: pyspiel.Game, history: list[int]) -> int:
    state = game.new_initial_state()
    for action in history:
        state.apply_action(action)
    return state.current_player()


def test_the_bridge_acts_from_the_memory_of_the_players_earlier_decisions(lstm_module):
    policy = ModulePolicy(GAME, lstm_module)
    states = _states_with_history(pyspiel.load_game(GAME))
    assert states, "kuhn_poker has states where the player to move decided before"
    for state in states:
        player = state.current_player()
        got = policy.action_probabilities(state)
        expected = _sequence_probabilities(lstm_module, state, player)
        assert sorted(got) == state.legal_actions()
        np.testing.assert_allclose([got[a] for a in sorted(got)], expected[sorted(got)], rtol=1e-5, atol=1e-6)


def test_memory_changes_what_the_bridge_plays(lstm_module):
    """At some state the remembered decisions change the probabilities from what fresh memory gives."""
    policy = ModulePolicy(GAME, lstm_module)
    encoder = ObservationEncoder(pyspiel.load_game(GAME), "auto", False)
    differs = []
    for state in _states_with_history(pyspiel.load_game(GAME)):
        player, legal = state.current_player(), sorted(state.legal_actions())
        with torch.no_grad():
            logits = lstm_module.forward_inference({
                Columns.OBS: torch.as_tensor(encoder.vector(state, player)[None], dtype=torch.float32),
                Columns.ACTION_MASK: torch.as_tensor(encoder.mask(state, player)[None], dtype=torch.float32),
                Columns.STATE_IN: lstm_module.get_initial_state()[None]})[Columns.ACTION_DIST_INPUTS]
        fresh = torch.softmax(logits[0, legal], dim=-1).numpy()
        remembered = np.array([policy.action_probabilities(state)[a] for a in legal])
        differs.append(not np.allclose(fresh, remembered, atol=1e-6))
    assert any(differs)


def test_exploitability_of_an_lstm_policy_agrees_with_its_tabular_form(lstm_module):
    policy = ModulePolicy(GAME, lstm_module)
    direct = exploitability(policy.game, policy)
    assert 0.0 < direct < 1.0
    assert exploitability(policy.game, policy.to_tabular()) == pytest.approx(direct)


def test_the_dashboards_play_page_moves_an_lstm_player_from_its_memory():
    """A tic-tac-toe LSTM on the Play page: its move at each state is the bridge's greedy move there."""
    from marl_arena_dashboard import boards, play

    config = (PPOConfig().environment("open_spiel:tic_tac_toe")
              .rl_module(model_config={"use_lstm": True, "lstm_cell_size": 8, "fcnet_hiddens": [16]})
              .training(train_batch_size_per_learner=200, minibatch_size=50, num_epochs=1).debugging(seed=4))
    algo = config.build_algo()
    try:
        algo.train()
        module = algo.get_module()
    finally:
        algo.stop()
    board = boards.board_game("open_spiel:tic_tac_toe")
    greedy = ModulePolicy("tic_tac_toe", module, greedy=True)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(10):
        state = board.game.new_initial_state()
        while not state.is_terminal():
            move = play.module_move(module, board, state)
            expected = max(greedy.action_probabilities(state).items(), key=lambda item: item[1])[0]
            assert move == expected
            checked += 1
            state.apply_action(int(rng.choice(state.legal_actions())))
    assert checked > 40
