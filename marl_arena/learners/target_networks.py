"""Target networks: slowly moving copies of online networks (DQN's and SAC's critics, APPO's old policy)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_target(target: nn.Module, online: nn.Module, tau: float = 1.0) -> None:
    """theta' <- tau theta + (1 - tau) theta' over parameters; buffers are copied."""
    for target_param, param in zip(target.parameters(), online.parameters()):
        if tau >= 1.0:
            target_param.copy_(param)
        else:
            target_param.lerp_(param, tau)
    for target_buffer, buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(buffer)
