"""Module specs as JSON, so a reader of the store can rebuild any player without the league's code.

A snapshot in the store is only weights; a scripted player is only a class path. To play
against either (the dashboard does), a reader needs the spec the league built them from:
module class, observation and action spaces, model config. The league writes that spec
into the store's game record (``LeagueStore.set_game``); ``load_player_module`` reads it
back and builds the player exactly as the league seats it in its runners.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from marl_arena.algorithms.checkpoints import import_object, object_path
from marl_arena.core.rl_module import RLModule, RLModuleSpec
from marl_arena.league.store import LeagueStore, StoreError


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """A JSON-ready description of the spaces modules read and act in (Box, Discrete, ..., Dict, Tuple)."""
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _compact(space.low), "high": _compact(space.high)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_json(sub) for key, sub in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(sub) for sub in space.spaces]}
    raise ValueError(f"Cannot describe a {type(space).__name__} space as JSON: {space}.")


def space_from_json(data: dict[str, Any]) -> gym.Space:
    """The space that ``space_to_json`` described."""
    kind = data["type"]
    if kind == "Box":
        shape, dtype = tuple(data["shape"]), np.dtype(data["dtype"])
        low, high = (np.broadcast_to(np.asarray(data[end], dtype=dtype), shape) for end in ("low", "high"))
        return gym.spaces.Box(low, high, shape=shape, dtype=dtype)
    if kind == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data.get("start", 0))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(data["nvec"])
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(data["n"])
    if kind == "Dict":
        return gym.spaces.Dict({key: space_from_json(sub) for key, sub in data["spaces"].items()})
    if kind == "Tuple":
        return gym.spaces.Tuple([space_from_json(sub) for sub in data["spaces"]])
    raise ValueError(f"Unknown space type {kind!r} in a stored module spec.")


def _compact(bound: np.ndarray) -> Any:
    """A Box bound as one number when all its entries are equal (the common case), else a list."""
    flat = np.asarray(bound, dtype=np.float64).ravel()
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return np.asarray(bound, dtype=np.float64).tolist()


def spec_to_json(spec: RLModuleSpec) -> dict[str, Any]:
    """A JSON-ready description of a built spec (module class by import path)."""
    config = spec.model_config
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return {"module_class": object_path(spec.module_class),
            "observation_space": space_to_json(spec.observation_space),
            "action_space": space_to_json(spec.action_space),
            "model_config": config}


def spec_from_json(data: dict[str, Any]) -> RLModuleSpec:
    """The spec that ``spec_to_json`` described, built for inference."""
    return RLModuleSpec(module_class=import_object(data["module_class"]),
                        observation_space=space_from_json(data["observation_space"]),
                        action_space=space_from_json(data["action_space"]),
                        model_config=data.get("model_config"))


def player_spec(base: RLModuleSpec, kind: str, metadata: dict[str, Any]) -> RLModuleSpec:
    """The spec a league seats a player with: the trainers' spec, or a scripted player's own class.

    A scripted player has no network, so it takes the trainers' spaces but not their model
    config: a trainer's config may hold settings only its own module class knows (a DQN
    trainer's ``num_atoms``, ``noisy``, ...), which a scripted class reading the default
    config rejects once the config comes back from the store as a plain dict.
    """
    if kind == "scripted":
        return dataclasses.replace(base, module_class=import_object(metadata["module_class"]), model_config=None)
    return dataclasses.replace(base)


def load_player_module(store: LeagueStore, player_id: str) -> RLModule:
    """Player ``player_id`` of a stored league as an inference module, weights loaded.

    Snapshots (and trainable players whose weights were stored) load their weights;
    scripted players need none. Raises ``StoreError`` saying why when it cannot be done.
    """
    game = store.game()
    if game is None or "module_spec" not in game:
        raise StoreError(f"The league in {store.directory} recorded no module spec (it predates that record); "
                         "run the league once more with this marl_arena to record it.")
    kinds = {p.id: p.kind for p in store.players()}
    if player_id not in kinds:
        raise StoreError(f"No player {player_id!r} in {store.path}.")
    base = spec_from_json(game["module_spec"])
    spec = player_spec(base, kinds[player_id], store.player_metadata(player_id))
    module = spec.build()
    if kinds[player_id] != "scripted":
        digest = store.player_snapshot(player_id)
        if digest is None:
            raise StoreError(f"Player {player_id!r} ({kinds[player_id]}) has no weights in the store; "
                             "play against one of its snapshots.")
        module.load_state_dict(store.load_snapshot(digest))
    module.eval()
    return module
