"""Learner: owns the trainable modules and their optimizers, and turns batches into updates.

An algorithm supplies ``compute_loss_for_module`` (and, where it needs one, a
``prepare_batch`` step such as GAE that runs once per batch before the minibatch epochs).
Each trainable module has its own optimizers and its own epoch/minibatch loop. A batch that
``prepare_batch`` turned into padded sequences (``Columns.LOSS_MASK``, recurrent modules) is
shuffled by whole sequences, and ``minibatch_size`` counts their steps.
Learner connectors (``config.learner_connector``, ``marl_arena.connectors.learner_connector``)
transform each module batch before ``prepare_batch``: a hook that composes with any
algorithm's learner (curiosity bonuses), where a ``prepare_batch`` override would have to
be written again for every algorithm.
Data-parallel learners meet at two seams: ``gradient_reducer`` averages gradients, and
``batch_reducer`` sums the batch statistics that must span every learner's shard (PPO's
advantage standardisation and KL adaptation), so N learners update as one would on the
whole batch.

``reset_module`` restarts one module as a new learner would hold it; subclasses extend it
with the per-module state they keep (target networks, temperatures, KL coefficients).

A module has one optimizer (``DEFAULT_OPTIMIZER``) unless the algorithm's
``configure_optimizers_for_module`` names several, each over its own parameters. Then
``compute_loss_for_module`` returns one loss per name, and each optimizer's parameters
get the gradient of their own loss only: SAC's actor loss runs through the critic, and
the critic must not learn from it.
"""

from __future__ import annotations

import abc
import logging
import time
from typing import Any, Callable

import numpy as np
import torch

from marl_arena.algorithms.schedules import is_schedule, value_at
from marl_arena.connectors.learner_connector import build_learner_connectors
from marl_arena.core.columns import Columns
from marl_arena.core.rl_module import MultiRLModuleSpec, RLModule

logger = logging.getLogger(__name__)

TensorBatch = dict[str, torch.Tensor]
Losses = torch.Tensor | dict[str, torch.Tensor]

DEFAULT_OPTIMIZER = "default"
"""The name of a module's optimizer when the algorithm configures only one."""


class Learner(abc.ABC):
    """Updates the trainable modules of one MultiRLModule from per-module batches."""

    def __init__(self, config, module_spec: MultiRLModuleSpec, device: str = "cpu"):
        self.config = config
        self.env_steps = 0
        """The clock of the config's schedules (``scheduled_fields``): the algorithm's lifetime sampled
        env steps, moved on by ``set_env_steps``."""
        self.device = torch.device(device)
        self._module_spec = module_spec
        self.module = module_spec.build().to(self.device)
        self.module.train()
        self.module_ids_to_train = [mid for mid in self.module.keys() if config.is_policy_to_train(mid)]
        self.optimizers: dict[str, dict[str, torch.optim.Optimizer]] = {
            mid: self.configure_optimizers_for_module(mid, self.module[mid]) for mid in self.module_ids_to_train
        }
        self._rng = np.random.default_rng(config.seed)
        # Per module: (its optimizers dict, their trainable parameters by name), rebuilt when
        # the optimizers are replaced (reset_module).
        self._params: dict[str, tuple[dict, dict[str, list[torch.Tensor]]]] = {}
        # Called on each module after backward(), before clipping; data-parallel learners
        # set it to an all-reduce that averages gradients across processes.
        self.gradient_reducer: Callable[[RLModule], None] | None = None
        # Sums a tensor over data-parallel learners (an all-reduce); None for a single learner.
        self.batch_reducer: Callable[[torch.Tensor], torch.Tensor] | None = None
        # config.learner_connector's transforms (intrinsic rewards), run on each module batch
        # before prepare_batch. Each data-parallel learner runs its own on its shard.
        self.learner_connectors = build_learner_connectors(config, {mid: self.module[mid] for mid in self.module_ids_to_train})

    # ------------------------------------------------------------------ what algorithms provide
    @abc.abstractmethod
    def compute_loss_for_module(self, module_id: str, module: RLModule, batch: TensorBatch,
                                fwd_out: TensorBatch) -> tuple[Losses, dict[str, torch.Tensor]]:
        """The loss to minimise for one minibatch, and named diagnostics.

        One tensor for a module with one optimizer; a dict of losses keyed by optimizer
        name when ``configure_optimizers_for_module`` returns several.
        """

    def configure_optimizers_for_module(self, module_id: str, module: RLModule) -> dict[str, torch.optim.Optimizer]:
        """The module's optimizers by name, over disjoint parameters: one Adam at ``config.lr`` here
        (its schedule's current value where ``lr`` is one)."""
        return {DEFAULT_OPTIMIZER: adam(module.parameters(), lr=self.scheduled("lr"))}

    def scheduled(self, name: str) -> float:
        """The config field ``name`` now: a number as it is, a schedule at ``env_steps``."""
        return value_at(getattr(self.config, name), self.env_steps)

    def schedule_metrics(self) -> dict[str, float]:
        """``curr_<field>`` for each of the config's ``scheduled_fields``, as RLlib reports ``curr_lr``."""
        return {f"curr_{name}": self.scheduled(name) for name in self.config.scheduled_fields}

    def set_env_steps(self, env_steps: int) -> None:
        """Move the schedules' clock to ``env_steps``; each default optimizer takes the ``lr`` schedule's
        value there (an algorithm with other optimizers has its own learning rates, never scheduled)."""
        self.env_steps = int(env_steps)
        if not is_schedule(self.config.lr):
            return
        lr = self.scheduled("lr")
        for optimizers in self.optimizers.values():
            if DEFAULT_OPTIMIZER in optimizers:
                for group in optimizers[DEFAULT_OPTIMIZER].param_groups:
                    group["lr"] = lr

    def prepare_batch(self, module_id: str, batch: TensorBatch) -> TensorBatch:
        """Once per module batch, before the epochs (advantages, targets ...); identity here."""
        return batch

    def after_update(self, module_id: str, metrics: dict[str, float]) -> dict[str, float]:
        """Adjust per-module state from an update's metrics (PPO's KL coefficient); extra metrics out."""
        return {}

    def sum_over_learners(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over every data-parallel learner: statistics of the whole batch, not of a shard."""
        return tensor if self.batch_reducer is None else self.batch_reducer(tensor)

    # ------------------------------------------------------------------ updates
    def update(self, batches: dict[str, dict[str, np.ndarray]], num_epochs: int = 1,
               minibatch_size: int | None = None) -> dict[str, dict[str, float]]:
        """One update per trainable module; returns metrics by module id.

        Each module's metrics include the seconds its ``prepare_batch`` took
        (``prepare_batch_s``) and its epoch/minibatch loop (``minibatch_updates_s``).
        """
        metrics = {}
        for module_id in self.module_ids_to_train:
            batch = batches.get(module_id)
            if batch is None:
                continue
            start = time.perf_counter()
            tensors = {key: torch.as_tensor(value, device=self.device) for key, value in batch.items()}
            connector_metrics: dict[str, float] = {}
            for connector in self.learner_connectors:
                tensors, extra = connector(module_id, tensors)
                connector_metrics.update(extra)
            tensors = self.prepare_batch(module_id, tensors)
            prepared = time.perf_counter()
            module_metrics = self._update_module(module_id, tensors, num_epochs, minibatch_size)
            module_metrics["prepare_batch_s"] = prepared - start
            module_metrics["minibatch_updates_s"] = time.perf_counter() - prepared
            module_metrics.update(connector_metrics)
            module_metrics.update(self.after_update(module_id, module_metrics))
            metrics[module_id] = module_metrics
        return metrics

    def _update_module(self, module_id: str, batch: TensorBatch, num_epochs: int,
                       minibatch_size: int | None) -> dict[str, float]:
        module = self.module[module_id]
        size = len(next(iter(batch.values())))
        step = min(minibatch_size or size, size)
        mask = batch.get(Columns.LOSS_MASK)
        if mask is not None:  # whole sequences of a recurrent module: minibatch_size counts their steps
            step = min(max(1, (minibatch_size or mask.numel()) // mask.shape[1]), size)
        # Diagnostics stay tensors until the end: one device sync per update, not one per value.
        collected: dict[str, list[torch.Tensor]] = {}
        count = 0
        for _ in range(num_epochs):
            order = torch.as_tensor(self._rng.permutation(size), device=self.device)
            # One gather per column and epoch; each minibatch is then a slice (a view) of it.
            shuffled = {key: value.index_select(0, order) for key, value in batch.items()}
            for start in range(0, size - step + 1, step):
                minibatch = {key: value[start:start + step] for key, value in shuffled.items()}
                losses, stats = self.compute_loss_for_module(module_id, module, minibatch,
                                                             module.forward_train(minibatch))
                stats.update(self._step_optimizers(module_id, module, losses))
                for key, value in stats.items():
                    collected.setdefault(key, []).append(torch.as_tensor(value, dtype=torch.float64))
                count += 1
        metrics = {key: float(torch.stack(values).mean()) for key, values in collected.items()}
        metrics["num_module_steps_trained"] = float(size if mask is None else mask.sum())
        metrics["num_minibatch_updates"] = float(count)
        return metrics

    def _step_optimizers(self, module_id: str, module: RLModule, losses: Losses) -> dict[str, torch.Tensor]:
        """Gradients of each loss w.r.t. its optimizer's parameters only, then one step of each.

        Returns the gradient norm before clipping: ``gradients_global_norm`` for a single
        optimizer, ``gradients_global_norm_<name>`` for each of several.
        """
        optimizers = self.optimizers[module_id]
        if isinstance(losses, torch.Tensor):
            if len(optimizers) != 1:
                raise ValueError(f"Module {module_id!r} has optimizers {sorted(optimizers)}; "
                                 "compute_loss_for_module must return a dict with one loss per optimizer.")
            losses = {next(iter(optimizers)): losses}
        if set(losses) != set(optimizers):
            raise ValueError(f"compute_loss_for_module returned losses {sorted(losses)} for module {module_id!r}, "
                             f"whose optimizers are {sorted(optimizers)}.")
        params = self._params.get(module_id)
        if params is None or params[0] is not optimizers:
            params = self._params[module_id] = (optimizers, {
                name: [p for group in opt.param_groups for p in group["params"] if p.requires_grad]
                for name, opt in optimizers.items()})
        params = params[1]
        names = list(losses)
        for k, name in enumerate(names):
            grads = torch.autograd.grad(losses[name], params[name], retain_graph=k < len(names) - 1,
                                        allow_unused=True)
            for param, grad in zip(params[name], grads):
                param.grad = grad
        if self.gradient_reducer is not None:
            self.gradient_reducer(module)
        if self.config.grad_clip is None:  # the norm is a diagnostic only: nothing to rescale
            norms = {name: torch.nn.utils.get_total_norm([p.grad for p in params[name] if p.grad is not None])
                     for name in names}
        else:
            norms = {name: torch.nn.utils.clip_grad_norm_(params[name], self.config.grad_clip) for name in names}
        for optimizer in optimizers.values():
            optimizer.step()
        if len(norms) == 1:
            return {"gradients_global_norm": next(iter(norms.values()))}
        return {f"gradients_global_norm_{name}": norm for name, norm in norms.items()}

    # ------------------------------------------------------------------ restarting a module
    def reset_module(self, module_id: str) -> None:
        """Restart ``module_id`` as a new player: fresh weights from its spec and new optimizers.

        Nothing of the old player may carry over (a league's exploiter must find new
        weaknesses, not refine old ones), so Adam's moments go with the weights. The module
        object stays, so whatever refers to its parameters keeps working.
        """
        if module_id not in self.optimizers:
            raise ValueError(f"reset_module: module {module_id!r} is not trained here; "
                             f"trained modules: {sorted(self.optimizers)}.")
        module = self.module[module_id]
        fresh = self._module_spec.rl_module_specs[module_id].build()
        module.load_state_dict(fresh.state_dict())
        self.optimizers[module_id] = self.configure_optimizers_for_module(module_id, module)
        logger.info("reset module %s to fresh weights and optimizers", module_id)

    # ------------------------------------------------------------------ weights and state
    def get_weights(self, module_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        return self.module.get_state(module_ids)

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        self.module.set_state({mid: {k: v.to(self.device) for k, v in w.items()} for mid, w in weights.items()})

    def get_extra_state(self) -> dict[str, Any]:
        """Algorithm-specific learner state worth checkpointing (PPO's KL coefficients)."""
        return {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_extra_state`` returned."""

    def get_state(self) -> dict[str, Any]:
        return {
            "modules": self.get_weights(),
            "optimizers": {mid: {name: opt.state_dict() for name, opt in named.items()}
                           for mid, named in self.optimizers.items()},
            "rng": self._rng.bit_generator.state,
            # Losses that sample (SAC's actions, noisy nets) draw from torch's global generator.
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "extra": self.get_extra_state(),
            "learner_connectors": [connector.get_state() for connector in self.learner_connectors],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_weights(state["modules"])
        for mid, named_states in state["optimizers"].items():
            if "param_groups" in named_states:  # written before modules had named optimizers
                named_states = {DEFAULT_OPTIMIZER: named_states}
            for name, opt_state in named_states.items():
                self.optimizers[mid][name].load_state_dict(opt_state)
        self._rng.bit_generator.state = state["rng"]
        if "torch_rng" in state:  # checkpoints before it was kept restore without it
            torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.set_extra_state(state["extra"])
        # A checkpoint written without connectors (or before they existed) restores none.
        for connector, connector_state in zip(self.learner_connectors, state.get("learner_connectors", [])):
            connector.set_state(connector_state)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where the parameters' device has one (CPU and CUDA).

    The fused step does the whole update in one kernel; the default loops over the
    parameters in Python, which for a small network costs several times the arithmetic.
    """
    params = list(params)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)
