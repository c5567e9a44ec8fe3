"""PPO: sample ``train_batch_size`` env steps, update for ``num_epochs`` minibatch epochs, sync."""

from __future__ import annotations

from typing import Any

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.ppo.ppo_config import PPOConfig
from marl_arena.algorithms.ppo.ppo_learner import PPOLearner


class PPO(Algorithm):
    config_class = PPOConfig
    learner_class = PPOLearner

    def training_step(self) -> dict[str, Any]:
        with self.timed("env_runner_sampling_timer"):
            batches, _ = self.sample_batches(self.config.total_train_batch_size)
        with self.timed("learner_update_timer"):
            metrics = self.learner_group.update(batches, self.config.num_epochs, self.config.minibatch_size)
        with self.timed("synch_weights"):
            self._sync_weights()
        return metrics
