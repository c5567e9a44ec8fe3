"""The recurrent encoder: ``build_encoder``'s network on every step, then an LSTM over the steps.

Its state is one flat float32 vector per row, ``[h, c]`` (``2 * lstm_cell_size`` wide),
rather than RLlib's nested ``{"h": ..., "c": ...}`` dict: a flat vector travels through
episodes, numpy batches, checkpoints and the ONNX graph like any other column
(``Columns.STATE_IN``/``STATE_OUT``).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from marl_arena.core.encoders import build_encoder
from marl_arena.core.models import DefaultModelConfig


class LSTMEncoder(nn.Module):
    """Feature vectors of whole sequences: ``obs [B, T, ...]`` and ``state [B, state_size]`` in,
    ``features [B, T, lstm_cell_size]`` and the state after the last step out."""

    def __init__(self, observation_space: gym.Space, cfg: DefaultModelConfig):
        super().__init__()
        self.base = build_encoder(observation_space, cfg)
        self.lstm = nn.LSTM(self.base.output_dim, cfg.lstm_cell_size, batch_first=True)
        self.cell_size = cfg.lstm_cell_size
        self.output_dim = cfg.lstm_cell_size
        """Width of the feature vector."""
        self.state_size = 2 * cfg.lstm_cell_size
        """Width of the flat ``[h, c]`` state."""

    def forward(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps = obs.shape[:2]
        # The base encoder reads rows in the observation's shape or flattened (see encoders).
        features = self.base(obs.reshape(batch * steps, *obs.shape[2:])).reshape(batch, steps, -1)
        h, c = state.split(self.cell_size, dim=-1)
        out, (h, c) = self.lstm(features, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()))
        return out, torch.cat([h[0], c[0]], dim=-1)


def state_after(module, observations: list) -> torch.Tensor:
    """The memory (``[1, state]``) a stateful module holds after acting on ``observations`` in turn.

    What a caller that sees a whole game, not a stream of steps (the OpenSpiel policy bridge,
    the dashboard's Play page), needs to act as the runners do, where an agent's state
    advances once per action it takes, from ``get_initial_state()`` at its episode's start.
    The state does not depend on action masks, so none is given.
    """
    from marl_arena.core.columns import Columns

    state = module.get_initial_state()[None]
    device = next(module.parameters(), torch.empty(0)).device
    with torch.inference_mode():
        for row in observations:
            obs = torch.as_tensor(row[None], dtype=torch.float32, device=device)
            state = module.forward_inference({Columns.OBS: obs, Columns.STATE_IN: state.to(device)})[Columns.STATE_OUT]
    return state
