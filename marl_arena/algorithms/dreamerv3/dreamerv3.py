"""DreamerV3 (Hafner et al. 2023): learn a world model from replayed sequences, and act with an
actor-critic trained in its imagination.

One training step:

1. sample whole episodes, one per sub-env, with the modules' recurrent acting (the runners
   keep each agent's RSSM state; see ``DreamerV3Module``);
2. add every trained module's agent episodes to its sequence replay;
3. once ``num_steps_sampled_before_learning_starts`` env steps were sampled, run as many
   updates as ``training_ratio`` asks (replayed steps per sampled env step, an update
   replaying ``batch_size_B x batch_length_T`` steps), each on freshly sampled sequences;
4. sync weights to the runners.

Whole episodes keep every replayed sequence inside one continuous stream of an agent's
steps, so the RSSM never sees an episode cut by a rollout fragment. A league's frozen
opponents act inside the runners and are part of the env from the learner's side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.dreamerv3.dreamerv3_config import DreamerV3Config
from marl_arena.algorithms.dreamerv3.dreamerv3_learner import DreamerV3Learner
from marl_arena.algorithms.dreamerv3.dreamerv3_module import DreamerV3Module
from marl_arena.algorithms.dreamerv3.sequence_replay import SequenceReplay, episode_rows
from marl_arena.core.columns import Columns

# Sampling extras the replay does not keep (the acting state is recomputed from the sequence).
_DROPPED_COLUMNS = (Columns.ACTION_LOGP, Columns.ACTION_DIST_INPUTS, Columns.STATE_IN)


class DreamerV3(Algorithm):
    config_class = DreamerV3Config
    learner_class = DreamerV3Learner
    default_module_class = DreamerV3Module

    def __init__(self, config: DreamerV3Config):
        super().__init__(config)
        self.replay: dict[str, SequenceReplay] = {}
        seed = self.config.seed
        self._replay_rng = np.random.default_rng(None if seed is None else seed + 104729)
        self._update_credit = 0.0  # fractional updates owed under training_ratio
        self.num_updates_lifetime = 0

    def _replay_for(self, module_id: str) -> SequenceReplay:
        if module_id not in self.replay:
            self.replay[module_id] = SequenceReplay(self.config.replay_buffer_capacity)
        return self.replay[module_id]

    def training_step(self) -> dict[str, Any]:
        out, updates = self.steps_until_sampled(self._one_step)
        for mid in self.learner_group.module_ids_to_train:
            module_metrics = out.setdefault(mid, {})
            module_metrics["replay_buffer_size"] = float(len(self.replay[mid])) if mid in self.replay else 0.0
            module_metrics["num_updates"] = float(updates)
            module_metrics["num_updates_lifetime"] = float(self.num_updates_lifetime)
        return out

    def _one_step(self) -> list[dict[str, dict[str, float]]]:
        config = self.config
        with self.timed("env_runner_sampling_timer"):
            results = self.env_runner_group.sample(
                num_episodes=config.num_envs_per_env_runner * max(1, config.num_env_runners))
            batches = self.batches_from(results)
        with self.timed("replay_add"):
            for mid, batch in batches.items():
                if len(batch[Columns.REWARDS]):
                    self._replay_for(mid).add(episode_rows({k: v for k, v in batch.items() if k not in _DROPPED_COLUMNS}))
        lifetime = self._env_steps_lifetime()
        metrics = []
        if lifetime >= config.num_steps_sampled_before_learning_starts:
            replayed = config.batch_size_B * config.batch_length_T
            self._update_credit += config.training_ratio * sum(r.env_steps for r in results) / replayed
            while self._update_credit >= 1.0:
                self._update_credit -= 1.0
                update = self._update_once()
                if update:
                    metrics.append(update)
        if metrics:  # the runners' weights change only with an update
            with self.timed("synch_weights"):
                self._sync_weights()
        return metrics

    def _update_once(self) -> dict[str, dict[str, float]]:
        config = self.config
        with self.timed("replay_sample"):
            samples = {mid: replay.sample(config.batch_size_B, config.batch_length_T, self._replay_rng)
                       for mid, replay in self.replay.items()
                       if mid in self.learner_group.module_ids_to_train and len(replay) >= config.batch_length_T}
        if not samples:
            return {}
        with self.timed("learner_update_timer"):
            metrics = self.learner_group.update(samples, 1, None)
        self.num_updates_lifetime += 1
        return metrics

    def reset_module(self, module_id: str) -> None:
        """Restart the module, and drop its replay: the old player's episodes are not the new one's."""
        super().reset_module(module_id)
        self.replay.pop(module_id, None)

    # ------------------------------------------------------------------ checkpoints
    def get_extra_state(self) -> dict[str, Any]:
        state = {"replay_rng": self._replay_rng.bit_generator.state, "update_credit": self._update_credit,
                 "num_updates_lifetime": self.num_updates_lifetime}
        if self.config.store_buffer_in_checkpoints:
            state["replay"] = {mid: replay.get_state() for mid, replay in self.replay.items()}
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if "replay_rng" in state:
            self._replay_rng.bit_generator.state = state["replay_rng"]
            self._update_credit = float(state["update_credit"])
            self.num_updates_lifetime = int(state["num_updates_lifetime"])
        for mid, replay_state in state.get("replay", {}).items():
            self._replay_for(mid).set_state(replay_state)
