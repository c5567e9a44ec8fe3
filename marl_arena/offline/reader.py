"""OfflineReader: Parquet episode files streamed through Ray Data as per-module learner batches.

Every file's schema is checked when the reader is built (a footer read, no data): a
missing or mistyped column fails at once, naming the file and the column, instead of
deep inside a training run. Row shapes are checked batch by batch as they arrive, against
the module each row names; Ray Data adds each row's file path, so those errors name the
file too.

Batches are drawn one at a time from a Ray Data stream (``iter_batches``): memory holds a
few batches, never the dataset. The stream's blocks are small (``STREAM_BLOCK_BYTES``), the
object store memory they may take is capped (``STREAM_OBJECT_STORE_BYTES``), and the workers
that read and cast run with an allocator that gives freed memory back
(``block_cast.WORKER_ENV``); ``map_batches_kwargs={"concurrency": 1}`` keeps one such worker
instead of one per CPU. A stream that finds no Ray running starts one whose own workers have
that environment (``streaming_ray.start_streaming_ray``), so it runs in them. Each streamed
pass over the data is one Ray Data execution, whose start costs a second or two: small
datasets pay it often. (Streaming the file list several
times over in one execution does not work around it: Ray Data 2.60 reads a file named many
times only once.) Materialized data (``materialize``) is read and cast in one execution; its
blocks are then fetched once and sliced here, so a pass starts none. A batch leaves as one batch per module in the runners'
segment layout: each agent's rows of an episode in step order, and every place where a
trajectory is cut (the batch ends, or rows in between are elsewhere) marked truncated, so
learners bootstrap there just as they do at a rollout fragment's end.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import DEFAULT_MODULE_ID
from marl_arena.offline.block_cast import PATH_COLUMN, WORKER_ENV, to_learner_types
from marl_arena.offline.schema import (
    OPTIONAL, REQUIRED, VECTOR_COLUMNS, ModuleLayout, OfflineDataError, check_schema, learner_schema,
)
from marl_arena.offline.streaming_ray import start_streaming_ray, workers_have_stream_env

logger = logging.getLogger(__name__)

Batches = dict[str, dict[str, np.ndarray]]

STREAM_BLOCK_BYTES = 16 * 2**20
"""Streaming: the largest block Ray Data builds (its default, 128 MiB, is many learner batches)."""
STREAM_OBJECT_STORE_BYTES = 64 * 2**20
"""Streaming: the object store memory the stream's blocks in flight may take (by default Ray Data
fills up to half the store ahead of a learner that consumes more slowly than files are read)."""


def resolve_paths(input_: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The Parquet files that ``input_`` names: files, directories (their ``*.parquet``,
    recursively) and glob patterns, or a list of these; sorted, each once."""
    entries = [input_] if isinstance(input_, (str, os.PathLike)) else list(input_)
    if not entries:
        raise OfflineDataError("offline_data(input_=[]) names no files.")
    paths: list[str] = []
    for entry in entries:
        if not isinstance(entry, (str, os.PathLike)):
            raise OfflineDataError(f"offline_data(input_=...) entries must be paths or globs, got {entry!r}.")
        entry = os.fspath(entry)
        if os.path.isdir(entry):
            found = sorted(str(p) for p in Path(entry).rglob("*.parquet") if not p.name.startswith("."))
        elif glob.has_magic(entry):
            found = sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
        elif os.path.isfile(entry):
            found = [entry]
        else:
            raise OfflineDataError(f"{entry}: no such file or directory (offline_data(input_=...)).")
        if not found:
            raise OfflineDataError(f"{entry}: matches no Parquet files (offline_data(input_=...)).")
        paths += [p for p in found if p not in paths]
    return paths


def read_metadata(path: str) -> pq.FileMetaData:
    """The file's footer, its schema checked; OfflineDataError naming the file if it is not Parquet."""
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError) as error:
        raise OfflineDataError(f"{path}: not a readable Parquet file ({error}).") from error
    check_schema(path, metadata.schema.to_arrow_schema())
    return metadata


class OfflineReader:
    """Streams ``batch_size``-row batches of the files ``input_`` names, epoch after epoch."""

    def __init__(self, input_: Any, layouts: dict[str, ModuleLayout], batch_size: int,
                 map_batches_kwargs: dict | None = None, iter_batches_kwargs: dict | None = None,
                 materialize: bool = False):
        self.paths = resolve_paths(input_)
        self._layouts = layouts
        self._batch_size = batch_size
        self._map_batches_kwargs = dict(map_batches_kwargs or {})
        self._iter_batches_kwargs = dict(iter_batches_kwargs or {})
        self._materialize = materialize
        self.num_rows = 0
        """Rows in the dataset: one pass over the data."""
        self._schema = self._common_schema()
        if self.num_rows == 0:
            raise OfflineDataError(f"{self.paths[0]} ...: the offline data has no rows ({len(self.paths)} files).")
        self._dataset = None
        self._blocks: list[pa.Table] | None = None
        self._batches: Iterator[pa.Table] | None = None
        self.rows_read = 0
        self.epochs = 0
        """Complete passes over the data so far."""

    def _common_schema(self) -> pa.Schema:
        """The learner-side schema all files share (the first file that differs is named); counts the rows."""
        first = None
        for path in self.paths:
            metadata = read_metadata(path)
            self.num_rows += metadata.num_rows
            schema = learner_schema(metadata.schema.to_arrow_schema())
            if first is None:
                first = schema
                continue
            for name in sorted(set(first.names) ^ set(schema.names)):
                where, other = (path, self.paths[0]) if name in schema.names else (self.paths[0], path)
                raise OfflineDataError(f"{where}: has column {name!r}, which {other} lacks; all files must "
                                       "have the same columns.")
            for field in schema:
                if field.type != first.field(field.name).type:
                    raise OfflineDataError(f"{path}: column {field.name!r} has type {field.type}, but "
                                           f"{first.field(field.name).type} in {self.paths[0]}.")
        return first

    # ------------------------------------------------------------------ streaming
    def _build_dataset(self):
        """The Ray Data pipeline: read the known columns, cast them to the learner's types (and, with
        ``materialize``, run it once and keep its blocks, so a pass costs no reading and no execution start)."""
        import ray

        from marl_arena.runners.resources import ensure_ray

        if self._materialize:
            ensure_ray()
        else:
            start_streaming_ray()
        # Workers with an environment of their own start fresh (seconds, and a process each); only a
        # stream needs it, and not when Ray's own workers were started with it.
        worker = {} if self._materialize or workers_have_stream_env() else {
            "runtime_env": {"env_vars": dict(WORKER_ENV)}}
        # Ray Data's V2 Parquet source lists the files by reading every footer again on new actors
        # (up to 32 processes of ~100 MB, each execution); the reader has read the footers already,
        # and the V1 source reads without them: an execution starts in a fraction of the time, and a
        # stream takes hundreds of MB less.
        context = ray.data.DataContext.get_current()
        use_v2 = context.use_datasource_v2
        context.use_datasource_v2 = False
        try:
            dataset = ray.data.read_parquet(self.paths, include_paths=True, **worker)
        finally:
            context.use_datasource_v2 = use_v2
        dataset = dataset.select_columns([*self._schema.names, PATH_COLUMN])
        dataset = dataset.map_batches(to_learner_types, batch_format="pyarrow", fn_kwargs={"schema": self._schema},
                                      **{**worker, **self._map_batches_kwargs})
        # What to_learner_types raises (a packed value that does not unpack) reaches the caller as itself, the
        # file and column named, not as Ray Data's generic "UDF failed" without its cause.
        dataset.context.raise_original_map_exception = True
        if self._materialize:
            return dataset.materialize()
        # A stream keeps a few small blocks in flight, not as many as Ray's object store holds.
        dataset.context.target_max_block_size = STREAM_BLOCK_BYTES
        dataset.context.execution_options.resource_limits = ray.data.ExecutionResources(
            object_store_memory=STREAM_OBJECT_STORE_BYTES)
        return dataset

    def next_batches(self) -> Batches | None:
        """The next batch, by module id; None once a pass is over (the next call starts another)."""
        try:
            if self._batches is None:
                if self._dataset is None:
                    self._dataset = self._build_dataset()
                self._batches = self._pass()
            table = next(self._batches, None)
        except Exception as error:
            # Ray Data wraps what to_learner_types raises in its workers; the data error is what the user needs.
            cause = _data_error(error)
            if cause is None:
                raise
            self._batches = None
            raise cause from None
        if table is None:
            self._batches = None
            self.epochs += 1
            logger.debug("pass %d over %d files (%d rows) done", self.epochs, len(self.paths), self.num_rows)
            return None
        self.rows_read += table.num_rows
        return decode(table, self._layouts)

    def _pass(self) -> Iterator[pa.Table]:
        """One pass's batches: a Ray Data stream, or, for materialized data read without
        ``iter_batches_kwargs``, slices of its kept blocks fetched once, so a pass starts no execution."""
        if self._materialize and not self._iter_batches_kwargs:
            if self._blocks is None:
                import ray

                self._blocks = [block for block in ray.get(self._dataset.to_arrow_refs()) if block.num_rows]
            return _slices(self._blocks, self._batch_size)
        return iter(self._dataset.iter_batches(batch_size=self._batch_size, batch_format="pyarrow",
                                               **self._iter_batches_kwargs))

    def close(self) -> None:
        """End the current pass (Ray Data's iterator must finish while Ray still runs)."""
        if self._batches is not None:
            self._batches.close()
            self._batches = None

    def iterate(self, num_batches: int | None) -> Iterator[Batches]:
        """``num_batches`` batches (starting new passes as needed), or the rest of this pass when None."""
        drawn = 0
        while num_batches is None or drawn < num_batches:
            batches = self.next_batches()
            if batches is None:
                if num_batches is None and drawn:
                    return
                batches = self.next_batches()  # a new pass; the data has rows, so it has a batch
            drawn += 1
            yield batches


def _slices(tables: list[pa.Table], batch_size: int) -> Iterator[pa.Table]:
    """Consecutive ``batch_size``-row batches across ``tables`` in order, the last one shorter, as
    Ray Data's ``iter_batches`` cuts them."""
    pending: list[pa.Table] = []
    rows = 0
    for table in tables:
        offset = 0
        while offset < table.num_rows:
            take = min(batch_size - rows, table.num_rows - offset)
            pending.append(table.slice(offset, take))
            rows += take
            offset += take
            if rows == batch_size:
                yield pa.concat_tables(pending).combine_chunks()
                pending, rows = [], 0
    if rows:
        yield pa.concat_tables(pending).combine_chunks()


def _data_error(error: BaseException) -> OfflineDataError | None:
    """The innermost OfflineDataError in an exception's chain of causes (Ray's wrapper of one is an
    OfflineDataError too, but its message carries the worker's traceback), if there is one."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OfflineDataError):
            found = error
        seen.add(id(error))
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return found


# ---------------------------------------------------------------------- one batch
def decode(table: pa.Table, layouts: dict[str, ModuleLayout]) -> Batches:
    """Split a batch by module id, check every row's shapes, and lay it out as segments."""
    paths = table[PATH_COLUMN].to_numpy(zero_copy_only=False)
    if Columns.MODULE_ID in table.column_names:
        module_ids = table[Columns.MODULE_ID].to_numpy(zero_copy_only=False)
    else:
        module_ids = np.full(table.num_rows, DEFAULT_MODULE_ID, dtype=object)
    out: Batches = {}
    for module_id in np.unique(module_ids):
        rows = np.flatnonzero(module_ids == module_id)
        layout = layouts.get(module_id)
        if layout is None:
            raise OfflineDataError(f"{paths[rows[0]]}: column {Columns.MODULE_ID!r} names module {module_id!r}, "
                                   f"which is not one of this algorithm's modules {sorted(layouts)}.")
        out[module_id] = _module_batch(table.take(pa.array(rows)), layout, paths[rows])
    return out


def _vectors(column: pa.ChunkedArray, name: str, width: int, paths: np.ndarray) -> np.ndarray:
    """A list column as a (rows, width) float32 array; the first row of another width is named."""
    array = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(array), -1).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(lengths != width)
    if len(wrong):
        row = wrong[0]
        raise OfflineDataError(f"{paths[row]}: column {name!r} holds a vector of length {lengths[row]} "
                               f"(-1: null) where this module needs {width}.")
    return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), width)


def _module_batch(table: pa.Table, layout: ModuleLayout, paths: np.ndarray) -> dict[str, np.ndarray]:
    for name in table.column_names:
        if name != PATH_COLUMN and table[name].null_count:
            row = int(np.flatnonzero(table[name].is_null().to_numpy(zero_copy_only=False))[0])
            raise OfflineDataError(f"{paths[row]}: column {name!r} has empty (null) values.")
    widths = {Columns.OBS: layout.obs_dim, Columns.NEXT_OBS: layout.obs_dim, Columns.ACTION_MASK: layout.num_actions}
    batch = {}
    for name in table.column_names:
        if name in VECTOR_COLUMNS:
            if widths[name] is None:
                raise OfflineDataError(f"{paths[0]}: column {name!r} is there, but this module's actions are not "
                                       "Discrete, so it can have no action mask.")
            batch[name] = _vectors(table[name], name, widths[name], paths)
        elif name != Columns.ACTIONS and (name in REQUIRED or name in OPTIONAL):
            batch[name] = table[name].to_numpy(zero_copy_only=False)
    batch[Columns.ACTIONS] = _actions(table[Columns.ACTIONS], layout, paths)
    return _as_segments(batch)


def _actions(column: pa.ChunkedArray, layout: ModuleLayout, paths: np.ndarray) -> np.ndarray:
    if layout.num_actions is None:
        if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
            return _vectors(column, Columns.ACTIONS, layout.action_dim, paths)
        if layout.action_dim == 1 and pa.types.is_floating(column.type):
            return column.to_numpy().reshape(-1, 1)
        raise OfflineDataError(f"{paths[0]}: column {Columns.ACTIONS!r} has type {column.type}; this module's "
                               f"Box actions need vectors of {layout.action_dim} numbers.")
    if not pa.types.is_integer(column.type):
        raise OfflineDataError(f"{paths[0]}: column {Columns.ACTIONS!r} has type {column.type}; this module's "
                               "Discrete actions need integers.")
    actions = column.to_numpy()
    wrong = np.flatnonzero((actions < 0) | (actions >= layout.num_actions))
    if len(wrong):
        raise OfflineDataError(f"{paths[wrong[0]]}: column {Columns.ACTIONS!r} holds action {actions[wrong[0]]}, "
                               f"outside this module's Discrete({layout.num_actions}).")
    return actions


def _as_segments(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rows ordered by (episode, agent, step); ids and steps dropped; cuts marked truncated."""
    n = len(batch[Columns.REWARDS])
    episodes = np.unique(batch.pop(Columns.EPS_ID), return_inverse=True)[1]
    agent_ids = batch.pop(Columns.AGENT_ID, None)
    agents = np.zeros(n, np.int64) if agent_ids is None else np.unique(agent_ids, return_inverse=True)[1]
    steps = batch.pop(Columns.T, None)
    steps = np.arange(n) if steps is None else steps
    batch.pop(Columns.MODULE_ID, None)
    order = np.lexsort((steps, agents, episodes))  # stable: without `t`, the data's order
    batch = {key: value[order] for key, value in batch.items()}
    episodes, agents, steps = episodes[order], agents[order], steps[order]
    continues = np.zeros(n, dtype=bool)
    continues[:-1] = (episodes[1:] == episodes[:-1]) & (agents[1:] == agents[:-1]) & (steps[1:] == steps[:-1] + 1)
    ends = ~continues | batch[Columns.TERMINATEDS] | batch[Columns.TRUNCATEDS]
    batch[Columns.TRUNCATEDS] = batch[Columns.TRUNCATEDS] | (ends & ~batch[Columns.TERMINATEDS])
    return batch
