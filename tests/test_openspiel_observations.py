"""The OpenSpiel observation encoder reads the game's tensor through pyspiel's buffered observer
where that observer was checked to agree; either way it gives what the state's tensor methods give."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest

from marl_arena_envs.openspiel.observations import ObservationEncoder, _random_move

GAMES = ["connect_four", "tic_tac_toe", "kuhn_poker", "leduc_poker", "goofspiel(num_cards=4)", "liars_dice",
         "breakthrough(rows=6,columns=6)"]


def reference(state: pyspiel.State, player: int, encoder: ObservationEncoder) -> np.ndarray:
    """The documented layout from the state's own tensor method: planes to HxWxC, seat one-hot last."""
    method = (state.information_state_tensor if encoder.observation_type == "information_state"
              else state.observation_tensor)
    tensor = np.asarray(method(player), dtype=np.float32)
    seats = encoder.num_players if encoder.seat_one_hot else 0
    if len(encoder.shape) == 3:
        channels = encoder.shape[-1] - seats
        planes = tensor.reshape(channels, *encoder.shape[:2]).transpose(1, 2, 0)
        one_hot = np.zeros((*encoder.shape[:2], seats), np.float32)
        if seats:
            one_hot[..., player] = 1.0
        return np.concatenate([planes, one_hot], axis=-1)
    one_hot = np.zeros(seats, np.float32)
    if seats:
        one_hot[player] = 1.0
    return np.concatenate([tensor, one_hot])


@pytest.mark.parametrize("name", GAMES)
@pytest.mark.parametrize("seat_one_hot", [False, True])
def test_encoder_gives_the_state_tensor_in_the_documented_layout_along_random_games(name, seat_one_hot):
    game = pyspiel.load_game(name)
    for observation_type in ("information_state", "observation"):
        try:
            encoder = ObservationEncoder(game, observation_type, seat_one_hot)
        except ValueError:  # the game has no tensor of this type
            continue
        rng = np.random.default_rng(1)
        for _ in range(5):
            state = game.new_initial_state()
            while not state.is_terminal():
                if not state.is_chance_node():
                    for player in range(game.num_players()):
                        got = encoder.vector(state, player)
                        assert got.shape == encoder.shape and got.dtype == np.float32
                        np.testing.assert_array_equal(got, reference(state, player, encoder))
                _random_move(state, rng)


def test_board_games_read_the_buffered_observer_and_each_vector_is_its_own_array():
    game = pyspiel.load_game("connect_four")
    encoder = ObservationEncoder(game)
    assert encoder._observation is not None  # connect_four's observer agrees with its observation_tensor
    state = game.new_initial_state()
    first = encoder.vector(state, 0)
    kept = first.copy()
    state.apply_action(3)
    second = encoder.vector(state, 1)
    np.testing.assert_array_equal(first, kept)  # the next call did not overwrite it
    assert not np.shares_memory(first, second) and first.flags.c_contiguous
