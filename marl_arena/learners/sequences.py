"""Training sequences for recurrent modules: rows of a module batch cut into padded chunks.

A module batch is a concatenation of trajectory segments, each one agent's own steps in
order (a turn-based game's other players never appear inside it), and each segment's last
row is terminated or truncated. ``SequenceLayout`` cuts every segment into chunks of at most
``max_seq_len`` rows; a chunk starts from the state the runner recorded at its first row
(``Columns.STATE_IN`` of every row), so chunks need no earlier steps and minibatches may be
made of any whole chunks. Chunks are kept in row order, so the real steps of the padded
``[chunks, max_seq_len]`` layout, read row-major, are the batch's rows in their order.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import RLModule

TensorBatch = dict[str, torch.Tensor]

# Columns of a sequence batch that are not per step (no ``[chunks, max_seq_len]`` axes).
_PER_SEQUENCE = (Columns.STATE_IN, Columns.STATE_OUT, Columns.LOSS_MASK)


@dataclasses.dataclass
class SequenceLayout:
    """Where each chunk starts in the batch's rows and how many rows it has."""

    starts: torch.Tensor
    """First row of each chunk, ``[chunks]``."""
    lengths: torch.Tensor
    """Rows in each chunk (1 .. ``max_seq_len``), ``[chunks]``."""
    max_seq_len: int

    @classmethod
    def from_segment_ends(cls, terminateds: torch.Tensor, truncateds: torch.Tensor,
                          max_seq_len: int) -> "SequenceLayout":
        """Chunks of the segments that end at terminated or truncated rows (and at the batch's last row)."""
        ends = (terminateds.bool() | truncateds.bool()).cpu().numpy()
        num_rows = len(ends)
        boundaries = np.unique(np.concatenate([[0], np.flatnonzero(ends) + 1, [num_rows]]))
        segment_starts, segment_lengths = boundaries[:-1], np.diff(boundaries)
        counts = -(-segment_lengths // max_seq_len)  # chunks per segment, rounded up
        first_chunk = np.repeat(np.cumsum(counts) - counts, counts)
        offsets = (np.arange(counts.sum()) - first_chunk) * max_seq_len  # chunk k of its segment starts k*T in
        starts = np.repeat(segment_starts, counts) + offsets
        lengths = np.minimum(np.repeat(segment_starts + segment_lengths, counts) - starts, max_seq_len)
        device = terminateds.device
        return cls(torch.as_tensor(starts, device=device), torch.as_tensor(lengths, device=device), max_seq_len)

    @property
    def mask(self) -> torch.Tensor:
        """``[chunks, max_seq_len]``: True at real steps, False at padding."""
        steps = torch.arange(self.max_seq_len, device=self.starts.device)
        return steps[None, :] < self.lengths[:, None]

    def pad(self, rows: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """``rows [N, ...]`` as ``[chunks, steps, ...]`` (``max_seq_len`` steps by default), zeros past each chunk."""
        steps = self.max_seq_len if steps is None else steps
        positions = torch.arange(steps, device=rows.device)
        real = positions[None, :] < self.lengths[:, None]
        index = (self.starts[:, None] + positions[None, :]).clamp(max=len(rows) - 1)
        real = real.reshape(*real.shape, *([1] * (rows.dim() - 1)))
        return torch.where(real, rows[index], torch.zeros((), dtype=rows.dtype, device=rows.device))

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """The real steps of ``[chunks, max_seq_len, ...]`` as rows, in the batch's row order."""
        return padded[self.mask]

    def with_next(self, rows: torch.Tensor, next_rows: torch.Tensor) -> torch.Tensor:
        """``[chunks, max_seq_len + 1, ...]``: each chunk's rows, then its last row's ``next_rows`` entry.

        One recurrent pass over it gives every row's value and, one step past the chunk's
        end, the value to bootstrap from, in the state the chunk's own steps led to.
        """
        padded = self.pad(rows, self.max_seq_len + 1)
        padded[torch.arange(len(self.starts), device=rows.device), self.lengths] = \
            next_rows[self.starts + self.lengths - 1]
        return padded

    def to_sequences(self, batch: TensorBatch) -> TensorBatch:
        """Every per-row column padded to ``[chunks, max_seq_len, ...]``; ``STATE_IN`` at each chunk's
        first row; ``LOSS_MASK`` marks the real steps."""
        out = {key: (value[self.starts] if key == Columns.STATE_IN else self.pad(value))
               for key, value in batch.items()}
        out[Columns.LOSS_MASK] = self.mask
        return out


def sequence_layout(module: RLModule, batch: TensorBatch) -> SequenceLayout | None:
    """The chunks of a stateful module's row batch (``max_seq_len`` from its model config); None
    for a module without memory, which learns from the rows as they are."""
    if not module.is_stateful():
        return None
    return SequenceLayout.from_segment_ends(batch[Columns.TERMINATEDS], batch[Columns.TRUNCATEDS],
                                            module.model_config.max_seq_len)


def forward_train_rows(module: RLModule, batch: TensorBatch, layout: SequenceLayout | None) -> TensorBatch:
    """``module.forward_train`` of a row batch, as rows: over its chunks for a recurrent module."""
    if layout is None:
        return module.forward_train(batch)
    out = module.forward_train(layout.to_sequences(batch))
    return {key: layout.unpad(value) for key, value in out.items() if key not in _PER_SEQUENCE}


def recurrent_values(module: RLModule, layout: SequenceLayout, obs: torch.Tensor, next_obs: torch.Tensor,
                     states_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """V(obs) and V(next_obs) per row of a recurrent module, from one pass over each chunk.

    A recurrent value reads the steps before it, so a forward of a lone next observation
    cannot give the bootstrap value: each chunk runs from its recorded start state over its
    rows and one step more, its last row's next observation, which is valued in the state
    the chunk led to.
    """
    values = module.compute_values(layout.with_next(obs, next_obs), states_in[layout.starts])
    mask = layout.mask
    return values[:, :-1][mask], values[:, 1:][mask]


def real_steps(batch: TensorBatch, fwd_out: TensorBatch) -> tuple[TensorBatch, TensorBatch]:
    """A sequence minibatch and its forward outputs as rows of real steps; other batches unchanged.

    Losses written for rows (means over the rows) then apply to recurrent modules as they are.
    """
    mask = batch.get(Columns.LOSS_MASK)
    if mask is None:
        return batch, fwd_out
    return ({key: value[mask] for key, value in batch.items() if key not in _PER_SEQUENCE},
            {key: value[mask] for key, value in fwd_out.items() if key not in _PER_SEQUENCE})
