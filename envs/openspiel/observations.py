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

The tensor is read through pyspiel's buffered observer (``make_observation``), which writes
into a numpy buffer instead of building a list of Python floats on every call; the env does
this every step. The observer API and the state's tensor methods are two code paths in
OpenSpiel, so the observer is used only for games where a few seeded random playouts showed
it gives exactly what the state's method gives (checked once per game and type).
"""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import pyspiel
from open_spiel.python.observation import make_observation

from marl_arena_envs.openspiel.games import game_label

OBSERVATION_TYPES = ("auto", "information_state", "observation")
OBS_KEY = "observation"
MASK_KEY = "action_mask"

logger = logging.getLogger(__name__)

_TENSOR_METHODS = {"information_state": pyspiel.State.information_state_tensor,
                   "observation": pyspiel.State.observation_tensor}


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
        else:
            tensor_shape = game.observation_tensor_shape()
        self._tensor = _TENSOR_METHODS[observation_type]
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
        # The tensor's scalars in the order of the HxWxC observation (planes), for one copying gather.
        self._hwc = None if self._planes is None else np.arange(int(np.prod(self._planes))).reshape(
            self._planes).transpose(1, 2, 0).ravel()
        self._observation = _buffered_observation(game, observation_type)
        """pyspiel's observer writing the tensor into a numpy buffer (no list of Python floats per call),
        where it was checked to give what the state's tensor method gives; else None."""

    def space(self) -> gym.spaces.Dict:
        """The Dict observation space of one player (the same for every seat)."""
        return gym.spaces.Dict({
            OBS_KEY: gym.spaces.Box(-np.inf, np.inf, shape=self.shape, dtype=np.float32),
            MASK_KEY: gym.spaces.Box(0.0, 1.0, shape=(self.num_actions,), dtype=np.float32),
        })

    def vector(self, state: pyspiel.State, player: int) -> np.ndarray:
        """The float32 array of ``shape`` that a module reads for ``player`` at ``state`` (a new array)."""
        if self._observation is not None:
            self._observation.set_from(state, player)
            tensor = self._observation.tensor  # the observer's own buffer: every path below copies it
        else:
            tensor = np.asarray(self._tensor(state, player), dtype=np.float32)
        out = np.zeros(self.shape, dtype=np.float32) if self.seat_one_hot else None
        if self._planes is not None:
            if out is None:
                return tensor[self._hwc].reshape(self.shape)
            channels = self._planes[0]
            out[..., :channels] = tensor.reshape(self._planes).transpose(1, 2, 0)
            out[..., channels + player] = 1.0
            return out
        if out is None:
            return tensor.copy() if self._observation is not None else tensor
        out[:tensor.size] = tensor
        out[tensor.size + player] = 1.0
        return out

    def mask(self, state: pyspiel.State, player: int) -> np.ndarray:
        """1.0 at ``player``'s legal actions, 0.0 elsewhere (all zero when it may not act)."""
        return np.asarray(state.legal_actions_mask(player), dtype=np.float32)

    def encode(self, state: pyspiel.State, player: int) -> dict[str, np.ndarray]:
        """The env observation of ``player``: vector plus legal-action mask."""
        return {OBS_KEY: self.vector(state, player), MASK_KEY: self.mask(state, player)}


_CHECK_PLAYOUTS = 3
_CHECK_MOVES = 40
_checked_observers: dict[tuple[str, str], bool] = {}  # (game, observation type) -> the observer agrees


def _observer_matches(game: pyspiel.Game, observation_type: str) -> bool:
    """Whether pyspiel's observer for ``observation_type`` writes what the state's tensor method returns.

    Checked once per game (and type) over a few seeded random playouts, every seat at every
    decision node.
    """
    key = (str(game), observation_type)
    if key not in _checked_observers:
        _checked_observers[key] = _check_observer(game, observation_type)
    return _checked_observers[key]


def _check_observer(game: pyspiel.Game, observation_type: str) -> bool:
    observation = _make_observation(game, observation_type)
    if observation is None:
        return False
    tensor_of = _TENSOR_METHODS[observation_type]
    rng = np.random.default_rng(0)
    try:
        for _ in range(_CHECK_PLAYOUTS):
            state = game.new_initial_state()
            for _ in range(_CHECK_MOVES):
                if state.is_terminal():
                    break
                if not state.is_chance_node():
                    for player in range(game.num_players()):
                        observation.set_from(state, player)
                        if not np.array_equal(observation.tensor, np.asarray(tensor_of(state, player), np.float32)):
                            return False
                _random_move(state, rng)
    except Exception:  # noqa: BLE001 - any failure of the observer path means: use the state's method
        logger.debug("observer check of %s failed; using the state's tensor method", game, exc_info=True)
        return False
    return True


def _make_observation(game: pyspiel.Game, observation_type: str):
    """pyspiel's buffered observation of ``observation_type`` (None where the game offers none)."""
    try:
        iig_type = pyspiel.IIGObservationType(perfect_recall=observation_type == "information_state")
        observation = make_observation(game, iig_type)
    except Exception:  # noqa: BLE001 - games without an observer for this type raise or return None
        return None
    tensor = getattr(observation, "tensor", None)
    if tensor is None or tensor.dtype != np.float32 or tensor.ndim != 1:
        return None
    return observation


def _buffered_observation(game: pyspiel.Game, observation_type: str):
    return _make_observation(game, observation_type) if _observer_matches(game, observation_type) else None


def _random_move(state: pyspiel.State, rng: np.random.Generator) -> None:
    if state.is_chance_node():
        outcomes, probs = zip(*state.chance_outcomes())
        p = np.asarray(probs, dtype=np.float64)
        state.apply_action(int(outcomes[rng.choice(len(outcomes), p=p / p.sum())]))
    elif state.is_simultaneous_node():
        state.apply_actions([int(rng.choice(state.legal_actions(p))) for p in range(state.num_players())])
    else:
        state.apply_action(int(rng.choice(state.legal_actions())))

