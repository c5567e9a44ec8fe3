"""Checkpoint files: one directory, each file written atomically, every failure named.

    metadata.json         format version, algorithm class, iteration
    config.pkl            the AlgorithmConfig (cloudpickle: it may hold lambdas)
    learner_state.pt      module weights, optimizer states, learner RNG and extra state
    algorithm_state.json  counters (iteration, lifetime steps, time)
    extra_state.pkl       algorithm-specific state (replay RNG, replay buffers), only if it has any
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pathlib
import pickle
import tempfile
from typing import Any

import cloudpickle
import torch

FORMAT = "marl_arena.algorithm"
FORMAT_VERSION = 1
METADATA = "metadata.json"
CONFIG = "config.pkl"
LEARNER_STATE = "learner_state.pt"
ALGORITHM_STATE = "algorithm_state.json"
EXTRA_STATE = "extra_state.pkl"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, corrupt or from an unknown format."""


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def write_checkpoint(path: str | os.PathLike, algorithm_class: type, config: Any,
                     learner_state: dict, algorithm_state: dict, marl_arena_version: str,
                     extra_state: dict | None = None) -> str:
    directory = pathlib.Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(learner_state, buffer)
    _atomic_write(directory / LEARNER_STATE, buffer.getvalue())
    _atomic_write(directory / CONFIG, cloudpickle.dumps(config))
    _atomic_write(directory / ALGORITHM_STATE, json.dumps(algorithm_state, indent=2).encode())
    if extra_state:
        _atomic_write(directory / EXTRA_STATE, pickle.dumps(extra_state, protocol=pickle.HIGHEST_PROTOCOL))
    elif (directory / EXTRA_STATE).exists():
        (directory / EXTRA_STATE).unlink()  # an older checkpoint's, in the same directory
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algorithm": object_path(algorithm_class),
        "marl_arena_version": marl_arena_version,
        "iteration": algorithm_state.get("iteration"),
    }
    # Metadata last: a checkpoint with metadata is a complete one.
    _atomic_write(directory / METADATA, json.dumps(metadata, indent=2).encode())
    return str(directory)


def _read(directory: pathlib.Path, name: str, load):
    file = directory / name
    if not file.exists():
        raise CheckpointError(f"Checkpoint {directory} is incomplete: {name} is missing.")
    try:
        return load(file)
    except Exception as error:
        raise CheckpointError(f"Checkpoint file {file} is corrupt or unreadable: {type(error).__name__}: {error}") from error


def read_metadata(path: str | os.PathLike) -> dict:
    directory = pathlib.Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"No checkpoint directory at {directory}.")
    metadata = _read(directory, METADATA, lambda f: json.loads(f.read_text()))
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{directory / METADATA} is not a marl_arena algorithm checkpoint.")
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {directory} has format version {metadata['format_version']}; this marl_arena "
            f"reads up to {FORMAT_VERSION}. Upgrade marl_arena to load it."
        )
    return metadata


def import_object(path: str) -> Any:
    """The object at ``"package.module:Qualified.name"`` (how checkpoints and stores name classes)."""
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def object_path(obj: Any) -> str:
    """The ``"module:qualname"`` path that ``import_object`` reads back."""
    return f"{obj.__module__}:{obj.__qualname__}"


def read_algorithm_class(metadata: dict) -> type:
    try:
        return import_object(metadata["algorithm"])
    except (ImportError, AttributeError) as error:
        raise CheckpointError(f"Checkpoint names algorithm {metadata['algorithm']!r}, which cannot be imported: {error}") from error


def read_config(path: str | os.PathLike) -> Any:
    return _read(pathlib.Path(path), CONFIG, lambda f: cloudpickle.loads(f.read_bytes()))


def read_learner_state(path: str | os.PathLike) -> dict:
    return _read(pathlib.Path(path), LEARNER_STATE, lambda f: torch.load(f, map_location="cpu", weights_only=False))


def read_algorithm_state(path: str | os.PathLike) -> dict:
    return _read(pathlib.Path(path), ALGORITHM_STATE, lambda f: json.loads(f.read_text()))


def read_extra_state(path: str | os.PathLike) -> dict:
    """The algorithm's extra state; {} for a checkpoint written without any."""
    directory = pathlib.Path(path)
    if not (directory / EXTRA_STATE).exists():
        return {}
    return _read(directory, EXTRA_STATE, lambda f: pickle.loads(f.read_bytes()))
