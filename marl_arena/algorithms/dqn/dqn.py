"""DQN: sample a fragment, store n-step transitions per module, replay, learn, update targets, sync.

One training step:

1. sample ``rollout_fragment_length`` env steps per sub-env with the epsilon-greedy modules;
2. turn each module's segments into n-step transitions and add them to its replay buffer;
3. once ``num_steps_sampled_before_learning_starts`` env steps were sampled, run K gradient
   steps, each on ``train_batch_size`` replayed transitions per module (K = 1, or as many
   as ``training_intensity`` asks), and give the TD errors back to prioritized replay;
4. set epsilon from the schedule, update the target networks, sync weights to the runners.

``train()`` repeats training steps until ``min_sample_timesteps_per_iteration`` env steps
were sampled, and reports the mean learner metrics of the iteration.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.dqn.dqn_config import DQNConfig
from marl_arena.algorithms.dqn.dqn_learner import DQNLearner
from marl_arena.core.columns import Columns
from marl_arena.core.q_module import DuelingQModule, QModule
from marl_arena.replay.buffers import MultiAgentReplayBuffer
from marl_arena.replay.n_step import n_step_transitions

# Sampling extras that replay does not need.
_DROPPED_COLUMNS = (Columns.ACTION_LOGP, Columns.ACTION_DIST_INPUTS)


class DQN(Algorithm):
    config_class = DQNConfig
    learner_class = DQNLearner
    default_module_class = DuelingQModule

    def __init__(self, config: DQNConfig):
        # Before the base class builds the module specs from it.
        self.default_module_class = DuelingQModule if config.dueling else QModule
        super().__init__(config)
        self.replay_buffer = MultiAgentReplayBuffer(self.config.replay_buffer_config)
        seed = self.config.seed
        self._replay_rng = np.random.default_rng(None if seed is None else seed + 104729)
        self._update_credit = 0.0  # fractional gradient steps owed under training_intensity

    @classmethod
    def get_default_config(cls) -> DQNConfig:
        return DQNConfig()

    def _env_steps_lifetime(self) -> int:
        return self._counters["num_env_steps_sampled_lifetime"] + sum(r.env_steps for r in self._iteration_sampled)

    def training_step(self) -> dict[str, Any]:
        config = self.config
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        start_steps = sum(r.env_steps for r in self._iteration_sampled)
        while True:
            for mid, metrics in self._one_step().items():
                for key, value in metrics.items():
                    sums[mid][key] += value
                    counts[mid][key] += 1
            sampled = sum(r.env_steps for r in self._iteration_sampled) - start_steps
            if sampled >= config.min_sample_timesteps_per_iteration:
                break
        out = {mid: {k: v / counts[mid][k] for k, v in module_sums.items()} for mid, module_sums in sums.items()}
        for mid in self.learner_group.module_ids_to_train:
            module_metrics = out.setdefault(mid, {})
            module_metrics["epsilon"] = self._epsilon
            module_metrics["replay_buffer_size"] = float(len(self.replay_buffer[mid])) \
                if mid in self.replay_buffer.module_ids else 0.0
        return out

    def _one_step(self) -> dict[str, dict[str, float]]:
        config = self.config
        per_round = config.get_rollout_fragment_length() * config.num_envs_per_env_runner * max(1, config.num_env_runners)
        with self.timed("env_runner_sampling_timer"):
            batches, results = self.sample_batches(per_round)
        sampled = sum(r.env_steps for r in results)
        with self.timed("replay_add"):
            for mid, batch in batches.items():
                if len(batch[Columns.REWARDS]) == 0:
                    continue
                batch = {k: v for k, v in batch.items() if k not in _DROPPED_COLUMNS}
                self.replay_buffer.add({mid: n_step_transitions(batch, config.n_step, config.gamma)})
        lifetime = self._env_steps_lifetime()
        metrics: dict[str, dict[str, float]] = {}
        if lifetime >= config.num_steps_sampled_before_learning_starts and len(self.replay_buffer):
            for _ in range(self._num_updates(sampled)):
                for mid, module_metrics in self._update_once().items():
                    metrics.setdefault(mid, {}).update(module_metrics)  # the last update's metrics
        with self.timed("target_and_epsilon"):
            after = self.learner_group.foreach_learner("after_training_step", lifetime)[0]
        self._epsilon = after["epsilon"]
        with self.timed("synch_weights"):
            self._sync_weights()
        return metrics

    def _num_updates(self, sampled_env_steps: int) -> int:
        intensity = self.config.training_intensity
        if intensity is None:
            return 1
        self._update_credit += intensity * sampled_env_steps / self.config.total_train_batch_size
        updates = int(self._update_credit)
        self._update_credit -= updates
        return updates

    def _update_once(self) -> dict[str, dict[str, float]]:
        with self.timed("replay_sample"):
            samples = self.replay_buffer.sample(self.config.total_train_batch_size, self._replay_rng)
        with self.timed("learner_update_timer"):
            metrics = self.learner_group.update(samples, 1, None)
        if self.config.replay_buffer_config["type"] == "PrioritizedReplayBuffer":
            with self.timed("update_priorities"):
                for per_learner in self.learner_group.foreach_learner("pop_td_errors"):
                    for mid, (indexes, td_errors) in per_learner.items():
                        self.replay_buffer.update_priorities(mid, indexes, td_errors)
        else:
            self.learner_group.foreach_learner("pop_td_errors")
        return metrics

    _epsilon = float("nan")
