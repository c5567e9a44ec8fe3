"""A CNN module (``conv_filters``) round-trips: through an Algorithm checkpoint (equal weights,
equal actions), through the OpenSpiel policy bridge (``ModulePolicy``) and into the dashboard's
Play page (``module_move``), each reading the board as planes."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
import torch

from marl_arena.algorithms import Algorithm, PPOConfig
from marl_arena.core.columns import Columns
from marl_arena_dashboard import boards, play
from marl_arena_envs.openspiel import ModulePolicy
from marl_arena_envs.openspiel.evaluation import play_against_random
from marl_arena_envs.openspiel.observations import ObservationEncoder

GAME = "tic_tac_toe"
MID = "default_policy"


@pytest.fixture(scope="module")
def trained_and_restored(tmp_path_factory):
    """A CNN PPO module after one iteration, and the same module restored from its checkpoint."""
    config = (
        PPOConfig()
        .environment(f"open_spiel:{GAME}", env_config={"opponents": {1: "random"}})
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size_per_learner=128, minibatch_size=64, num_epochs=2)
        .rl_module(model_config={"conv_filters": [[8, 2, 1], [8, 2, 1]], "fcnet_hiddens": [16]})
        .debugging(seed=0)
    )
    algo = config.build_algo()
    restored = None
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path_factory.mktemp("cnn") / "checkpoint"))
        restored = Algorithm.from_checkpoint(path)
        yield algo, restored
    finally:
        algo.stop()
        if restored is not None:
            restored.stop()


def _states(count: int, seed: int = 0) -> list[pyspiel.State]:
    """Non-terminal tic-tac-toe states from random playthroughs, both players to move."""
    rng = np.random.default_rng(seed)
    game = pyspiel.load_game(GAME)
    states = []
    while len(states) < count:
        state = game.new_initial_state()
        while not state.is_terminal() and len(states) < count:
            states.append(state.clone())
            state.apply_action(int(rng.choice(state.legal_actions())))
    return states


def _legal(state: pyspiel.State) -> np.ndarray:
    return np.asarray(state.legal_actions_mask(state.current_player()), dtype=np.float32)


def _planes(states: list[pyspiel.State]) -> torch.Tensor:
    encoder = ObservationEncoder(pyspiel.load_game(GAME), "auto", False)
    return torch.as_tensor(np.stack([encoder.vector(s, s.current_player()) for s in states]))


def test_the_module_is_a_cnn_over_board_planes(trained_and_restored):
    algo, restored = trained_and_restored
    for module in (algo.get_module(MID), restored.get_module(MID)):
        assert len(module.observation_space.shape) == 3  # planes, not a flattened row
        assert any(isinstance(layer, torch.nn.Conv2d) for layer in module.modules())


def test_a_checkpoint_restores_equal_weights_and_equal_actions(trained_and_restored):
    algo, restored = trained_and_restored
    before, after = algo.get_module(MID), restored.get_module(MID)
    state, again = before.state_dict(), after.state_dict()
    assert state.keys() == again.keys()
    for key in state:
        torch.testing.assert_close(again[key], state[key], rtol=0, atol=0)
    states = _states(40)
    batch = {Columns.OBS: _planes(states),
             Columns.ACTION_MASK: torch.as_tensor(np.stack([_legal(s) for s in states]))}
    with torch.inference_mode():
        logits, restored_logits = (m.forward_inference(batch)[Columns.ACTION_DIST_INPUTS] for m in (before, after))
    torch.testing.assert_close(restored_logits, logits, rtol=0, atol=0)
    assert torch.equal(before.action_distribution(logits).deterministic_sample(),
                       after.action_distribution(restored_logits).deterministic_sample())
    # The runners act with the restored weights too.
    runner = restored.env_runner_group.local_runner.module[MID]
    for key, value in runner.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_the_openspiel_policy_bridge_plays_the_restored_cnn_as_the_trained_one(trained_and_restored):
    algo, restored = trained_and_restored
    trained, again = ModulePolicy.from_algorithm(algo), ModulePolicy.from_algorithm(restored)
    for state in _states(30, seed=1):
        if state.current_player() != 0:  # the seat the learner plays (1 is the env's random bot)
            continue
        probs = trained.action_probabilities(state)
        assert set(probs) == set(state.legal_actions()) and sum(probs.values()) == pytest.approx(1.0)
        restored_probs = again.action_probabilities(state)
        assert restored_probs.keys() == probs.keys()
        for action, p in probs.items():
            assert restored_probs[action] == pytest.approx(p, abs=1e-6)
    results = play_against_random(ModulePolicy.from_algorithm(restored, greedy=True), GAME, seat=0, games=20)
    assert sum(results[k] for k in ("win", "draw", "loss")) == pytest.approx(1.0)


def test_the_dashboards_play_page_moves_with_the_cnn(trained_and_restored):
    _, restored = trained_and_restored
    module = restored.get_module(MID)
    board = boards.board_game(f"open_spiel:{GAME}")
    for state in _states(20, seed=2):
        move = play.module_move(module, board, state)
        with torch.inference_mode():
            logits = module.forward_inference({Columns.OBS: torch.as_tensor(board.observe(state, state.current_player())[None]),
                                               Columns.ACTION_MASK: torch.as_tensor(board.mask(state)[None])})
        assert move in state.legal_actions()
        assert move == int(logits[Columns.ACTION_DIST_INPUTS].argmax())
