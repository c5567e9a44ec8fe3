"""CQL: the conservative penalty by hand, what it does to Q on a fixed dataset, config errors,
an offline Pendulum run that beats the random policy, discrete and multi-module data, and
checkpoints."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from marl_arena.algorithms import CQLConfig, PPOConfig, registry
from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.cql.cql_learner import CQLLearner
from marl_arena.algorithms.cql.cql_losses import cql_penalty
from marl_arena.algorithms.sac.sac import SAC
from marl_arena.core import Columns, RLModuleSpec
from marl_arena.core.scripted import RandomModule
from marl_arena.offline.schema import to_table
from marl_arena.runners.module_specs import module_spec_for_config

RANDOM_PENDULUM_RETURN = -1230.0  # uniform random torques: mean of 20 episodes (seeds 0..19)


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# ---------------------------------------------------------------------- data
def swing_up(obs: np.ndarray) -> float:
    """Energy-pumping swing-up, then a PD hold near the top: about -150 per Pendulum-v1 episode."""
    cos, sin, speed = obs
    if cos > 0.85:
        return float(np.clip(-12.0 * math.atan2(sin, cos) - 3.0 * speed, -2.0, 2.0))
    energy = 0.5 * speed ** 2 + 15.0 * cos  # 15 = 3g / 2l: theta'' = 15 sin(theta) + 3 u
    return float(np.clip(0.5 * (15.0 - energy) * speed, -2.0, 2.0)) if abs(speed) > 1e-3 else 2.0


def write_pendulum_episodes(path, episodes: int, seed: int, noise: float | None, module_id: str = "default_policy"):
    """Pendulum-v1 episodes as a Parquet file: the swing-up with Gaussian torque noise, or
    uniform random torques (``noise=None``)."""
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {key: [] for key in (Columns.EPS_ID, Columns.T, Columns.OBS, Columns.ACTIONS,
                                                  Columns.REWARDS, Columns.NEXT_OBS, Columns.TERMINATEDS,
                                                  Columns.TRUNCATEDS)}
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + episode)
        for t in range(200):
            action = rng.uniform(-2.0, 2.0) if noise is None else np.clip(swing_up(obs) + noise * rng.normal(), -2, 2)
            next_obs, reward, terminated, truncated, _ = env.step(np.array([action], np.float32))
            for key, value in ((Columns.EPS_ID, f"{seed}-{episode}"), (Columns.T, t), (Columns.OBS, obs),
                               (Columns.ACTIONS, [action]), (Columns.REWARDS, reward), (Columns.NEXT_OBS, next_obs),
                               (Columns.TERMINATEDS, terminated), (Columns.TRUNCATEDS, truncated)):
                rows[key].append(value)
            obs = next_obs
    columns = {key: np.asarray(rows[key], dtype=np.float32)
               for key in (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS)}
    columns.update({Columns.EPS_ID: np.asarray(rows[Columns.EPS_ID], dtype=object),
                    Columns.MODULE_ID: np.full(len(rows[Columns.T]), module_id, dtype=object),
                    Columns.T: np.asarray(rows[Columns.T], dtype=np.int64),
                    Columns.TERMINATEDS: np.asarray(rows[Columns.TERMINATEDS], dtype=bool),
                    Columns.TRUNCATEDS: np.asarray(rows[Columns.TRUNCATEDS], dtype=bool)})
    pq.write_table(to_table(columns), path)


@pytest.fixture(scope="module")
def pendulum_dir(tmp_path_factory):
    """Mixed quality: 10 noisy swing-up episodes (about -160 each) and 10 random ones (about -1230)."""
    directory = tmp_path_factory.mktemp("pendulum")
    write_pendulum_episodes(directory / "swing_up.parquet", 10, seed=1, noise=1.0)
    write_pendulum_episodes(directory / "random.parquet", 10, seed=2, noise=None)
    return directory


def _cql(data, seed=0, **training) -> CQLConfig:
    return (CQLConfig().environment("Pendulum-v1")
            .offline_data(input_=str(data), dataset_num_iters_per_learner=100, materialize_data=True,
                          iter_batches_kwargs={"local_shuffle_buffer_size": 4000, "local_shuffle_seed": seed})
            .training(**{"train_batch_size_per_learner": 256, "actor_lr": 1e-3, "critic_lr": 3e-3, "alpha_lr": 1e-3,
                         "tau": 0.02, "bc_iters": 100, "num_actions": 4, **training})
            .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
            .evaluation(evaluation_duration=5)
            .debugging(seed=seed))


# ---------------------------------------------------------------------- the penalty by hand
def test_penalty_by_hand_with_proposal_densities_and_temperature():
    q_data = torch.tensor([[1.0, 2.0]])  # one critic, two rows
    q_candidates = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    log_proposal = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]])
    # row 0: log(e^0 + e^1 / 2) - 1; row 1: log(2 e^2 + e^3) - 2
    expected = ((math.log(1 + math.e / 2) - 1) + (math.log(2 * math.e ** 2 + math.e ** 3) - 2)) / 2
    assert cql_penalty(q_data, q_candidates, 1.0, log_proposal).item() == pytest.approx(expected, rel=1e-6)
    # temperature 2: 2 log(e^(0/2) + e^(1/2)) - 1, 2 log(e^1 + e^1.5) - 2, no proposal
    expected_t2 = ((2 * math.log(1 + math.exp(0.5)) - 1) + (2 * math.log(math.e + math.exp(1.5)) - 2)) / 2
    assert cql_penalty(q_data, q_candidates, 2.0).item() == pytest.approx(expected_t2, rel=1e-6)


def test_penalty_skips_illegal_candidates_and_its_gradient_is_softmax_minus_data():
    q_data = torch.tensor([[1.0], [0.0]], requires_grad=True)  # two critics, one row
    q_all = torch.tensor([[[1.0, 3.0, 100.0]], [[0.0, 0.0, 100.0]]], requires_grad=True)
    legal = torch.tensor([[True, True, False]])
    penalty = cql_penalty(q_data, q_all.masked_fill(~legal, float("-inf")), 1.0)
    torch.testing.assert_close(penalty, torch.tensor([math.log(math.e + math.e ** 3) - 1.0, math.log(2.0)]))
    penalty.sum().backward()
    torch.testing.assert_close(q_data.grad, -torch.ones(2, 1))
    softmax = torch.tensor([math.e, math.e ** 3]) / (math.e + math.e ** 3)
    torch.testing.assert_close(q_all.grad[0, 0], torch.tensor([softmax[0], softmax[1], 0.0]))
    torch.testing.assert_close(q_all.grad[1, 0], torch.tensor([0.5, 0.5, 0.0]))


# ---------------------------------------------------------------------- what it does to Q
def _fit_fixed_batch(action_space: gym.Space, actions: np.ndarray, min_q_weight: float, updates: int = 150):
    """A learner trained on 64 one-step transitions: reward 0, episode over, the data's actions fixed."""
    obs_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    config = (CQLConfig().environment(observation_space=obs_space, action_space=action_space)
              .offline_data(input_="unused")
              .training(min_q_weight=min_q_weight, bc_iters=0, critic_lr=3e-3, num_actions=8)
              .rl_module(model_config={"fcnet_hiddens": [32, 32], "fcnet_activation": "relu"})
              .debugging(seed=0))
    config.validate()
    torch.manual_seed(0)
    learner = CQLLearner(config, module_spec_for_config(config, SAC.module_class_for(config)))
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (64, 2)).astype(np.float32)
    batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: actions,
             Columns.REWARDS: np.zeros(64, np.float32),
             Columns.TERMINATEDS: np.ones(64, bool), Columns.TRUNCATEDS: np.zeros(64, bool)}
    for _ in range(updates):
        learner.update({"default_policy": batch})
    return learner.module["default_policy"], torch.as_tensor(obs)


def test_penalty_pushes_q_of_unseen_box_actions_below_the_data_actions():
    space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    data = np.full((64, 1), 0.5, np.float32)
    gaps = {}
    for weight in (0.0, 5.0):
        module, obs = _fit_fixed_batch(space, data, weight)
        with torch.no_grad():
            q_data = module.critic(obs, torch.full((64, 1), 0.5)).mean()
            q_unseen = torch.stack([module.critic(obs, torch.full((64, 1), a)).mean() for a in (-1.0, -0.5, 1.0)])
        gaps[weight] = (q_data - q_unseen.max()).item()
    assert gaps[5.0] > 0.5  # conservative: every unseen action below the data's
    assert abs(gaps[0.0]) < 0.1 < gaps[5.0]  # plain SAC targets (all 0) leave them equal


def test_penalty_pushes_q_of_unseen_discrete_actions_below_the_data_actions():
    module, obs = _fit_fixed_batch(gym.spaces.Discrete(3), np.ones(64, np.int64), 5.0)
    with torch.no_grad():
        q = module.critic(obs).mean(dim=(0, 1))
    assert q[1] > q[0] + 0.5 and q[1] > q[2] + 0.5


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("training, message", [
    ({"bc_iters": -1}, "bc_iters=-1"),
    ({"temperature": 0.0}, "temperature=0.0"),
    ({"num_actions": 0}, "num_actions=0"),
    ({"min_q_weight": -1.0}, "min_q_weight=-1.0"),
    ({"lagrangian": "yes"}, "lagrangian='yes'"),
    ({"lagrangian_thresh": float("nan")}, "lagrangian_thresh=nan"),
    ({"deterministic_backup": 1}, "deterministic_backup=1"),
    ({"tau": None}, "tau=None is not allowed for CQLConfig"),
    ({"n_step": 3}, "n_step=3 is not allowed for CQLConfig"),
    ({"actor_lr": 0.0}, "actor_lr=0.0"),
])
def test_config_errors_name_the_field(training, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        _cql(tmp_path, **training).validate()


def test_config_needs_offline_data_and_is_registered_with_rllib_defaults():
    with pytest.raises(ValueError, match="input_=None is not allowed: CQLConfig"):
        CQLConfig().environment("Pendulum-v1").validate()
    with pytest.raises(ValueError, match="materialize_data='yes' is not allowed"):
        CQLConfig().environment("Pendulum-v1").offline_data(input_="data", materialize_data="yes").validate()
    config = registry.config_for("CQL")
    assert isinstance(config, CQLConfig)
    assert (config.bc_iters, config.temperature, config.num_actions, config.min_q_weight, config.lagrangian,
            config.lagrangian_thresh, config.deterministic_backup) == (20_000, 1.0, 10, 5.0, False, 5.0, True)


# ---------------------------------------------------------------------- learning
def test_cql_learns_pendulum_from_mixed_data_better_than_random(pendulum_dir):
    algo = _cql(pendulum_dir).build_algo()
    for _ in range(6):
        metrics = algo.train()["learners"]["default_policy"]
        assert all(math.isfinite(v) for v in metrics.values())
    score = algo.evaluate()["env_runners"]["episode_return_mean"]
    algo.stop()
    print(f"CQL greedy return {score:.0f}")
    assert metrics["bc_phase"] == 0.0 and metrics["num_minibatch_updates"] == 100
    assert score > RANDOM_PENDULUM_RETURN + 400, score


def test_discrete_cql_on_recorded_cartpole_episodes(tmp_path):
    recorder = (PPOConfig().environment("CartPole-v1")
                .multi_agent(policies={"default_policy": RLModuleSpec(module_class=RandomModule)}, policies_to_train=[])
                .offline_data(output=str(tmp_path)).debugging(seed=0).build_algo())
    recorder.env_runner_group.local_runner.sample(num_episodes=10)
    recorder.stop()
    algo = (CQLConfig().environment("CartPole-v1").offline_data(input_=str(tmp_path), dataset_num_iters_per_learner=3)
            .training(train_batch_size_per_learner=32, bc_iters=2)
            .rl_module(model_config={"fcnet_hiddens": [16, 16]}).debugging(seed=0).build_algo())
    metrics = algo.train()["learners"]["default_policy"]
    algo.stop()
    assert metrics["num_minibatch_updates"] == 3 and all(math.isfinite(v) for v in metrics.values())
    assert metrics["cql_penalty"] > 0  # log-sum-exp over both actions is above either Q


# ---------------------------------------------------------------------- modules and checkpoints
def test_each_module_learns_from_its_rows_and_checkpoints_restore(tmp_path):
    """Two modules, each with its own rows; the Lagrangian alpha', update counts and target
    critics come back from a checkpoint, and training goes on from there."""
    data = tmp_path / "data"
    data.mkdir()
    write_pendulum_episodes(data / "a.parquet", 1, seed=3, noise=1.0, module_id="a")
    write_pendulum_episodes(data / "b.parquet", 1, seed=4, noise=None, module_id="b")
    config = (_cql(data, lagrangian=True, bc_iters=3).offline_data(dataset_num_iters_per_learner=4)
              .training(train_batch_size_per_learner=64)
              .multi_agent(policies=["a", "b"], policy_mapping_fn=lambda aid, *args, **kwargs: "a"))
    algo = config.build_algo()
    result = algo.train()
    assert set(result["learners"]) == {"a", "b"}
    assert all("alpha_prime_value" in metrics for metrics in result["learners"].values())
    learner = algo.learner_group.local_learner
    path = algo.save_to_path(str(tmp_path / "checkpoint"))
    weights = {mid: {k: v.clone() for k, v in learner.module[mid].state_dict().items()} for mid in ("a", "b")}
    targets = {mid: {k: v.clone() for k, v in learner.target_modules[mid].state_dict().items()} for mid in ("a", "b")}
    alpha_primes = {mid: p.item() for mid, p in learner.log_alpha_primes.items()}
    updates = dict(learner.num_updates)
    algo.stop()

    restored = Algorithm.from_checkpoint(path)
    other = restored.learner_group.local_learner
    assert type(restored).__name__ == "CQL" and restored.iteration == 1
    assert dict(other.num_updates) == updates and all(n > 0 for n in updates.values())
    assert {mid: p.item() for mid, p in other.log_alpha_primes.items()} == alpha_primes
    assert alpha_primes["a"] != 0.0  # it was trained, so the check above means something
    for mid in ("a", "b"):
        assert all(torch.equal(weights[mid][k], v) for k, v in other.module[mid].state_dict().items())
        assert all(torch.equal(targets[mid][k], v) for k, v in other.target_modules[mid].state_dict().items())
    assert restored.evaluate()["env_runners"]["num_episodes"] == 5
    restored.train()
    assert all(other.num_updates[mid] == updates[mid] + 4 for mid in ("a", "b"))
    restored.stop()
