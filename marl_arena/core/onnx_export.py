"""An RLModule's inference forward pass as an ONNX model, for clients that act without torch.

The graph maps ``obs`` (float32, ``[batch, obs_dim]``) and, for masked action spaces,
``action_mask`` (float32, ``[batch, num_actions]``) to ``action_dist_inputs``: logits for
Discrete actions, ``[mean, log_std]`` for Box actions. Sampling stays with the caller, so
the exported graph is the same for exploration and greedy play.

A stateful module (``use_lstm``) has one more input and output: ``state_in`` (float32,
``[batch, state_size]``; zeros, ``get_initial_state()``, at an episode's start) and
``state_out``, which the caller feeds back as the next step's ``state_in``.

Uses torch's TorchScript-based exporter: it needs no extra package (the dynamo exporter
needs onnxscript) and handles the default MLP and CNN modules (a CNN reshapes the flat ``obs``
to its observation's planes inside the graph).
"""

from __future__ import annotations

import io
import os
import warnings

import torch

from marl_arena.core.columns import Columns
from marl_arena.core.models import flat_dim
from marl_arena.core.rl_module import RLModule

_OPSET = 17


class _InferenceGraph(torch.nn.Module):
    """Positional inputs around ``forward_inference``'s dict API, which the exporter needs."""

    def __init__(self, module: RLModule, with_mask: bool):
        super().__init__()
        self.module = module
        self.with_mask = with_mask
        self.stateful = module.is_stateful()

    def forward(self, obs: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        rest = list(rest)
        batch = {Columns.OBS: obs}
        if self.stateful:
            batch[Columns.STATE_IN] = rest.pop(0)
        if self.with_mask:
            batch[Columns.ACTION_MASK] = rest.pop(0)
        out = self.module.forward_inference(batch)
        if self.stateful:
            return out[Columns.ACTION_DIST_INPUTS], out[Columns.STATE_OUT]
        return out[Columns.ACTION_DIST_INPUTS]


def export_module_onnx(module: RLModule, path: str | os.PathLike | io.BytesIO, with_mask: bool = False) -> None:
    """Write ``module``'s inference graph to ``path`` (a file path or a binary buffer).

    ``with_mask`` adds the ``action_mask`` input; it needs a Discrete action space.
    """
    obs = torch.zeros(1, flat_dim(module.observation_space), dtype=torch.float32)
    inputs: tuple[torch.Tensor, ...] = (obs,)
    names = ["obs"]
    outputs = [Columns.ACTION_DIST_INPUTS]
    initial_state = module.get_initial_state()
    if initial_state is not None:
        inputs += (initial_state[None].float(),)
        names.append(Columns.STATE_IN)
        outputs.append(Columns.STATE_OUT)
    if with_mask:
        if not hasattr(module.action_space, "n"):
            raise ValueError(f"An action mask needs a Discrete action space, got {module.action_space}.")
        inputs += (torch.ones(1, int(module.action_space.n), dtype=torch.float32),)
        names.append(Columns.ACTION_MASK)
    axes = {name: {0: "batch"} for name in [*names, *outputs]}
    graph = _InferenceGraph(module, with_mask)
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's deprecation notice
            torch.onnx.export(graph, inputs, path, input_names=names, output_names=outputs,
                              dynamic_axes=axes, opset_version=_OPSET, dynamo=False)
    finally:
        module.train(was_training)


def module_onnx_bytes(module: RLModule, with_mask: bool = False) -> bytes:
    """The ONNX model of ``export_module_onnx`` as bytes (what a server sends its clients)."""
    buffer = io.BytesIO()
    export_module_onnx(module, buffer, with_mask)
    return buffer.getvalue()
