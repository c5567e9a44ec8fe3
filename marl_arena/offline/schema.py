"""The offline episode table: its columns, their Arrow types, and the checks a file must pass.

One row per agent step, with RLlib's tabular column names (``Columns``):

* ``eps_id`` (string), ``agent_id`` (string: ``str()`` of the env's agent id, so int and
  str ids share one type), ``module_id`` (string), ``t`` (int64: the agent's own step
  index in the episode; in a turn-based game it counts that agent's moves only);
* ``obs``, ``new_obs``: the row the module reads (after mask splitting and flattening),
  ``fixed_size_list<float32>[d]``. A Dict observation ``{"observation", "action_mask"}``
  is stored as its flattened ``observation`` in ``obs``/``new_obs`` and its mask in
  ``action_mask`` (``fixed_size_list<float32>[n]``, the mask the action was chosen under);
* ``actions``: int64 for a Discrete space, ``fixed_size_list<float32>[k]`` for a Box;
* ``rewards`` (float32), ``terminateds``, ``truncateds`` (bool; only an agent's last row
  of an episode may set either), ``action_logp`` (float32, where the writer had it).

Readers accept what other writers produce too: ids as integers, variable-length lists,
float64 or integer numbers, and RLlib's tabular recordings (``output_write_episodes=False``):
vectors as Ray Data tensor columns, or packed (``rllib_packed``: one string per row, which is
what RLlib's ``output_compress_columns`` writes), and ids that are all null (single-agent).
``module_id``, ``agent_id``, ``t``, ``action_logp`` and ``action_mask`` are optional on read
(no ``module_id``, or an all-null one: every row is the default module's).
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pyarrow as pa

from marl_arena.core.columns import Columns
from marl_arena.core.models import flat_dim
from marl_arena.offline.errors import OfflineDataError
from marl_arena.offline.rllib_packed import is_packed

REQUIRED = (Columns.EPS_ID, Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS,
            Columns.TERMINATEDS, Columns.TRUNCATEDS)
OPTIONAL = (Columns.AGENT_ID, Columns.MODULE_ID, Columns.T, Columns.ACTION_LOGP, Columns.ACTION_MASK)
ID_COLUMNS = (Columns.EPS_ID, Columns.AGENT_ID, Columns.MODULE_ID)
VECTOR_COLUMNS = (Columns.OBS, Columns.NEXT_OBS, Columns.ACTION_MASK)
FLAG_COLUMNS = (Columns.TERMINATEDS, Columns.TRUNCATEDS)


@dataclasses.dataclass(frozen=True)
class ModuleLayout:
    """The shapes one module's rows must have: from its observation and action spaces."""

    obs_dim: int
    num_actions: int | None
    """Discrete spaces: the number of actions (and the mask's width); None for a Box."""
    action_dim: int | None
    """Box spaces: the flat action width; None for a Discrete space."""

    @classmethod
    def from_spaces(cls, observation_space: gym.Space, action_space: gym.Space) -> "ModuleLayout":
        if isinstance(action_space, gym.spaces.Discrete):
            return cls(flat_dim(observation_space), int(action_space.n), None)
        return cls(flat_dim(observation_space), None, int(np.prod(action_space.shape)))


# ---------------------------------------------------------------------- writing
def vector_array(rows: np.ndarray) -> pa.Array:
    """A (rows, width) array as ``fixed_size_list<float32>[width]``."""
    rows = np.ascontiguousarray(rows, dtype=np.float32).reshape(len(rows), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), rows.shape[1])


def to_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Arrow table of one module's rows; 2-D arrays become vector columns."""
    arrays = {}
    for name, values in columns.items():
        if name in ID_COLUMNS:
            arrays[name] = pa.array(values, type=pa.string())
        elif values.ndim > 1:
            arrays[name] = vector_array(values)
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


# ---------------------------------------------------------------------- reading
def _is_number(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_)


def storage_type(type_: pa.DataType) -> pa.DataType:
    """The plain Arrow type under an extension type (Ray Data's tensor columns store lists)."""
    return type_.storage_type if isinstance(type_, pa.ExtensionType) else type_


def _is_vector(type_: pa.DataType) -> bool:
    type_ = storage_type(type_)
    kinds = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    return any(kind(type_) for kind in kinds) and _is_number(type_.value_type)


def _column_problem(name: str, type_: pa.DataType) -> str | None:
    """Why a column of this Arrow type cannot hold ``name``; None when it can."""
    if name in ID_COLUMNS:
        ok, want = (pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_integer(type_)
                    or (name != Columns.EPS_ID and pa.types.is_null(type_))), "strings or integers"
    elif name == Columns.T:
        ok, want = pa.types.is_integer(type_), "integers"
    elif name in FLAG_COLUMNS:
        ok, want = pa.types.is_boolean(type_), "booleans"
    elif name in (Columns.REWARDS, Columns.ACTION_LOGP):
        ok, want = _is_number(type_), "numbers"
    elif name in VECTOR_COLUMNS:
        ok, want = (_is_vector(type_) or is_packed(type_),
                    "lists of numbers (one vector per row) or RLlib's packed arrays")
    else:  # actions
        ok, want = _is_number(type_) or _is_vector(type_) or is_packed(type_), \
            "integers (Discrete), lists of numbers (Box) or RLlib's packed arrays"
    return None if ok else f"has type {type_}; it must hold {want}"


def check_schema(path: str, schema: pa.Schema) -> None:
    """Raise OfflineDataError naming ``path`` and the column that is missing or mistyped."""
    for name in REQUIRED:
        if name not in schema.names:
            hint = ""
            if all(is_packed(field.type) for field in schema):
                hint = (" One column of strings or bytes per row is how RLlib records whole episodes "
                        "(output_write_episodes=True); marl_arena reads RLlib's tabular format: record with "
                        "config.offline_data(output=..., output_write_episodes=False).")
            raise OfflineDataError(f"{path}: required column {name!r} is missing (columns: {schema.names}).{hint}")
    for name in (*REQUIRED, *OPTIONAL):
        if name in schema.names:
            problem = _column_problem(name, schema.field(name).type)
            if problem:
                raise OfflineDataError(f"{path}: column {name!r} {problem}.")


def learner_schema(schema: pa.Schema) -> pa.Schema:
    """The types the learner side reads (float32 numbers, int64 ids and steps, string ids),
    for the columns of a checked ``schema`` that marl_arena reads."""
    fields = []
    for name in (*REQUIRED, *OPTIONAL):
        if name not in schema.names:
            continue
        type_ = storage_type(schema.field(name).type)
        if pa.types.is_null(type_):
            continue  # an optional id column without values (RLlib's single-agent agent_id, module_id)
        if name in ID_COLUMNS:
            target = pa.string()
        elif name in FLAG_COLUMNS:
            target = pa.bool_()
        elif is_packed(type_):
            target = pa.list_(pa.float32())
        elif pa.types.is_fixed_size_list(type_):
            target = pa.list_(pa.float32(), type_.list_size)
        elif _is_vector(type_):
            target = pa.list_(pa.float32())
        elif pa.types.is_integer(type_):
            target = pa.int64()
        else:
            target = pa.float32()
        if name in (Columns.REWARDS, Columns.ACTION_LOGP):
            target = pa.float32()
        fields.append(pa.field(name, target))
    return pa.schema(fields)
