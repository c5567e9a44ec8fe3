"""Replay buffers of transitions: uniform, prioritized, and one per module id.

A buffer stores rows of a batch dict (one transition per row, as the EnvRunner delivers
them or as ``n_step_transitions`` makes them) in ring arrays preallocated on the first
``add`` from that batch's columns, dtypes and shapes, so adding and sampling are a few
numpy copies and never a Python loop per transition. When full, the oldest rows are
overwritten first. ``sample`` draws rows with replacement and returns them as a batch
with the same columns, plus ``BATCH_INDEXES`` (the rows' slots, which prioritized replay
needs back to update priorities) and, for prioritized replay, ``WEIGHTS``.

``MultiAgentReplayBuffer`` keeps one buffer per module id, chosen by RLlib's
``replay_buffer_config`` dict: ``{"type": "PrioritizedReplayBuffer", "capacity": 50_000,
"alpha": 0.6, "beta": 0.4}``.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any

import numpy as np

from marl_arena.core.columns import Columns

from marl_arena.replay.sum_tree import SumTree

Batch = dict[str, np.ndarray]

# Added by ``sample``; names as RLlib's SampleBatch uses them. Belong in core.columns.
BATCH_INDEXES = Columns.BATCH_INDEXES
WEIGHTS = Columns.WEIGHTS
_RESERVED = (BATCH_INDEXES, WEIGHTS)


def _check_positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}.")
    return int(value)


def _check_float(owner: str, name: str, value: Any, low: float, strict: bool) -> float:
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (is_number and np.isfinite(value) and (value > low if strict else value >= low)):
        raise ValueError(f"{owner}: {name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}.")
    return float(value)


class BaseReplayBuffer(abc.ABC):
    """Ring storage of up to ``capacity`` transitions; subclasses decide which rows ``sample`` draws."""

    def __init__(self, capacity: int = 50_000):
        self.capacity = _check_positive_int(type(self).__name__, "capacity", capacity)
        self._columns: Batch | None = None
        self._next_index = 0  # the slot the next row goes to
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, batch: Batch) -> None:
        """Append the rows of ``batch``, overwriting the oldest ones once full.

        Every later batch must have the first batch's columns, with the same trailing
        shapes and dtypes that cast to the stored ones without changing kind.
        """
        num_rows = self._check_batch(batch)
        if num_rows == 0:
            return
        if self._columns is None:
            self._columns = {key: np.empty((self.capacity, *np.shape(value)[1:]), dtype=np.asarray(value).dtype)
                             for key, value in batch.items()}
        # Of a batch longer than the buffer only the newest rows survive; writing just those,
        # at the slots they would end in, gives the same contents as writing every row.
        skip = max(0, num_rows - self.capacity)
        slots = (self._next_index + skip + np.arange(num_rows - skip)) % self.capacity
        for key, column in self._columns.items():
            column[slots] = np.asarray(batch[key])[skip:]
        self._next_index = (self._next_index + num_rows) % self.capacity
        self._size = min(self.capacity, self._size + num_rows)
        self._stored(slots)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` rows drawn with replacement, with their slots under ``BATCH_INDEXES``."""
        batch_size = _check_positive_int(f"{type(self).__name__}.sample", "batch_size", batch_size)
        if self._size == 0:
            raise ValueError(f"{type(self).__name__}.sample: the buffer is empty; add transitions first.")
        indices, extra = self._draw(batch_size, rng)
        out = {key: column[indices] for key, column in self._columns.items()}
        out[BATCH_INDEXES] = indices
        out.update(extra)
        return out

    @abc.abstractmethod
    def _draw(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, Batch]:
        """Slots in [0, len) to sample, and any columns the sample gets besides the stored ones."""

    def _stored(self, slots: np.ndarray) -> None:
        """Called after new rows were written at ``slots`` (prioritized replay gives them priorities)."""

    def get_state(self) -> dict[str, Any]:
        """The buffer's contents and write position as arrays (copies) for a checkpoint."""
        columns = {} if self._columns is None else {k: v[:self._size].copy() for k, v in self._columns.items()}
        return {"capacity": self.capacity, "size": self._size, "next_index": self._next_index, "columns": columns}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned (the capacity must match this buffer's)."""
        owner = f"{type(self).__name__}.set_state"
        missing = [key for key in ("capacity", "size", "next_index", "columns") if key not in state]
        if missing:
            raise ValueError(f"{owner}: the state lacks {missing}.")
        if state["capacity"] != self.capacity:
            raise ValueError(f"{owner}: the state has capacity {state['capacity']}, this buffer {self.capacity}.")
        size, next_index = int(state["size"]), int(state["next_index"])
        if not (0 <= size <= self.capacity and 0 <= next_index < self.capacity):
            raise ValueError(f"{owner}: size {size} or next_index {next_index} is out of range for "
                             f"capacity {self.capacity}.")
        columns = state["columns"]
        wrong = {key: len(value) for key, value in columns.items() if len(value) != size}
        if wrong or (size > 0) != bool(columns):
            raise ValueError(f"{owner}: the columns' lengths {wrong or 'none'} do not match size {size}.")
        self._columns = None
        if size:
            self._columns = {key: np.empty((self.capacity, *np.shape(value)[1:]), dtype=np.asarray(value).dtype)
                             for key, value in columns.items()}
            for key, value in columns.items():
                self._columns[key][:size] = value
        self._size, self._next_index = size, next_index

    def _check_batch(self, batch: Batch) -> int:
        owner = f"{type(self).__name__}.add"
        if not isinstance(batch, dict) or not batch:
            raise ValueError(f"{owner} needs a non-empty dict of column arrays, got {type(batch).__name__}.")
        reserved = [key for key in batch if key in _RESERVED]
        if reserved:
            raise ValueError(f"{owner}: the columns {reserved} are reserved for what sample() returns.")
        lengths = {key: np.shape(value)[0] if np.ndim(value) else None for key, value in batch.items()}
        if None in lengths.values() or len(set(lengths.values())) != 1:
            raise ValueError(f"{owner}: all columns must be arrays with the same number of rows, got {lengths}.")
        if self._columns is not None:
            if set(batch) != set(self._columns):
                raise ValueError(f"{owner}: the batch has columns {sorted(batch)}, the buffer stores "
                                 f"{sorted(self._columns)}.")
            for key, column in self._columns.items():
                value = np.asarray(batch[key])
                if value.shape[1:] != column.shape[1:] or not np.can_cast(value.dtype, column.dtype, "same_kind"):
                    raise ValueError(f"{owner}: column {key!r} has rows of shape {value.shape[1:]} and dtype "
                                     f"{value.dtype}; the buffer stores {column.shape[1:]} {column.dtype}.")
        return next(iter(lengths.values()))


class ReplayBuffer(BaseReplayBuffer):
    """Uniform replay: every stored transition is equally likely to be drawn."""

    def _draw(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, Batch]:
        return rng.integers(0, self._size, size=batch_size), {}


class PrioritizedReplayBuffer(BaseReplayBuffer):
    """Prioritized experience replay (Schaul et al., 2016), proportional variant.

    Transition i is drawn with probability P(i) = p_i / sum_j p_j, where p_i = (|td_i| +
    eps)^alpha after ``update_priorities``; a new transition gets the largest priority seen
    so far, so it is replayed at least once soon. The bias of the skewed sampling is undone
    by importance weights w_i = (N P(i))^-beta / max_j w_j, under ``WEIGHTS``; ``beta`` may
    be changed between calls to anneal it towards 1.
    """

    def __init__(self, capacity: int = 50_000, alpha: float = 0.6, beta: float = 0.4, eps: float = 1e-6):
        super().__init__(capacity)
        owner = type(self).__name__
        self.alpha = _check_float(owner, "alpha", alpha, 0.0, strict=False)
        self.beta = beta
        self.eps = _check_float(owner, "eps", eps, 0.0, strict=True)
        self._max_priority = 1.0  # largest |td| + eps seen, before the power alpha
        self._tree: SumTree | None = None  # allocated with the storage, on the first add

    @property
    def beta(self) -> float:
        """Importance-weight exponent: 0 leaves the sampling bias in, 1 removes it fully."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        self._beta = _check_float(type(self).__name__, "beta", value, 0.0, strict=False)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set p_i = (|td_i| + eps)^alpha for the slots ``indices`` of a sample's ``BATCH_INDEXES``.

        A slot overwritten since it was sampled gets the priority meant for its former
        transition, as in RLlib and the paper's implementation; the error fades with the
        next sample of that slot.
        """
        owner = f"{type(self).__name__}.update_priorities"
        indices = np.asarray(indices).reshape(-1)
        td_errors = np.asarray(td_errors, dtype=np.float64).reshape(-1)
        if indices.shape != td_errors.shape:
            raise ValueError(f"{owner} got {indices.size} indices but {td_errors.size} td errors.")
        if not np.all(np.isfinite(td_errors)):
            raise ValueError(f"{owner}: td errors must be finite, got {td_errors[~np.isfinite(td_errors)][:5]}.")
        if indices.size and (self._tree is None or indices.min() < 0 or indices.max() >= self._size):
            raise ValueError(f"{owner}: indices must be slots of stored transitions, in [0, {self._size}).")
        raw = np.abs(td_errors) + self.eps
        if raw.size:
            self._max_priority = max(self._max_priority, float(raw.max()))
            self._tree.update(indices, raw ** self.alpha)

    def _stored(self, slots: np.ndarray) -> None:
        if self._tree is None:
            self._tree = SumTree(self.capacity)
        self._tree.update(slots, np.full(slots.shape, self._max_priority ** self.alpha))

    def _draw(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, Batch]:
        total = self._tree.total
        indices = self._tree.find_prefix_sum(rng.random(batch_size) * total)
        # w_i / max_j w_j = (N P(i))^-beta / (N P_min)^-beta = (p_i / p_min)^-beta
        weights = (self._tree[indices] / self._tree.min) ** -self._beta
        return indices, {WEIGHTS: weights.astype(np.float32)}

    def get_state(self) -> dict[str, Any]:
        """The base state plus the stored transitions' priorities and the largest priority seen."""
        state = super().get_state()
        state["priorities"] = np.zeros(0) if self._tree is None else self._tree[np.arange(self._size)]
        state["max_priority"] = self._max_priority
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        missing = [key for key in ("priorities", "max_priority") if key not in state]
        if missing:
            raise ValueError(f"{type(self).__name__}.set_state: the state lacks {missing} "
                             "(is it a uniform ReplayBuffer's state?).")
        if len(state["priorities"]) != state.get("size"):
            raise ValueError(f"{type(self).__name__}.set_state: {len(state['priorities'])} priorities for "
                             f"size {state.get('size')}.")
        tree = SumTree(self.capacity)
        tree.update(np.arange(len(state["priorities"])), state["priorities"])  # checks them before any change
        super().set_state(state)
        self._tree = tree
        self._max_priority = float(state["max_priority"])


REPLAY_BUFFER_TYPES: dict[str, type[BaseReplayBuffer]] = {
    "ReplayBuffer": ReplayBuffer,
    "PrioritizedReplayBuffer": PrioritizedReplayBuffer,
}


def replay_buffer_from_config(replay_buffer_config: dict[str, Any]) -> BaseReplayBuffer:
    """Build the buffer a ``replay_buffer_config`` names: "type" plus that type's arguments.

    Keys left out take the type's defaults; an unknown type or key raises ValueError
    naming it and what is allowed.
    """
    if not isinstance(replay_buffer_config, dict):
        raise ValueError(f"replay_buffer_config must be a dict, got {type(replay_buffer_config).__name__}.")
    type_name = replay_buffer_config.get("type")
    buffer_class = REPLAY_BUFFER_TYPES.get(type_name) if isinstance(type_name, str) else None
    if buffer_class is None:
        raise ValueError(f"replay_buffer_config['type'] = {type_name!r} is not a known replay buffer; "
                         f"allowed: {sorted(REPLAY_BUFFER_TYPES)}.")
    allowed = list(inspect.signature(buffer_class).parameters)
    kwargs = {key: value for key, value in replay_buffer_config.items() if key != "type"}
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"replay_buffer_config has unknown keys {unknown} for type {type_name!r}; "
                         f"allowed: {['type', *allowed]}.")
    return buffer_class(**kwargs)


class MultiAgentReplayBuffer:
    """One replay buffer per module id, each built from the same ``replay_buffer_config``.

    Modules learn from their own agents' experience only, so their transitions never mix;
    a module's buffer appears with its first transitions.
    """

    def __init__(self, replay_buffer_config: dict[str, Any]):
        replay_buffer_from_config(replay_buffer_config)  # fail now on a bad config, not at the first add
        self.replay_buffer_config = dict(replay_buffer_config)
        self._buffers: dict[str, BaseReplayBuffer] = {}

    def __len__(self) -> int:
        """Transitions stored over all modules."""
        return sum(len(buffer) for buffer in self._buffers.values())

    def __getitem__(self, module_id: str) -> BaseReplayBuffer:
        if module_id not in self._buffers:
            raise ValueError(f"MultiAgentReplayBuffer holds no transitions of module {module_id!r}; "
                             f"it holds {sorted(self._buffers)}.")
        return self._buffers[module_id]

    @property
    def module_ids(self) -> list[str]:
        return list(self._buffers)

    def add(self, batches: dict[str, Batch]) -> None:
        """Add each module's batch (as ``SampleResult.batches`` groups them) to its own buffer."""
        for module_id, batch in batches.items():
            if module_id not in self._buffers:
                self._buffers[module_id] = replay_buffer_from_config(self.replay_buffer_config)
            self._buffers[module_id].add(batch)

    def clear(self, module_id: str) -> None:
        """Forget every transition of ``module_id``; its buffer appears again with its next ones."""
        self._buffers.pop(module_id, None)

    def sample(self, batch_size: int, rng: np.random.Generator, module_id: str | None = None) -> dict[str, Batch]:
        """``batch_size`` transitions of ``module_id``, or of every module holding some (None)."""
        module_ids = [module_id] if module_id is not None else [m for m, b in self._buffers.items() if len(b)]
        if not module_ids:
            raise ValueError("MultiAgentReplayBuffer.sample: no module has transitions yet.")
        return {mid: self[mid].sample(batch_size, rng) for mid in module_ids}

    def update_priorities(self, module_id: str, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for the ``BATCH_INDEXES`` of a sample of ``module_id``."""
        buffer = self[module_id]
        if not isinstance(buffer, PrioritizedReplayBuffer):
            raise TypeError(f"The replay buffers are of type {self.replay_buffer_config['type']!r}, which has "
                            "no priorities; use 'PrioritizedReplayBuffer'.")
        buffer.update_priorities(indices, td_errors)

    def get_state(self) -> dict[str, dict[str, Any]]:
        """Each module's buffer state, by module id."""
        return {module_id: buffer.get_state() for module_id, buffer in self._buffers.items()}

    def set_state(self, state: dict[str, dict[str, Any]]) -> None:
        """Replace all buffers with those of ``state`` (from ``get_state``), built from this config."""
        buffers = {}
        for module_id, buffer_state in state.items():
            buffers[module_id] = replay_buffer_from_config(self.replay_buffer_config)
            buffers[module_id].set_state(buffer_state)
        self._buffers = buffers
