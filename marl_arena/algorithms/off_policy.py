"""OffPolicyAlgorithm: the replay training loop that DQN and SAC share.

One training step:

1. sample ``rollout_fragment_length`` env steps per sub-env with the exploring modules;
2. turn each module's segments into n-step transitions and add them to its replay buffer;
3. once ``num_steps_sampled_before_learning_starts`` env steps were sampled, run K gradient
   steps, each on ``train_batch_size`` replayed transitions per module (K = 1, or as many
   as ``training_intensity`` asks), and give the TD errors back to prioritized replay;
4. call the learners' ``after_training_step`` (target copies, DQN's epsilon), sync weights.

``train()`` repeats training steps until ``min_sample_timesteps_per_iteration`` env steps
were sampled, and reports the mean learner metrics of the iteration.

The learner class must provide ``pop_td_errors() -> {module_id: (slots, td_errors)}`` and
``after_training_step(num_env_steps_sampled_lifetime) -> {name: float}`` (the values join
every trained module's metrics); ``OffPolicyLearner`` has both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.off_policy_config import OffPolicyConfig
from marl_arena.core.columns import Columns
from marl_arena.replay.buffers import MultiAgentReplayBuffer
from marl_arena.replay.n_step import n_step_transitions

# Sampling extras that replay does not need.
_DROPPED_COLUMNS = (Columns.ACTION_LOGP, Columns.ACTION_DIST_INPUTS)


def without_lookahead(transitions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the rows that only served as n-step look-ahead (the runner sends them again later)."""
    lookahead = transitions.pop(Columns.LOOKAHEAD, None)
    if lookahead is None or not lookahead.any():
        return transitions
    keep = ~lookahead
    return {key: value[keep] for key, value in transitions.items()}


class OffPolicyAlgorithm(Algorithm):
    """Sample into per-module replay, learn from replay; subclasses name config, learner and module."""

    def __init__(self, config: OffPolicyConfig):
        super().__init__(config)
        self.replay_buffer = MultiAgentReplayBuffer(self.config.replay_buffer_config)
        seed = self.config.seed
        self._replay_rng = np.random.default_rng(None if seed is None else seed + 104729)
        self._update_credit = 0.0  # fractional gradient steps owed under training_intensity
        self._after_step_metrics: dict[str, float] = {}

    def training_step(self) -> dict[str, Any]:
        out, _ = self.steps_until_sampled(lambda: [self._one_step()])
        for mid in self.learner_group.module_ids_to_train:
            module_metrics = out.setdefault(mid, {})
            module_metrics.update(self._after_step_metrics)
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
                transitions = without_lookahead(n_step_transitions(batch, config.n_step, config.gamma))
                if len(transitions[Columns.REWARDS]):
                    self.replay_buffer.add({mid: transitions})
        lifetime = self._env_steps_lifetime()
        metrics: dict[str, dict[str, float]] = {}
        if lifetime >= config.num_steps_sampled_before_learning_starts and len(self.replay_buffer):
            for _ in range(self._num_updates(sampled)):
                for mid, module_metrics in self._update_once().items():
                    metrics.setdefault(mid, {}).update(module_metrics)  # the last update's metrics
        with self.timed("after_training_step"):
            self._after_step_metrics = self.learner_group.foreach_learner("after_training_step", lifetime)[0]
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

    def reset_module(self, module_id: str) -> None:
        """Restart the module, and drop its replay: the old player's transitions are not the new one's."""
        super().reset_module(module_id)
        self.replay_buffer.clear(module_id)

    # ------------------------------------------------------------------ checkpoints
    def get_extra_state(self) -> dict[str, Any]:
        """The replay RNG and gradient-step credit; the buffers too with ``store_buffer_in_checkpoints``."""
        state = {"replay_rng": self._replay_rng.bit_generator.state, "update_credit": self._update_credit}
        if self.config.store_buffer_in_checkpoints:
            state["replay_buffer"] = self.replay_buffer.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_extra_state`` saved; a checkpoint without buffers leaves them empty."""
        if "replay_rng" in state:
            self._replay_rng.bit_generator.state = state["replay_rng"]
            self._update_credit = float(state["update_credit"])
        if "replay_buffer" in state:
            self.replay_buffer.set_state(state["replay_buffer"])
