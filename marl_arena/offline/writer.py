"""EpisodeWriter: an EnvRunner's finished episodes as Parquet files (``offline_data(output=)``).

The runner hands over every agent's completed transitions as it takes them (a rollout
fragment may end mid-episode); the writer keeps them until the episode finishes, then joins
each agent's pieces into one trajectory: the truncation that marked a fragment's end is not
a truncation of the episode, so only the last row keeps its flags. An episode dropped
before its end (a failed env, evaluation starting fresh episodes) is discarded.

``flush`` writes the finished episodes, one file per module (a module's rows share their
shapes, so vectors get fixed widths). Each file is written under a hidden temporary name and
renamed into place, so a run killed mid-write leaves no half file that a reader would pick up.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Hashable

import numpy as np
import pyarrow.parquet as pq

from marl_arena.core.columns import Columns
from marl_arena.offline.schema import to_table

logger = logging.getLogger(__name__)

# What a trajectory segment holds that goes to disk; the rest (distribution inputs, the
# next row's mask, n-step look-ahead marks) is the learner's business.
_RECORDED = (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS, Columns.TERMINATEDS,
             Columns.TRUNCATEDS, Columns.ACTION_LOGP, Columns.ACTION_MASK)


class EpisodeWriter:
    """Collects the running episodes of one EnvRunner and writes the finished ones."""

    def __init__(self, directory: str | os.PathLike, worker_index: int = 0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Names and episode ids unique across runners, processes and restarts.
        self._prefix = f"episodes-w{worker_index}-{uuid.uuid4().hex[:12]}"
        self._running: dict[Hashable, dict[Any, tuple[str, list[dict[str, np.ndarray]]]]] = {}
        self._finished: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
        self._num_files = 0
        self.paths: list[Path] = []
        """Every file written so far."""

    def add_segment(self, episode_key: Hashable, agent_id: Any, module_id: str,
                    segment: dict[str, np.ndarray]) -> None:
        """Completed transitions of one agent; rows marked as n-step look-ahead come again later."""
        lookahead = segment.get(Columns.LOOKAHEAD)
        keep = slice(None) if lookahead is None else ~lookahead
        part = {key: segment[key][keep] for key in _RECORDED if key in segment}
        agents = self._running.setdefault(episode_key, {})
        agents.setdefault(agent_id, (module_id, []))[1].append(part)

    def finish_episode(self, episode_key: Hashable) -> None:
        """The episode is over: its trajectories wait for the next ``flush``."""
        eps_id = f"{self._prefix}-{episode_key}"
        for agent_id, (module_id, parts) in self._running.pop(episode_key, {}).items():
            rows = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
            n = len(rows[Columns.REWARDS])
            if n == 0:
                continue
            rows[Columns.TRUNCATEDS][:-1] = False  # fragment ends, not episode ends
            self._finished[module_id].append({
                Columns.EPS_ID: np.full(n, eps_id, dtype=object),
                Columns.AGENT_ID: np.full(n, str(agent_id), dtype=object),
                Columns.MODULE_ID: np.full(n, module_id, dtype=object),
                Columns.T: np.arange(n, dtype=np.int64),
                **rows,
            })

    def discard_episode(self, episode_key: Hashable) -> None:
        """Forget an episode that will not finish."""
        self._running.pop(episode_key, None)

    def flush(self) -> list[Path]:
        """Write the finished episodes, one file per module; returns the new files."""
        written = []
        for module_id, trajectories in self._finished.items():
            rows = {key: np.concatenate([t[key] for t in trajectories]) for key in trajectories[0]}
            path = self.directory / f"{self._prefix}-{self._num_files:06d}.parquet"
            temporary = path.with_name(f".{path.name}.tmp")
            pq.write_table(to_table(rows), temporary)
            os.replace(temporary, path)
            self._num_files += 1
            written.append(path)
            logger.debug("wrote %d rows of module %s to %s", len(rows[Columns.REWARDS]), module_id, path)
        self._finished.clear()
        self.paths += written
        return written
