"""Offline data: episodes as Parquet files (RLlib's column names), written by runners, read through Ray Data."""

from marl_arena.offline.reader import OfflineReader, resolve_paths
from marl_arena.offline.schema import ModuleLayout, OfflineDataError
from marl_arena.offline.writer import EpisodeWriter

__all__ = ["EpisodeWriter", "ModuleLayout", "OfflineDataError", "OfflineReader", "resolve_paths"]
