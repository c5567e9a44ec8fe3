"""LearnerGroup: where learning happens.

Building a local learner sets torch's intra-op thread count for the whole driver process to
``num_cpus_per_learner`` (default 1): on small networks extra threads spin against the
runners for the same cores and make updates many times slower.

``num_learners=0`` learns in the driver process (on the GPU when
``num_gpus_per_learner`` > 0). ``num_learners=N`` starts N Ray actors, each holding a
full copy of the modules, each updating on its shard of the batch while
``torch.distributed`` (gloo on CPU, nccl on GPU) averages their gradients. Data-parallel
learners are only correct while every rank holds the same state, so every rank takes rank
0's whole learner state (weights, target networks, optimizer moments, RNGs, algorithm
extras) when the group starts and after a module is reset; the ranks therefore also draw
the same noise, each for its own rows.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import numpy as np
import torch

from marl_arena.core.rl_module import MultiRLModuleSpec

logger = logging.getLogger(__name__)


def learner_device(num_gpus_per_learner: float) -> str:
    """The torch device of a learner that was given ``num_gpus_per_learner`` GPUs."""
    if num_gpus_per_learner <= 0:
        return "cpu"
    if not torch.cuda.is_available():
        raise ValueError(
            f"num_gpus_per_learner={num_gpus_per_learner:g} but torch sees no CUDA device; "
            "set num_gpus_per_learner=0 to learn on the CPU."
        )
    return "cuda"


def learner_class_for(config, algorithm_learner_class: type | None) -> type:
    """The learner class to build: ``config.learner_class`` when set, else the algorithm's.

    A custom class must subclass the algorithm's learner: the algorithm's training step
    calls that learner's methods (PPO's KL adaptation, DQN's TD errors) and its loss is
    what a custom loss term extends.
    """
    from marl_arena.learners.learner import Learner

    base = algorithm_learner_class or Learner
    custom = getattr(config, "learner_class", None)
    if custom is None:
        return base
    if not (isinstance(custom, type) and issubclass(custom, base)):
        raise ValueError(f"learner_class={custom!r} is not allowed: it must be a subclass of "
                         f"{base.__module__}.{base.__qualname__}, the learner of this algorithm.")
    return custom


def shard_batches(batches: dict[str, dict[str, np.ndarray]], num_shards: int) -> list[dict[str, dict[str, np.ndarray]]]:
    """Split every module batch into ``num_shards`` contiguous row ranges of equal size.

    Rows past an even split are dropped, so every learner runs the same number of
    minibatch steps (a collective all-reduce must be called equally often everywhere);
    a cut inside a trajectory segment is marked truncated so advantages bootstrap there.
    """
    shards: list[dict[str, dict[str, np.ndarray]]] = [{} for _ in range(num_shards)]
    for module_id, batch in batches.items():
        rows = len(next(iter(batch.values()))) // num_shards
        for k in range(num_shards):
            part = {key: value[k * rows:(k + 1) * rows] for key, value in batch.items()}
            if "truncateds" in part and rows:
                part["truncateds"] = part["truncateds"].copy()
                part["truncateds"][-1] = part["truncateds"][-1] or not part["terminateds"][-1]
            shards[k][module_id] = part
    return shards


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _DistributedLearner:
    """A Ray actor holding one Learner in a torch.distributed process group."""

    def __init__(self, learner_class, config, module_spec, rank: int, world_size: int, address: str, port: int):
        torch.set_num_threads(max(1, int(config.num_cpus_per_learner)))
        if config.seed is not None:  # losses that sample draw from torch's global generator
            torch.manual_seed(config.seed)
        device = learner_device(config.num_gpus_per_learner)
        backend = "nccl" if device == "cuda" else "gloo"
        os.environ.setdefault("MASTER_ADDR", address)
        os.environ["MASTER_PORT"] = str(port)
        torch.distributed.init_process_group(backend, rank=rank, world_size=world_size)
        self.learner = learner_class(config, module_spec, device=device)
        self.learner.gradient_reducer = self._all_reduce
        self.learner.batch_reducer = self._sum
        self._world_size = world_size

    def _all_reduce(self, module) -> None:
        for param in module.parameters():
            if param.grad is not None:
                torch.distributed.all_reduce(param.grad, op=torch.distributed.ReduceOp.SUM)
                param.grad /= self._world_size

    @staticmethod
    def _sum(tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
        return total

    def update(self, batches, num_epochs, minibatch_size):
        return self.learner.update(batches, num_epochs, minibatch_size)

    def call(self, method: str, *args):
        return getattr(self.learner, method)(*args)

    def shutdown(self) -> None:
        torch.distributed.destroy_process_group()


class LearnerGroup:
    """One local Learner, or ``num_learners`` data-parallel Learner actors.

    ``learner_class`` is the algorithm's; ``config.learner_class``, a subclass of it, replaces it.
    """

    def __init__(self, config, learner_class: type, module_spec: MultiRLModuleSpec, cpus_per_learner: float = 1.0):
        self.config = config
        learner_class = learner_class_for(config, learner_class)
        self.module_ids_to_train = [mid for mid in module_spec.rl_module_specs if config.is_policy_to_train(mid)]
        self._actors: list = []
        self.local_learner = None
        if config.num_learners == 0:
            # The driver learns with the CPUs the config gives a learner: small networks on
            # more threads than free cores lose badly to OpenMP spinning (100x measured here).
            torch.set_num_threads(max(1, int(config.num_cpus_per_learner)))
            self.local_learner = learner_class(config, module_spec, device=learner_device(config.num_gpus_per_learner))
            return
        import ray

        remote = ray.remote(_DistributedLearner).options(
            num_cpus=cpus_per_learner, num_gpus=config.num_gpus_per_learner, max_restarts=0
        )
        port = _free_port()
        address = ray.util.get_node_ip_address()
        self._actors = [
            remote.remote(learner_class, config, module_spec, rank, config.num_learners, address, port)
            for rank in range(config.num_learners)
        ]
        self._align_to_first_learner()

    def _align_to_first_learner(self) -> None:
        """Give every learner actor rank 0's whole state (see the module docstring for why).

        The state travels as an object reference from actor to actor and is never
        deserialised in the driver, which may have no GPU for the optimizers' tensors.
        Rank 0 loads its own state back, a no-op that makes this wait for every actor, so
        one that failed to start fails here.
        """
        import ray

        state = self._actors[0].call.remote("get_state")
        ray.get([actor.call.remote("set_state", state) for actor in self._actors])

    def _call(self, method: str, *args) -> Any:
        if self.local_learner is not None:
            return getattr(self.local_learner, method)(*args)
        import ray

        return ray.get(self._actors[0].call.remote(method, *args))

    def foreach_learner(self, method: str, *args) -> list[Any]:
        """Call a Learner method on every learner (the local one, or each actor); results in rank order."""
        if self.local_learner is not None:
            return [getattr(self.local_learner, method)(*args)]
        import ray

        return ray.get([actor.call.remote(method, *args) for actor in self._actors])

    def update(self, batches: dict[str, dict[str, np.ndarray]], num_epochs: int = 1,
               minibatch_size: int | None = None) -> dict[str, dict[str, float]]:
        """Update on ``batches``; with N learners each takes 1/N of every module's rows."""
        if self.local_learner is not None:
            return self.local_learner.update(batches, num_epochs, minibatch_size)
        import ray

        n = len(self._actors)
        per_learner = None if minibatch_size is None else max(1, minibatch_size // n)
        shards = shard_batches(batches, n)
        results = ray.get([a.update.remote(s, num_epochs, per_learner) for a, s in zip(self._actors, shards)])
        return {mid: {k: float(np.mean([r[mid][k] for r in results])) for k in results[0][mid]} for mid in results[0]}

    def get_weights(self, module_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        return self._call("get_weights", module_ids)

    def reset_module(self, module_id: str) -> None:
        """Restart ``module_id`` on every learner (``Learner.reset_module``) with one set of fresh weights."""
        self.foreach_learner("reset_module", module_id)
        if self._actors:
            self._align_to_first_learner()

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        self.foreach_learner("set_weights", weights)

    def get_state(self) -> dict[str, Any]:
        return self._call("get_state")

    def set_state(self, state: dict[str, Any]) -> None:
        self.foreach_learner("set_state", state)

    def stop(self) -> None:
        if not self._actors:
            return
        import ray

        ray.get([actor.shutdown.remote() for actor in self._actors])
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
