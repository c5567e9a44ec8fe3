"""start_streaming_ray: Ray's own workers carry the read workers' allocator settings, so a stream
runs in them (no per-task environment, no second set of workers), and the driver keeps its own
environment."""

from __future__ import annotations

import os

import numpy as np
import pytest

from marl_arena.core.columns import Columns
from marl_arena.offline import EpisodeWriter, ModuleLayout, OfflineReader, start_streaming_ray
from marl_arena.offline.block_cast import WORKER_ENV
from marl_arena.offline.streaming_ray import workers_have_stream_env

LAYOUT = {"default_policy": ModuleLayout(obs_dim=3, num_actions=2, action_dim=None)}


@pytest.fixture(scope="module")
def driver_env():
    """This process's values of WORKER_ENV's variables before Ray starts (None: unset)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()  # a Ray another module left running would be reused, not started here
    before = {name: os.environ.get(name) for name in WORKER_ENV}
    assert start_streaming_ray(num_cpus=1)
    yield before
    ray.shutdown()


def test_workers_get_the_allocator_env_and_the_driver_keeps_its_own(driver_env):
    import ray

    @ray.remote
    def worker_env():
        return {name: os.environ.get(name) for name in WORKER_ENV}

    assert ray.get(worker_env.remote()) == WORKER_ENV
    assert {name: os.environ.get(name) for name in WORKER_ENV} == driver_env
    assert ray.cluster_resources()["CPU"] == 1
    assert workers_have_stream_env()
    assert not start_streaming_ray()  # Ray runs: left as it is


def test_a_stream_passes_no_task_environment_and_reads_every_row(driver_env, tmp_path, monkeypatch):
    import ray.data

    writer = EpisodeWriter(tmp_path)
    for k, n in enumerate([7, 12]):
        obs = np.arange(n * 3, dtype=np.float32).reshape(n, 3) + 100 * k
        writer.add_segment(k, 0, "default_policy", {
            Columns.OBS: obs, Columns.NEXT_OBS: obs + 1, Columns.ACTIONS: np.arange(n) % 2,
            Columns.REWARDS: np.ones(n, np.float32), Columns.TERMINATEDS: np.arange(n) == n - 1,
            Columns.TRUNCATEDS: np.zeros(n, bool)})
        writer.finish_episode(k)
        writer.flush()
    calls = []
    read_parquet = ray.data.read_parquet
    monkeypatch.setattr(ray.data, "read_parquet", lambda *a, **k: calls.append(k) or read_parquet(*a, **k))
    reader = OfflineReader(str(tmp_path), LAYOUT, batch_size=8)
    rows = np.concatenate([b["default_policy"][Columns.OBS][:, 0] for b in reader.iterate(None)])
    reader.close()
    assert len(calls) == 1 and "runtime_env" not in calls[0]
    assert sorted(rows) == sorted([*range(0, 21, 3), *range(100, 136, 3)])
