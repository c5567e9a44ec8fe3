"""Sequence replay for DreamerV3: one circular buffer of rows per module, sampled as B x T windows.

A row is one observation with what arrived with it and what was done on it:
``obs``, ``action_mask`` (if any), the action taken on it, the reward received on arriving
at it, ``is_first`` (an episode starts here) and ``is_terminal`` (the episode ended here in
a terminal state). An agent's episode of L transitions ``(obs, action, reward, next_obs)``
becomes L + 1 rows: the last row is the final observation, with a placeholder action that no
sequence ever reads (the row after it starts another episode, which resets the RSSM).

Rows of different episodes sit next to each other; a window may cross from one into the
next, and ``is_first`` resets the recurrent state there. The first row of every window is
marked ``is_first``, since no earlier state is at hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marl_arena.core.columns import Columns

_ROW_COLUMNS = (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.IS_FIRST, Columns.IS_TERMINAL)


def episode_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A module's sampled batch of complete agent episodes, as replay rows (see the module docstring).

    Each segment of ``batch`` must end an episode (terminated or truncated on its last row);
    DreamerV3 samples whole episodes, so every segment does.
    """
    ends = np.flatnonzero(np.logical_or(batch[Columns.TERMINATEDS], batch[Columns.TRUNCATEDS]))
    n = len(batch[Columns.REWARDS])
    if n and (len(ends) == 0 or ends[-1] != n - 1):
        raise ValueError("episode_rows: the batch's last segment does not end an episode (no terminated or "
                         "truncated on its last row); DreamerV3 replays whole agent episodes.")
    has_mask = Columns.ACTION_MASK in batch
    parts: dict[str, list[np.ndarray]] = {key: [] for key in _ROW_COLUMNS + ((Columns.ACTION_MASK,) if has_mask else ())}
    start = 0
    for end in ends:
        length = end - start + 1
        obs = batch[Columns.OBS][start:end + 1]
        parts[Columns.OBS] += [obs, batch[Columns.NEXT_OBS][end:end + 1]]
        actions = batch[Columns.ACTIONS][start:end + 1]
        parts[Columns.ACTIONS] += [actions, np.zeros_like(actions[:1])]
        rewards = np.zeros(length + 1, np.float32)
        rewards[1:] = batch[Columns.REWARDS][start:end + 1]
        parts[Columns.REWARDS].append(rewards)
        first = np.zeros(length + 1, bool)
        first[0] = True
        parts[Columns.IS_FIRST].append(first)
        terminal = np.zeros(length + 1, bool)
        terminal[-1] = bool(batch[Columns.TERMINATEDS][end])
        parts[Columns.IS_TERMINAL].append(terminal)
        if has_mask:
            next_mask = batch.get(Columns.NEXT_ACTION_MASK)
            last = next_mask[end:end + 1] if next_mask is not None else batch[Columns.ACTION_MASK][end:end + 1]
            parts[Columns.ACTION_MASK] += [batch[Columns.ACTION_MASK][start:end + 1], last]
        start = end + 1
    return {key: np.concatenate(value) for key, value in parts.items() if value}


class SequenceReplay:
    """A circular buffer of replay rows for one module."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"SequenceReplay capacity={capacity!r} is not allowed: it must be >= 1.")
        self.capacity = int(capacity)
        self._columns: dict[str, np.ndarray] = {}
        self._next = 0
        self._size = 0
        self.rows_added = 0

    def __len__(self) -> int:
        return self._size

    def add(self, rows: dict[str, np.ndarray]) -> None:
        count = len(rows[Columns.REWARDS])
        if count == 0:
            return
        if not self._columns:
            self._columns = {key: np.zeros((0, *value.shape[1:]), value.dtype) for key, value in rows.items()}
        elif set(rows) != set(self._columns):
            raise ValueError(f"SequenceReplay.add: rows have columns {sorted(rows)}, the buffer {sorted(self._columns)}.")
        if count > self.capacity:  # only the newest rows fit
            rows = {key: value[-self.capacity:] for key, value in rows.items()}
            count = self.capacity
        self._grow(min(self.capacity, self._next + count))
        slots = (self._next + np.arange(count)) % self.capacity
        for key, value in rows.items():
            self._columns[key][slots] = value
        self._next = int((self._next + count) % self.capacity)
        self._size = min(self.capacity, self._size + count)
        self.rows_added += count

    def _grow(self, rows: int) -> None:
        """Make room for ``rows`` rows, doubling as it fills: a buffer of a million image rows is
        allocated only as far as it is used."""
        allocated = len(next(iter(self._columns.values())))
        if rows <= allocated:
            return
        size = min(self.capacity, max(rows, 2 * allocated, 1024))
        for key, value in self._columns.items():
            grown = np.zeros((size, *value.shape[1:]), value.dtype)
            grown[:allocated] = value
            self._columns[key] = grown

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch_size`` windows of ``length`` consecutive rows (oldest to newest, never across the
        write position), plus ``Columns.PREV_ACTIONS``: the action of the row before (a zero
        action where the row is first)."""
        if self._size < length:
            raise ValueError(f"SequenceReplay.sample: {self._size} rows cannot fill windows of {length}.")
        oldest = self._next if self._size == self.capacity else 0
        starts = oldest + rng.integers(0, self._size - length + 1, size=batch_size)
        index = (starts[:, None] + np.arange(length)[None, :]) % self.capacity
        out = {key: value[index] for key, value in self._columns.items()}
        out[Columns.IS_FIRST][:, 0] = True
        actions = out[Columns.ACTIONS]
        prev = np.zeros_like(actions)
        prev[:, 1:] = actions[:, :-1]
        out[Columns.PREV_ACTIONS] = prev
        return out

    def get_state(self) -> dict[str, Any]:
        return {"columns": self._columns, "next": self._next, "size": self._size, "rows_added": self.rows_added}

    def set_state(self, state: dict[str, Any]) -> None:
        self._columns = state["columns"]
        self._next, self._size, self.rows_added = int(state["next"]), int(state["size"]), int(state["rows_added"])
