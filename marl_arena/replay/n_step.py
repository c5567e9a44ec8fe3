"""n-step transitions: a plain function over one module's segment-concatenated batch.

An n-step target r_t + gamma r_{t+1} + ... + gamma^(m-1) r_{t+m-1} + gamma^m Q(s_{t+m})
propagates rewards m steps per update instead of one. It must never cross the end of a
trajectory segment: past a terminal there is nothing to add, and past a truncated end (a
time limit or the end of a rollout fragment) the next rows belong to another agent,
another episode or another sampling call. So near a segment end m shrinks below n, and
the learner needs the discount of its bootstrap value per row: ``Columns.N_STEP_DISCOUNT``. (An
EnvRunner of an n-step learner ends a mid-episode segment with n-1 ``LOOKAHEAD`` rows that
it sends again next time, so only the look-ahead rows, which are dropped, get m < n there.)
"""

from __future__ import annotations

import numpy as np

from marl_arena.core.columns import Columns

_REQUIRED = (Columns.REWARDS, Columns.NEXT_OBS, Columns.TERMINATEDS, Columns.TRUNCATEDS)


def n_step_transitions(batch: dict[str, np.ndarray], n: int, gamma: float) -> dict[str, np.ndarray]:
    """Turn every row t into the transition from step t to step t + m, m <= n.

    m is n, or fewer where the row's segment ends (terminated or truncated) sooner. Row t
    keeps its own columns (obs, actions, masks, extras) and gets:

    - ``rewards``: sum_{k<m} gamma^k r_{t+k};
    - ``new_obs`` (and ``new_action_mask`` if present), ``terminateds``, ``truncateds``: those
      of step t+m-1, so a truncated end stays non-terminal and the learner bootstraps there;
    - ``Columns.N_STEP_DISCOUNT``: gamma^m, the discount of the bootstrap value (times 1 - terminated).

    The result is a batch of independent transitions, no longer of segments (``truncateds``
    marks the rows whose n-step transition reaches a truncated end). With n=1 it is the
    input plus a column of gamma. Columns it does not change are the input's own arrays.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_step_transitions: n must be an int >= 1, got {n!r}.")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"n_step_transitions: gamma must lie in [0, 1], got {gamma!r}.")
    missing = [key for key in _REQUIRED if key not in batch]
    if missing:
        raise ValueError(f"n_step_transitions: the batch lacks the columns {missing}; it has {sorted(batch)}.")
    rewards = np.asarray(batch[Columns.REWARDS])
    num_rows = len(rewards)
    ends = np.asarray(batch[Columns.TERMINATEDS], dtype=bool) | np.asarray(batch[Columns.TRUNCATEDS], dtype=bool)
    if num_rows and not ends[-1]:
        raise ValueError("n_step_transitions: the batch's last row ends no segment (neither terminated nor "
                         "truncated); a batch must be whole segments, as the EnvRunner delivers them.")
    rows = np.arange(num_rows)
    end_rows = np.flatnonzero(ends)
    segment_last = end_rows[np.searchsorted(end_rows, rows)]
    steps = np.minimum(n, segment_last - rows + 1)  # m per row
    last = rows + steps - 1

    returns = np.zeros(num_rows, dtype=np.float64)
    for k in range(min(n, num_rows)):
        within = k < steps
        returns[within] += gamma ** k * rewards[rows[within] + k]

    out = dict(batch)
    out[Columns.REWARDS] = returns.astype(rewards.dtype if np.issubdtype(rewards.dtype, np.floating) else np.float32)
    for key in (Columns.NEXT_OBS, Columns.NEXT_ACTION_MASK, Columns.TERMINATEDS, Columns.TRUNCATEDS):
        if key in batch:
            out[key] = np.asarray(batch[key])[last]
    out[Columns.N_STEP_DISCOUNT] = (float(gamma) ** steps).astype(np.float32)
    return out
