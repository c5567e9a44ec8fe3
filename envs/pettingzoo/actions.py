"""Checking an agent's action against its action space and action mask before PettingZoo sees it.

PettingZoo's own checks are uneven: classic games wrapped in ``TerminateIllegalWrapper`` end
the game with a penalty and only a warning, ``AssertOutOfBoundsWrapper`` raises a bare
AssertionError, and an unwrapped env may index out of range or corrupt its state silently.
Self-play learning with such an env is wrong without anyone noticing, so the adapters check
every action first, with one cheap test per action, and raise ``IllegalActionError``
naming the game, the agent and the action.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import gymnasium as gym
import numpy as np

MASK_KEY = "action_mask"

ActionCheck = Callable[[Any], Any]
"""``check(action) -> the action as the env wants it``; raises ``_Rejected(reason)``."""


class IllegalActionError(ValueError):
    """An action outside the agent's action space or its action mask."""


class _Rejected(Exception):
    """Internal: why a check refused an action (turned into an ``IllegalActionError``)."""


def illegal_action(game: str, agent: Any, action: Any, reason: str) -> IllegalActionError:
    return IllegalActionError(f"Illegal action {action!r} for agent {agent!r} in PettingZoo game {game!r}: {reason}.")


def action_check(space: gym.Space) -> ActionCheck:
    """A fast checker for actions in ``space``, built once per agent."""
    if isinstance(space, gym.spaces.Discrete):
        return _discrete_check(space)
    if isinstance(space, gym.spaces.Box):
        return _box_check(space)

    def check(action: Any) -> Any:
        if not space.contains(action):
            raise _Rejected(f"it is not in the action space {space}")
        return action

    return check


def _discrete_check(space: gym.spaces.Discrete) -> ActionCheck:
    low = int(space.start)
    high = low + int(space.n)

    def check(action: Any) -> int:
        if type(action) is not int:
            try:
                action = operator.index(action)  # numpy integers and 0-d integer arrays
            except TypeError:
                raise _Rejected(
                    f"it is not an integer (got {type(action).__name__}); the action space is {space}"
                ) from None
        if not low <= action < high:
            raise _Rejected(f"it is outside the action space {space}")
        return action

    return check


def _box_check(space: gym.spaces.Box) -> ActionCheck:
    low, high, shape, dtype = space.low, space.high, space.shape, space.dtype

    def check(action: Any) -> np.ndarray:
        try:
            array = np.asarray(action, dtype=dtype)
        except (TypeError, ValueError):
            raise _Rejected(f"it cannot be read as an array of {dtype}; the action space is {space}") from None
        if array.shape != shape:
            if array.size != low.size:
                raise _Rejected(f"its shape {array.shape} does not fit the action space {space}")
            array = array.reshape(shape)
        # Written so that NaN fails too.
        if not ((array >= low).all() and (array <= high).all()):
            raise _Rejected(
                f"it is outside the bounds of the action space {space} (marl_arena clips sampled "
                "actions to the bounds when config.environment(clip_actions=True))"
            )
        return array

    return check


def mask_violation(mask: np.ndarray, index: int) -> str | None:
    """Why ``index`` is not allowed by ``mask``, or None if it is allowed."""
    if mask[index]:
        return None
    legal = np.flatnonzero(np.asarray(mask)).tolist()
    return f"its action mask allows only {legal}" if legal else "its action mask allows no action at all"


def masked_agents(observation_spaces: dict[Any, gym.Space]) -> set:
    """Agents whose observations are PettingZoo-style ``{"observation", "action_mask"}`` dicts."""
    return {
        agent
        for agent, space in observation_spaces.items()
        if isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces
    }


def discrete_start(space: gym.Space) -> int | None:
    """The first action of a Discrete space (mask index = action - start); None otherwise."""
    return int(space.start) if isinstance(space, gym.spaces.Discrete) else None
