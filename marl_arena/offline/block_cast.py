"""What Ray Data's workers run on each block the reader streams: the learner's column types.

This module and what it imports (pyarrow, NumPy, ``rllib_packed``) stay free of torch and of
the rest of marl_arena: every worker process that runs a read task imports it, and torch
alone would add a few hundred MB to each of them and seconds to its start.
"""

from __future__ import annotations

import pyarrow as pa

from marl_arena.offline.rllib_packed import is_packed, unpack_column

PATH_COLUMN = "path"
"""Ray Data's name for the file-path column that ``read_parquet(include_paths=True)`` adds."""

WORKER_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"}
"""The environment of the workers that read and cast while streaming, so that a stream's memory
is what its blocks in flight take: Arrow's default pool (mimalloc or jemalloc) keeps freed pages
for reuse, and a worker that streamed a few files' blocks would hold their size long after
(hundreds of MB each); the system allocator, with large blocks mapped and unmapped and few
arenas, gives them back."""


def to_learner_types(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The columns of ``schema`` in its types (RLlib's packed arrays unpacked, tensor columns as their
    lists); the file path rides along for error messages."""
    columns = []
    for field in schema:
        column = table[field.name]
        if is_packed(column.type) and pa.types.is_list(field.type):
            column = unpack_column(column, field.name, table[PATH_COLUMN].to_numpy(zero_copy_only=False))
        elif isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
        columns.append(column.cast(field.type))
    return pa.table([*columns, table[PATH_COLUMN]], names=[*schema.names, PATH_COLUMN])
