"""Offline data: episodes as Parquet files (RLlib's column names), written by runners, read through Ray Data.

The names below load on first use: Ray Data's workers import ``marl_arena.offline.block_cast``,
and importing this package must not pull the reader, and with it torch, into each of them.
"""

import importlib

_EXPORTS = {
    "EpisodeWriter": "marl_arena.offline.writer",
    "ModuleLayout": "marl_arena.offline.schema",
    "OfflineDataError": "marl_arena.offline.errors",
    "OfflineReader": "marl_arena.offline.reader",
    "resolve_paths": "marl_arena.offline.reader",
    "start_streaming_ray": "marl_arena.offline.streaming_ray",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'marl_arena.offline' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
