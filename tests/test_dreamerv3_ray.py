"""DreamerV3 with its env runner on Ray: recurrent acting in the actor, whole episodes back, updates here."""

from __future__ import annotations

import pytest

from marl_arena.algorithms.dreamerv3 import DreamerV3Config

pytestmark = pytest.mark.ray


def test_dreamerv3_trains_with_a_ray_env_runner(ray_session):
    config = (
        DreamerV3Config()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=1)
        .training(model_size="nano", batch_size_B=4, batch_length_T=8, training_ratio=32,
                  num_steps_sampled_before_learning_starts=32)
        .reporting(min_sample_timesteps_per_iteration=100)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        first = algo.train()
        second = algo.train()
        assert second["env_runners"]["num_episodes"] >= 1
        assert second["num_env_steps_sampled_lifetime"] > first["num_env_steps_sampled_lifetime"] >= 100
        metrics = second["learners"]["default_policy"]
        assert metrics["num_updates_lifetime"] >= 1 and metrics["replay_buffer_size"] > 100
        assert metrics["world_model_loss"] > 0
        # The remote runner acts with the trained weights: the versions it reports move on.
        assert max(r.weights_version for r in algo._iteration_sampled) > 1
    finally:
        algo.stop()
