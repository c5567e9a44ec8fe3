"""PPO: sample ``train_batch_size`` env steps, update for ``num_epochs`` minibatch epochs, sync.

With ``overlap_sampling`` the remote runners sample the next batch while the learner
updates on this one (see ``PPOConfig.overlap_sampling``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.ppo.ppo_config import PPOConfig
from marl_arena.algorithms.ppo.ppo_learner import PPOLearner
from marl_arena.runners.env_runner import SampleResult


class PPO(Algorithm):
    config_class = PPOConfig
    learner_class = PPOLearner

    def training_step(self) -> dict[str, Any]:
        with self.timed("env_runner_sampling_timer"):
            if self.config.overlap_sampling:
                batches, results = self._sample_overlapped(self.config.total_train_batch_size)
            else:
                batches, results = self.sample_batches(self.config.total_train_batch_size)
        # How many updates behind the learner the sampling weights were (1 when overlapped).
        lag = float(np.mean([self._weights_version - r.weights_version for r in results])) if results else 0.0
        self._advance_schedule_clock()
        with self.timed("learner_update_timer"):
            metrics = self.learner_group.update(batches, self.config.num_epochs, self.config.minibatch_size)
        for module_metrics in metrics.values():
            module_metrics["policy_lag"] = lag
        # The learner's own split of its update (GAE, then the epochs), summed over modules.
        for phase in ("prepare_batch", "minibatch_updates"):
            seconds = sum(m.get(f"{phase}_s", 0.0) for m in metrics.values())
            self._timers[f"learner_{phase}"] = self._timers.get(f"learner_{phase}", 0.0) + seconds
        with self.timed("synch_weights"):
            # Remote runners load the weights ahead of their next sample call: no round trip here.
            self._sync_weights(blocking=False)
        return metrics

    def _sample_overlapped(self, num_env_steps: int) -> tuple[dict[str, dict[str, np.ndarray]], list[SampleResult]]:
        """At least ``num_env_steps`` env steps from fragments already in flight; each runner
        starts its next fragment at once, with the weights it has, so it samples while the
        learner updates. In the driver (no remote runners) this is a plain blocking sample."""
        per_runner = math.ceil(num_env_steps / max(1, self.env_runner_group.num_remote_runners))
        results = []
        while sum(r.env_steps for r in results) < num_env_steps:
            results += self.env_runner_group.sample_async(per_runner, timeout_s=None)
        return self.batches_from(results), results
