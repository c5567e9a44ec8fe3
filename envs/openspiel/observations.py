"""What a player sees: one encoder shared by the env and by policy conversion.

The env and ``ModulePolicy`` (which scores a trained module with OpenSpiel's
exploitability) must feed a module exactly the same observation for the same information
state, or the scores measure a different policy from the one that was trained. Both use
``ObservationEncoder``.

The observation is the game's ``information_state_tensor`` where the game provides one
(perfect recall: what poker agents need), else its ``observation_tensor``; optionally with a
one-hot of the player's seat, so that one shared module can tell the seats apart in games
whose tensors do not say whose turn it is.

Where that tensor has rank 3 (board games: connect_four's is 3x6x7, tic_tac_toe's 3x3x3,
planes first) the observation keeps it as planes, moved to HxWxC (channels last, like
PettingZoo's boards and ``DefaultModelConfig``'s default ``conv_data_format``), so a CNN
encoder sees the board; the seat one-hot then comes as constant planes. Other tensors are
flat vectors with the seat one-hot appended.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pyspiel

from marl_arena_envs.openspiel.games import game_label

OBSERVATION_TYPES = ("auto", "information_state", "observation")
OBS_KEY = "observation"
MASK_KEY = "action_mask"


class ObservationEncoder:
    """Turns ``(state, player)`` into ``{"observation": float32 array, "action_mask": 0/1 vector}``."""

    def __init__(self, game: pyspiel.Game, observation_type: str = "auto", seat_one_hot: bool = False):
        if observation_type not in OBSERVATION_TYPES:
            raise ValueError(
                f"observation_type={observation_type!r} is not allowed for {game_label(game)!r}: "
                f"use one of {list(OBSERVATION_TYPES)}."
            )
        game_type = game.get_type()
        has_info = game_type.provides_information_state_tensor
        has_obs = game_type.provides_observation_tensor
        if observation_type == "auto":
            if not (has_info or has_obs):
                raise ValueError(
                    f"OpenSpiel game {game_label(game)!r} provides neither information_state_tensor "
                    "nor observation_tensor, so it has no vector observation to learn from."
                )
            observation_type = "information_state" if has_info else "observation"
        elif observation_type == "information_state" and not has_info:
            raise ValueError(f"OpenSpiel game {game_label(game)!r} provides no information_state_tensor; "
                             "use observation_type='observation' or 'auto'.")
        elif observation_type == "observation" and not has_obs:
            raise ValueError(f"OpenSpiel game {game_label(game)!r} provides no observation_tensor; "
                             "use observation_type='information_state' or 'auto'.")
        self.game = game
        self.observation_type = observation_type
        self.seat_one_hot = bool(seat_one_hot)
        self.num_players = game.num_players()
        self.num_actions = game.num_distinct_actions()
        if observation_type == "information_state":
            tensor_shape = game.information_state_tensor_shape()
            self._tensor = pyspiel.State.information_state_tensor
        else:
            tensor_shape = game.observation_tensor_shape()
            self._tensor = pyspiel.State.observation_tensor
        seats = self.num_players if self.seat_one_hot else 0
        self._planes = tuple(int(d) for d in tensor_shape) if len(tensor_shape) == 3 else None
        """(C, H, W) of a board game's tensor; None for a flat one."""
        if self._planes is not None:
            channels, height, width = self._planes
            self.shape = (height, width, channels + seats)
        else:
            self.shape = (int(np.prod(tensor_shape)) + seats,)
        """Shape of the observation (HxWxC planes, or a vector)."""
        self.size = int(np.prod(self.shape))
        """Number of scalars in the observation."""

    def space(self) -> gym.spaces.Dict:
        """The Dict observation space of one player (the same for every seat)."""
        return gym.spaces.Dict({
            OBS_KEY: gym.spaces.Box(-np.inf, np.inf, shape=self.shape, dtype=np.float32),
            MASK_KEY: gym.spaces.Box(0.0, 1.0, shape=(self.num_actions,), dtype=np.float32),
        })

    def vector(self, state: pyspiel.State, player: int) -> np.ndarray:
        """The float32 array of ``shape`` that a module reads for ``player`` at ``state``."""
        tensor = np.asarray(self._tensor(state, player), dtype=np.float32)
        out = np.zeros(self.shape, dtype=np.float32) if self.seat_one_hot else None
        if self._planes is not None:
            planes = tensor.reshape(self._planes).transpose(1, 2, 0)
            if out is None:
                return np.ascontiguousarray(planes)
            channels = self._planes[0]
            out[..., :channels] = planes
            out[..., channels + player] = 1.0
            return out
        if out is None:
            return tensor
        out[:tensor.size] = tensor
        out[tensor.size + player] = 1.0
        return out

    def mask(self, state: pyspiel.State, player: int) -> np.ndarray:
        """1.0 at ``player``'s legal actions, 0.0 elsewhere (all zero when it may not act)."""
        return np.asarray(state.legal_actions_mask(player), dtype=np.float32)

    def encode(self, state: pyspiel.State, player: int) -> dict[str, np.ndarray]:
        """The env observation of ``player``: vector plus legal-action mask."""
        return {OBS_KEY: self.vector(state, player), MASK_KEY: self.mask(state, player)}
