"""Board planes on disk: runners write them as flat vectors, and a CNN module learns from those files."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from marl_arena.algorithms import BCConfig, PPOConfig
from marl_arena.core.columns import Columns
from marl_arena.core.encoders import CNNEncoder

ENV = {"env": "open_spiel:tic_tac_toe", "env_config": {"opponents": {1: "random"}}}
CNN = {"conv_filters": [[8, 3, 1]], "fcnet_hiddens": [32]}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_recorded_planes_train_a_cnn_with_bc(tmp_path):
    recorder = (PPOConfig().environment(**ENV).rl_module(model_config=CNN)
                .offline_data(output=str(tmp_path)).debugging(seed=0).build_algo())
    recorder.env_runner_group.local_runner.sample(num_episodes=30)
    recorder.stop()
    table = pq.read_table(sorted(tmp_path.glob("*.parquet"))[0])
    obs = np.asarray(table[Columns.OBS].to_pylist(), np.float32)
    assert obs.shape[1] == 27 and set(np.unique(obs)) <= {0.0, 1.0}
    assert np.all(obs.reshape(-1, 9, 3).sum(axis=-1) == 1.0)  # HxWxC: every cell is empty, o or x
    algo = (BCConfig().environment(**ENV).rl_module(model_config=CNN)
            .offline_data(input_=str(tmp_path), dataset_num_iters_per_learner=2)
            .training(train_batch_size_per_learner=32).debugging(seed=0).build_algo())
    try:
        assert isinstance(algo.get_module().encoder, CNNEncoder)
        metrics = algo.train()["learners"]["default_policy"]
        assert metrics["num_module_steps_trained"] > 0 and np.isfinite(metrics["policy_loss"])
    finally:
        algo.stop()
