"""IMPALA, and the asynchronous actor-learner loop it shares with APPO.

One round of the loop:

1. take the fragments the runners have finished (``EnvRunnerGroup.sample_async``: every
   runner actor always has one sample call in flight, with the weights it last loaded;
   with ``num_env_runners=0`` the driver samples one fragment here, and only when the
   learner has nothing left to draw: sampling and learning take turns, so every batch is
   learned from ``circular_buffer_iterations_per_batch`` times);
2. collect fragments until they make a train batch of ``train_batch_size`` env steps and
   queue it for the learner (at most ``learner_queue_size`` wait; older ones are dropped);
3. move the oldest waiting batch into the circular buffer and update once on a batch drawn
   from it (``circular_buffer_num_batches`` / ``circular_buffer_iterations_per_batch``);
4. every ``broadcast_interval`` updates, put the new weights in the object store as the
   next weights version; each runner loads them before its next fragment.

Every fragment carries the weights version it was drawn with; a batch's staleness is the
learner's current weights version minus the (env-step weighted) version of its fragments,
reported as ``learners/__all_modules__/sample_staleness_mean`` and ``..._max``. A
``train()`` call runs rounds until it has sampled ``min_sample_timesteps_per_iteration``
env steps (in one process: and learned from all of them) and ``min_time_s_per_iteration``
seconds have passed.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Any

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.impala.circular_buffer import CircularBuffer, TrainBatch
from marl_arena.algorithms.impala.impala_config import IMPALAConfig
from marl_arena.algorithms.impala.impala_learner import IMPALALearner
from marl_arena.runners.env_runner import SampleResult, concat_segments

ALL_MODULES = "__all_modules__"
"""Key of the learner metrics that belong to no one module (RLlib's name)."""


class IMPALA(Algorithm):
    config_class = IMPALAConfig
    learner_class = IMPALALearner

    def __init__(self, config: IMPALAConfig):
        super().__init__(config)
        seed = self.config.seed
        self.circular_buffer = CircularBuffer(self.config.circular_buffer_num_batches,
                                              self.config.circular_buffer_iterations_per_batch,
                                              None if seed is None else seed + 15485863)
        self._learner_queue: deque[TrainBatch] = deque()
        self._fragments: list[SampleResult] = []  # finished fragments not yet in a train batch
        self._updates_since_broadcast = 0
        # A module restarted as a new player (a league's reset) learns nothing drawn by the old one.
        self._reset_at_version: dict[str, int] = {}
        self._async_counters = {"num_updates_lifetime": 0, "num_weight_broadcasts_lifetime": 0,
                                "num_batches_dropped_lifetime": 0}

    def training_step(self) -> dict[str, Any]:
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        updates: dict[str, int] = defaultdict(int)
        staleness: list[float] = []  # one per update
        start_steps = sum(r.env_steps for r in self._iteration_sampled)
        # The whole iteration is one training step, so its metrics cover every update in it.
        deadline = time.perf_counter() + self.config.min_time_s_per_iteration
        while True:
            if self.env_runner_group.local_runner is None or not self._has_learner_work():
                with self.timed("env_runner_sampling_timer"):
                    self._add_fragments(self.env_runner_group.sample_async(
                        self.config.get_rollout_fragment_length() * self.config.num_envs_per_env_runner,
                        timeout_s=0.0 if self._has_learner_work() else self.config.sample_timeout_s))
            for module_id, metrics in (self._update_once(staleness) or {}).items():
                updates[module_id] += 1
                for key, value in metrics.items():
                    sums[module_id][key] += value
            sampled = sum(r.env_steps for r in self._iteration_sampled) - start_steps
            # In one process an iteration also learns all it sampled, so iterations repeat exactly.
            done_learning = self.env_runner_group.local_runner is None or not self._has_learner_work()
            if (sampled >= self.config.min_sample_timesteps_per_iteration and done_learning
                    and time.perf_counter() >= deadline):
                break
        out: dict[str, Any] = {mid: {k: v / updates[mid] for k, v in module_sums.items()}
                               for mid, module_sums in sums.items()}
        out[ALL_MODULES] = {
            **{key: float(value) for key, value in self._async_counters.items()},
            "num_updates": float(len(staleness)),
            "sample_staleness_mean": float(np.mean(staleness)) if staleness else float("nan"),
            "sample_staleness_max": float(np.max(staleness)) if staleness else float("nan"),
            "learner_queue_size": float(len(self._learner_queue)),
            "circular_buffer_size": float(len(self.circular_buffer)),
            "num_batches_evicted_lifetime": float(self.circular_buffer.num_evicted),
            "num_samples_dropped_lifetime": float(self.env_runner_group.num_dropped_samples),
        }
        return out

    def _has_learner_work(self) -> bool:
        """Whether a batch waits or can still be drawn: then runners are not waited for."""
        return bool(self._learner_queue) or len(self.circular_buffer) > 0

    def _add_fragments(self, results: list[SampleResult]) -> None:
        """Record finished fragments; once they hold a train batch's env steps, queue it for the learner."""
        self._record_samples(results)
        for result in results:
            for module_id, version in self._reset_at_version.items():
                if result.weights_version < version:
                    result.batches.pop(module_id, None)
        self._fragments += [r for r in results if r.batches]
        steps = sum(r.env_steps for r in self._fragments)
        if not self._fragments or steps < self.config.total_train_batch_size:
            return
        parts: dict[str, list] = defaultdict(list)
        for result in self._fragments:
            for module_id, batch in result.batches.items():
                parts[module_id].append(batch)
        version = sum(r.weights_version * r.env_steps for r in self._fragments) / max(steps, 1)
        self._learner_queue.append(TrainBatch({mid: concat_segments(b) for mid, b in parts.items()}, version, steps))
        self._fragments = []
        if len(self._learner_queue) > self.config.learner_queue_size:
            self._learner_queue.popleft()
            self._async_counters["num_batches_dropped_lifetime"] += 1

    def _update_once(self, staleness: list[float]) -> dict[str, dict[str, float]] | None:
        """One learner update on a batch from the circular buffer (None if it is empty); broadcast when due."""
        if self._learner_queue:
            self.circular_buffer.add(self._learner_queue.popleft())
        batch = self.circular_buffer.sample()
        if batch is None:
            return None
        staleness.append(self._weights_version - batch.weights_version)
        with self.timed("learner_update_timer"):
            metrics = self.learner_group.update(batch.batches, self.config.num_epochs, self.config.minibatch_size)
        self._async_counters["num_updates_lifetime"] += 1
        self._updates_since_broadcast += 1
        if self._updates_since_broadcast >= self.config.broadcast_interval:
            with self.timed("synch_weights"):
                self._sync_weights(blocking=False)
            self._updates_since_broadcast = 0
            self._async_counters["num_weight_broadcasts_lifetime"] += 1
        return metrics

    def reset_module(self, module_id: str) -> None:
        """Restart the module, and drop the batches drawn by the old player (they are not the new one's)."""
        super().reset_module(module_id)
        self._reset_at_version[module_id] = self._weights_version
        self.circular_buffer.drop_module(module_id)
        for batch in self._learner_queue:
            batch.batches.pop(module_id, None)
        for result in self._fragments:
            result.batches.pop(module_id, None)
