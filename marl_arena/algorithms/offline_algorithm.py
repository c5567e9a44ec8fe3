"""OfflineAlgorithm: the training step that every offline algorithm shares (BC, MARWIL, CQL).

Each training step draws batches from the offline reader, not the runners, which exist only
for ``evaluate()``. One iteration runs ``dataset_num_iters_per_learner`` updates, one per
batch of ``train_batch_size_per_learner`` rows per learner (None: one pass over the data),
and reports each module's metrics: counts summed over the updates, the rest averaged.
A subclass names its config, learner and module classes, as any Algorithm does.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.algorithm_config import AlgorithmConfig
from marl_arena.offline import ModuleLayout, OfflineReader
from marl_arena.offline.streaming_ray import start_streaming_ray

# Learner metrics that add up over an iteration's updates; the rest are averaged.
_SUMMED = ("num_module_steps_trained", "num_minibatch_updates")


class OfflineAlgorithm(Algorithm):
    """Learns from ``offline_data(input_=...)`` through an ``OfflineReader``."""

    def __init__(self, config: AlgorithmConfig):
        super().__init__(config)
        layouts = {mid: ModuleLayout.from_spaces(spec.observation_space, spec.action_space)
                   for mid, spec in self.module_spec.rl_module_specs.items()}
        self.reader = OfflineReader(self.config.input_, layouts, self.config.total_train_batch_size,
                                    self.config.map_batches_kwargs, self.config.iter_batches_kwargs,
                                    self.config.materialize_data)

    def _plan_resources(self) -> dict[str, float]:
        if not self.config.materialize_data:
            start_streaming_ray()  # the stream's Ray, before Algorithm would start a plain one for its actors
        return super()._plan_resources()

    def training_step(self) -> dict[str, Any]:
        updates = []
        batches_iter = self.reader.iterate(self.config.dataset_num_iters_per_learner)
        while True:
            with self.timed("offline_sampling_timer"):
                batches = next(batches_iter, None)
            if batches is None:
                break
            with self.timed("learner_update_timer"):
                updates.append(self.learner_group.update(batches, self.config.num_epochs, self.config.minibatch_size))
        self._weights_version += 1  # evaluate() sends the learners' weights with this version
        return combine_updates(updates)

    def stop(self) -> None:
        self.reader.close()
        super().stop()


def combine_updates(updates: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per module: counts summed over the updates, everything else averaged."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for update in updates:
        for module_id, metrics in update.items():
            for key, value in metrics.items():
                values[module_id][key].append(value)
    return {mid: {key: sum(v) if key in _SUMMED else sum(v) / len(v) for key, v in metrics.items()}
            for mid, metrics in values.items()}
