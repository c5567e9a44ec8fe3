"""IMPALA and APPO: smoke runs per learning path, learning checks, the circular buffer, the
target network, checkpoints, config validation, a league trainer, and (last, on Ray) two
runners sampling asynchronously through a killed runner and through a stalled env, and the
learner thread updating while the driver samples."""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time

import gymnasium as gym

import numpy as np
import pytest
import torch

from marl_arena.algorithms import APPO, IMPALA, APPOConfig, IMPALAConfig
from marl_arena.algorithms.impala.circular_buffer import CircularBuffer, TrainBatch
from marl_arena.algorithms.impala.impala import ALL_MODULES
from marl_arena.core.scripted import RandomModule
from marl_arena.env import register_env
from marl_arena.league.league_config import LeagueConfig

CONFIGS = {"impala": IMPALAConfig, "appo": APPOConfig}


def tiny(algo: str, env="CartPole-v1", steps: int = 400, **training):
    """Fragments of 4 x 25 env steps, a train batch per fragment, ``steps`` env steps per ``train()``."""
    return (
        CONFIGS[algo]()
        .environment(env)
        .env_runners(num_envs_per_env_runner=4, rollout_fragment_length=25)
        .training(train_batch_size=100, **training)
        .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=steps)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
        .debugging(seed=0)
    )


def _params(algo, module_id="default_policy"):
    return torch.cat([p.detach().flatten() for p in algo.get_module(module_id).parameters()])


SELF_PLAY = {"policies": {"shared"}, "policy_mapping_fn": lambda aid, *a, **k: "shared"}


@pytest.mark.parametrize("algo", sorted(CONFIGS))
@pytest.mark.parametrize("env, multi_agent", [
    ("CartPole-v1", None),  # discrete actions
    ("Pendulum-v1", None),  # continuous actions
    ("games:take_away", SELF_PLAY),  # masked discrete actions, turn-based, both seats one module
    ("ma_cartpole", {"policies": {"p0", "p1"}, "policy_mapping_fn": lambda aid, *a, **k: f"p{aid}"}),
    ("ma_cartpole", SELF_PLAY),
], ids=["discrete", "continuous", "masked", "two-modules", "one-shared-module"])
def test_smoke_each_learning_path(algo, env, multi_agent):
    config = tiny(algo, env)
    if multi_agent:
        config.multi_agent(**multi_agent)
    built = config.build_algo()
    try:
        before = {mid: _params(built, mid).clone() for mid in built.learner_group.module_ids_to_train}
        result = built.train()
        for mid, params in before.items():
            assert not torch.equal(params, _params(built, mid)), f"module {mid} did not change"
            metrics = result["learners"][mid]
            assert all(math.isfinite(metrics[k]) for k in ("policy_loss", "vf_loss", "entropy", "gradients_global_norm"))
        shared = result["learners"][ALL_MODULES]
        assert shared["num_updates"] >= 1 and shared["sample_staleness_mean"] >= 0
        assert result["num_env_steps_sampled_lifetime"] >= 400
        assert "episode_return_mean" in result["env_runners"]
        assert built.evaluate()["env_runners"]["num_episodes"] == 10
    finally:
        built.stop()


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_learns_cartpole(algo):
    """The learning check: greedy return >= 150 within 10 iterations of 5000 env steps, in one process."""
    config = tiny(algo, steps=5000, lr=1e-3, entropy_coeff=0.0).rl_module(model_config={"fcnet_hiddens": [64, 64]})
    if algo == "appo":
        config.training(circular_buffer_num_batches=4, target_network_update_freq=1)
    built = config.build_algo()
    best = 0.0
    try:
        for _ in range(10):
            built.train()
            best = max(best, built.evaluate()["env_runners"]["episode_return_mean"])
            if best >= 150:
                break
    finally:
        built.stop()
    assert best >= 150


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_seeded_runs_are_identical_and_seeds_matter(algo):
    def run(seed):
        built = tiny(algo).debugging(seed=seed).build_algo()
        built.train()
        params = _params(built).clone()
        built.stop()
        return params

    first, again, other = run(3), run(3), run(4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_in_one_process_each_batch_is_learned_from_iterations_per_batch_times():
    built = tiny("appo", steps=1000, circular_buffer_iterations_per_batch=3).build_algo()
    result = built.train()
    built.stop()
    shared = result["learners"][ALL_MODULES]
    assert shared["num_updates"] == 3 * 10  # 1000 env steps = 10 train batches of 100
    assert shared["num_weight_broadcasts_lifetime"] == 30
    assert shared["sample_staleness_max"] == 2  # a batch's third update is two versions after it was drawn


def test_broadcast_interval_spaces_the_weight_versions():
    built = tiny("impala", steps=1000, broadcast_interval=4).build_algo()
    result = built.train()
    runner_version = built.env_runner_group.local_runner._weights_version
    built.stop()
    shared = result["learners"][ALL_MODULES]
    assert shared["num_updates"] == 10 and shared["num_weight_broadcasts_lifetime"] == 2
    assert runner_version == built._weights_version == 3  # the initial sync and two broadcasts


# ---------------------------------------------------------------------------- circular buffer
def _batch(version):
    return TrainBatch({"m": {"rewards": np.zeros(1)}}, float(version), 1)


def test_circular_buffer_draws_each_batch_at_most_k_times_and_evicts_the_oldest():
    buffer = CircularBuffer(num_batches=2, iterations_per_batch=2, seed=0)
    for version in range(3):
        buffer.add(_batch(version))
    assert len(buffer) == 2 and buffer.num_evicted == 1
    drawn = [buffer.sample().weights_version for _ in range(4)]
    assert sorted(drawn) == [1.0, 1.0, 2.0, 2.0]
    assert buffer.sample() is None and len(buffer) == 0


# ---------------------------------------------------------------------------- APPO's target network
def test_appo_target_follows_the_module_every_target_update_interval():
    config = tiny("appo", steps=100, circular_buffer_num_batches=2, circular_buffer_iterations_per_batch=1,
                  target_network_update_freq=2, use_kl_loss=True)
    assert config.target_update_interval == 4
    built = config.build_algo()
    learner = built.learner_group.local_learner
    target = learner.target_modules["default_policy"]
    try:
        flags = []
        for _ in range(4):
            result = built.train()  # 100 env steps: one batch, one update
            flags.append(result["learners"]["default_policy"]["target_updated"])
        module_state, target_state = built.get_module().state_dict(), target.state_dict()
    finally:
        built.stop()
    assert flags == [0.0, 0.0, 0.0, 1.0]
    assert all(torch.equal(module_state[k], target_state[k]) for k in module_state)
    assert result["learners"]["default_policy"]["curr_kl_coeff"] != 1.0  # adapted at the target update


def test_appo_checkpoint_restores_target_network_and_kl_coefficient(tmp_path):
    built = tiny("appo", use_kl_loss=True).build_algo()
    built.train()
    learner = built.learner_group.local_learner
    learner.kl_coeffs["default_policy"] = 0.123
    target = {k: v.clone() for k, v in learner.target_modules["default_policy"].state_dict().items()}
    path = built.save_to_path(str(tmp_path / "ckpt"))
    built.stop()
    restored = APPO.from_checkpoint(path)
    try:
        again = restored.learner_group.local_learner
        assert isinstance(restored, APPO) and again.kl_coeffs["default_policy"] == 0.123
        assert all(torch.equal(v, again.target_modules["default_policy"].state_dict()[k]) for k, v in target.items())
    finally:
        restored.stop()


def test_impala_without_vtrace_still_learns_from_behaviour_log_probs():
    built = tiny("impala", vtrace=False).build_algo()
    try:
        result = built.train()
    finally:
        built.stop()
    assert isinstance(built, IMPALA) and math.isfinite(result["learners"]["default_policy"]["policy_loss"])


def test_reset_module_forgets_what_the_old_player_sampled():
    built = tiny("appo", "ma_cartpole").multi_agent(
        policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}").build_algo()
    try:
        built.train()
        old = built.env_runner_group.local_runner.sample(num_timesteps=100)  # drawn by the old p0
        built.circular_buffer.add(TrainBatch(dict(old.batches), float(old.weights_version), old.env_steps))
        built.reset_module("p0")
        held = built.circular_buffer.sample()
        late = built.env_runner_group.local_runner.sample(num_timesteps=100)
        in_flight = dataclasses.replace(late, batches=dict(late.batches), weights_version=late.weights_version - 1)
        queued = []
        for fragment in (in_flight, late):  # 100 env steps each: one train batch each
            built._add_fragments([fragment])
            queued.append(set(built._learner_queue[-1].batches))
    finally:
        built.stop()
    assert set(held.batches) == {"p1"}
    assert queued == [{"p1"}, {"p0", "p1"}]  # a fragment still in flight at the reset loses p0


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize("algo, field, value, allowed", [
    ("impala", "vtrace_clip_rho_threshold", 0.0, "> 0"),
    ("impala", "vtrace_clip_pg_rho_threshold", -1.0, "> 0"),
    ("impala", "vf_loss_coeff", -0.5, ">= 0"),
    ("impala", "broadcast_interval", 0, ">= 1"),
    ("impala", "circular_buffer_num_batches", 0, ">= 1"),
    ("impala", "circular_buffer_iterations_per_batch", 1.5, "integer"),
    ("impala", "learner_queue_size", 0, ">= 1"),
    ("impala", "vtrace", "yes", "True or False"),
    ("impala", "grad_clip_by", "value", "'global_norm'"),
    ("appo", "clip_param", 0.0, "> 0"),
    ("appo", "kl_target", 0.0, "> 0"),
    ("appo", "target_network_update_freq", 0, ">= 1"),
    ("appo", "tau", 1.5, "<= 1"),
])
def test_bad_value_names_field_value_and_what_is_allowed(algo, field, value, allowed):
    config = CONFIGS[algo]().environment("CartPole-v1").training(**{field: value})
    with pytest.raises(ValueError) as error:
        config.validate()
    assert f"{field}={value!r}" in str(error.value) and allowed in str(error.value)


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_follows_lr_and_entropy_schedules_by_sampled_env_steps(algo):
    # Updates of train batches of 100 env steps, 400 per train(): the clock reads the env steps
    # sampled before each update, so the first iteration's updates lie inside the schedules'
    # slopes and the third's all past their ends (800 env steps).
    config = tiny(algo, lr=[[0, 1e-3], [800, 1e-5]], entropy_coeff=[[0, 0.4], [800, 0.0]])
    config.validate()
    built = config.build()
    try:
        first = built.train()["learners"]["default_policy"]
        built.train()
        third = built.train()["learners"]["default_policy"]
        optimizer = built.learner_group.local_learner.optimizers["default_policy"]["default"]
    finally:
        built.stop()
    assert 1e-5 < first["curr_lr"] < 1e-3 and 0.0 < first["curr_entropy_coeff"] < 0.4
    assert (third["curr_lr"], third["curr_entropy_coeff"]) == pytest.approx((1e-5, 0.0))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_a_schedule_that_does_not_start_at_zero_is_refused_by_name(algo):
    config = CONFIGS[algo]().environment("CartPole-v1").training(entropy_coeff=[[10, 0.01]])
    with pytest.raises(ValueError, match=r"entropy_coeff=\[\[10, 0.01\]\] is not allowed: the first point"):
        config.validate()


def test_min_sample_timesteps_is_validated_and_defaults_follow_rllib():
    with pytest.raises(ValueError, match="min_sample_timesteps_per_iteration=-1"):
        IMPALAConfig().environment("CartPole-v1").reporting(min_sample_timesteps_per_iteration=-1).validate()
    appo = APPOConfig()
    assert (appo.clip_param, appo.use_kl_loss, appo.circular_buffer_num_batches, appo.lr) == (0.4, False, 8, 5e-4)
    assert (appo.vtrace_clip_rho_threshold, appo.grad_clip, appo.min_time_s_per_iteration) == (1.0, 40.0, 10.0)


# ---------------------------------------------------------------------------- league trainer
def test_appo_trains_a_league_player_on_take_away(tmp_path):
    trainer = (APPOConfig()
               .training(train_batch_size=200, gamma=1.0, lr=1e-3, entropy_coeff=0.01)
               .env_runners(num_envs_per_env_runner=8, rollout_fragment_length=25)
               .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=500)
               .rl_module(model_config={"fcnet_hiddens": [32, 32]}))
    league = (LeagueConfig().environment("games:take_away", env_config={"pile": 10}).trainer(trainer)
              .roster(main_agents=1, scripted={"random": RandomModule}).matchmaking("pfsp", weighting="hard")
              .snapshots(win_rate=0.7, min_games=60).store(str(tmp_path)).build())
    try:
        played = []
        league.run(8, lambda lg, summary: played.append(summary["players"]["main_0"]["matches"]))
        board = {row["player"]: row for row in league.leaderboard()}
        assert league.store.count_matches() == sum(played) > 0
        assert board["main_0"]["elo"] > board["random"]["elo"]
        metrics = league.store.metrics("main_0")  # learner metrics recorded every iteration
        assert [iteration for iteration, _ in metrics] == list(range(1, 9))
        # with the async loop's own counters: in one process every batch is learned from, none dropped
        assert metrics[-1][1]["learner/all_modules/num_updates_lifetime"] >= 8
        assert metrics[-1][1]["learner/all_modules/num_batches_dropped_lifetime"] == 0
    finally:
        league.stop()


# ---------------------------------------------------------------------------- Ray (one session, last)
@pytest.mark.ray
def test_two_ray_runners_sample_asynchronously_and_survive_a_killed_runner(ray_session):
    config = tiny("appo", steps=1000).env_runners(num_env_runners=2)
    built = config.build_algo()
    try:
        first = built.train()
        ray_session.kill(built.env_runner_group.remote_runners[0])
        results = [built.train() for _ in range(2)]
        restarts = built.env_runner_group.num_restarts
    finally:
        built.stop()
    assert restarts == 1 and results[-1]["env_runners"]["num_env_runner_restarts"] == 1
    assert results[-1]["learners"][ALL_MODULES]["num_samples_dropped_lifetime"] == 1
    for result in (first, *results):
        assert result["env_runners"]["num_env_steps_sampled"] >= 1000
        assert result["learners"][ALL_MODULES]["num_updates"] >= 1
        assert "default_policy" in result["learners"]
    staleness = [r["learners"][ALL_MODULES]["sample_staleness_mean"] for r in (first, *results)]
    assert all(s >= 0 for s in staleness)
    assert results[-1]["training_iteration"] == 3


@pytest.mark.ray
def test_two_data_parallel_appo_learners_stay_in_sync(ray_session):
    config = tiny("appo", steps=400, use_kl_loss=True, circular_buffer_num_batches=1, target_network_update_freq=1)
    built = config.learners(num_learners=2).build_algo()
    try:
        before = built.learner_group.get_weights()["default_policy"]
        result = built.train()
        states = built.learner_group.foreach_learner("get_state")
    finally:
        built.stop()
    weights = [s["modules"]["default_policy"] for s in states]
    targets = [s["extra"]["target_modules"]["default_policy"] for s in states]
    assert result["learners"]["default_policy"]["target_updated"] > 0
    assert any(not torch.equal(before[k], weights[0][k]) for k in before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert all(torch.equal(targets[0][k], targets[1][k]) for k in targets[0])
    assert states[0]["extra"]["kl_coeffs"] == states[1]["extra"]["kl_coeffs"] != {"default_policy": 1.0}


@pytest.mark.ray
def test_a_stalled_env_is_reported_and_its_runner_replaced_while_training_goes_on(ray_session, tmp_path, caplog):
    def stall_once_cartpole(env_config):
        """CartPole that, in env runner 1 only, hangs for a minute after ``stall_after`` steps, once per
        test (a marker file tells the replacement runner that the stall already happened). Made inside
        the test so that Ray's actors get it by value: they cannot import this module."""

        class StallOnce(gym.Wrapper):
            def __init__(self):
                super().__init__(gym.make("CartPole-v1"))
                self.stalls = env_config.worker_index == 1 and env_config.vector_index == 0
                self.steps = 0

            def step(self, action):
                self.steps += 1
                if self.stalls and self.steps == env_config["stall_after"] and not os.path.exists(env_config["marker"]):
                    open(env_config["marker"], "w").close()
                    time.sleep(60)
                return self.env.step(action)

        return StallOnce()

    register_env("stall_once_cartpole", stall_once_cartpole)
    config = (tiny("appo", env="stall_once_cartpole", steps=1000)
              .environment("stall_once_cartpole", env_config={"marker": str(tmp_path / "stalled"), "stall_after": 150})
              .env_runners(num_env_runners=2, sample_timeout_s=2.0))
    built = config.build_algo()
    try:
        started = time.perf_counter()
        results = []
        while built.env_runner_group.num_stalled_restarts == 0 and time.perf_counter() - started < 30:
            results.append(built.train())
        results.append(built.train())  # with the new runner 1
        elapsed = time.perf_counter() - started
    finally:
        built.stop()
    assert os.path.exists(tmp_path / "stalled")
    last = results[-1]
    assert last["env_runners"]["num_env_runner_stall_restarts"] == 1
    assert last["env_runners"]["num_env_runner_restarts"] == 1
    assert last["learners"][ALL_MODULES]["num_samples_dropped_lifetime"] == 1
    assert any("env runner 1 has not returned" in r.getMessage() for r in caplog.records)
    # The learner never waited out the stall: runner 2 kept it busy, every iteration updated.
    assert all(r["learners"][ALL_MODULES]["num_updates"] >= 1 for r in results)
    assert elapsed < 25


@pytest.mark.ray
def test_the_learner_thread_updates_while_the_driver_samples_without_racing(ray_session):
    built = tiny("appo", steps=1000).env_runners(num_env_runners=2).build_algo()
    group = built.env_runner_group
    sampling = threading.Event()
    update_threads, overlapping, synced = set(), [], []
    update_once, sample_async, sync_weights = built._update_once, group.sample_async, group.sync_weights

    def spy_update(staleness):
        metrics = update_once(staleness)
        if metrics is not None:
            update_threads.add(threading.get_ident())
            overlapping.append(sampling.is_set())
        return metrics

    def spy_sample(*args, **kwargs):
        sampling.set()
        try:
            return sample_async(*args, **kwargs)
        finally:
            sampling.clear()

    def spy_sync(weights, version, blocking=True):
        synced.append(version)
        sync_weights(weights, version, blocking)

    built._update_once, group.sample_async, group.sync_weights = spy_update, spy_sample, spy_sync
    try:
        results = [built.train() for _ in range(3)]
        sent = ray_session.get(group._weights)
        learner = built.learner_group.get_weights()
        version = built._weights_version
    finally:
        built.stop()
    assert update_threads and threading.get_ident() not in update_threads  # updates ran on the learner thread
    assert any(overlapping)  # ... while the driver was collecting fragments
    # Every broadcast is the next version, and the version the runners are sent is the learner's weights.
    assert synced == list(range(2, version + 1)) and group._version == version
    # (The object store holds them as NumPy arrays: see weights_as_arrays.)
    assert all(np.array_equal(sent["default_policy"][k], v.numpy()) for k, v in learner["default_policy"].items())
    shared = [r["learners"][ALL_MODULES] for r in results]
    assert sum(s["num_updates"] for s in shared) == shared[-1]["num_updates_lifetime"] == len(overlapping)
    assert shared[-1]["num_weight_broadcasts_lifetime"] == len(synced)  # broadcast_interval=1
    for s in shared:
        assert s["num_updates"] >= 1 and 0 <= s["sample_staleness_mean"] <= s["sample_staleness_max"]
