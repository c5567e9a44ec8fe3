"""BC and MARWIL: they learn CartPole from recorded episodes, validate their configs, checkpoint,
train several modules and Box actions, and a BC checkpoint starts PPO."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms import BCConfig, MARWILConfig, PPOConfig, registry
from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.core import RLModuleSpec
from marl_arena.core.scripted import RandomModule, ScriptedModule
from marl_arena_envs.games import OptimalTaker, TakeAway

RANDOM_CARTPOLE_RETURN = 25  # a uniform random policy averages about 22


class CartPoleExpert(ScriptedModule):
    """Pushes towards where the pole falls: greedy return 500 on CartPole-v1."""

    def scripted_logits(self, obs: torch.Tensor) -> torch.Tensor:
        right = (obs[:, 2] + 0.5 * obs[:, 3] > 0).float()
        return torch.stack([1.0 - right, right], dim=-1) * 1e6


def _record(directory, module_class, num_episodes: int, seed: int) -> None:
    """Episodes of a scripted CartPole player, written by a runner with offline_data(output=)."""
    config = (PPOConfig().environment("CartPole-v1")
              .multi_agent(policies={"default_policy": RLModuleSpec(module_class=module_class)}, policies_to_train=[])
              .offline_data(output=str(directory)).debugging(seed=seed))
    algo = config.build_algo()
    algo.env_runner_group.local_runner.sample(num_episodes=num_episodes)
    algo.stop()


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("expert")
    _record(directory, CartPoleExpert, num_episodes=8, seed=0)  # 4000 rows
    return directory


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, expert_dir):
    """The expert's 4000 rows and about as many of a random player's."""
    directory = tmp_path_factory.mktemp("mixed")
    _record(directory, RandomModule, num_episodes=180, seed=1)
    for path in expert_dir.glob("*.parquet"):
        (directory / path.name).write_bytes(path.read_bytes())
    return directory


def _offline(config_class, data, seed=0, **training):
    return (config_class().environment("CartPole-v1")
            .offline_data(input_=str(data), dataset_num_iters_per_learner=20)
            .training(**{"lr": 3e-3, "train_batch_size_per_learner": 500, **training})
            .rl_module(model_config={"fcnet_hiddens": [64, 64]})
            .evaluation(evaluation_duration=5)
            .debugging(seed=seed))


def _best_score(algo: Algorithm, iterations: int, target: float) -> float:
    """The best greedy evaluation over at most ``iterations`` iterations, stopping at ``target``."""
    best = -math.inf
    for _ in range(iterations):
        for metrics in algo.train()["learners"].values():
            assert all(math.isfinite(v) for v in metrics.values())
        best = max(best, algo.evaluate()["env_runners"]["episode_return_mean"])
        if best >= target:
            break
    return best


def test_bc_learns_cartpole_from_expert_episodes(expert_dir):
    algo = _offline(BCConfig, expert_dir).build_algo()
    score = _best_score(algo, iterations=8, target=150)
    algo.stop()
    assert score >= 150 > RANDOM_CARTPOLE_RETURN


def test_marwil_learns_from_mixed_expert_and_random_data(mixed_dir):
    algo = _offline(MARWILConfig, mixed_dir, beta=1.0).build_algo()
    score = _best_score(algo, iterations=8, target=150)
    metrics = algo.train()["learners"]["default_policy"]
    algo.stop()
    assert {"policy_loss", "vf_loss", "vf_explained_var", "moving_avg_sqd_adv_norm"} <= set(metrics)
    assert score >= 150 > RANDOM_CARTPOLE_RETURN


def test_configs_are_validated_with_the_field_named(tmp_path):
    with pytest.raises(ValueError, match="input_=None"):
        BCConfig().environment("CartPole-v1").build_algo()
    with pytest.raises(ValueError, match="beta=0.5 is not allowed for BC"):
        _offline(BCConfig, tmp_path).training(beta=0.5).build_algo()
    with pytest.raises(ValueError, match="beta=-1"):
        _offline(MARWILConfig, tmp_path, beta=-1).build_algo()
    with pytest.raises(ValueError, match="moving_average_sqd_adv_norm_start=0"):
        _offline(MARWILConfig, tmp_path, moving_average_sqd_adv_norm_start=0).build_algo()
    with pytest.raises(ValueError, match="dataset_num_iters_per_learner=0"):
        _offline(BCConfig, tmp_path).offline_data(dataset_num_iters_per_learner=0).build_algo()
    with pytest.raises(ValueError, match=r"iter_batches_kwargs=.*\['batch_size'\]"):
        _offline(BCConfig, tmp_path).offline_data(iter_batches_kwargs={"batch_size": 3}).build_algo()
    with pytest.raises(ValueError, match="is not allowed for PPOConfig"):
        tiny_ppo().offline_data(input_=str(tmp_path)).build_algo()
    with pytest.raises(ValueError, match=f"{tmp_path}: matches no Parquet files"):
        _offline(BCConfig, tmp_path).build_algo()
    assert isinstance(registry.config_for("BC"), BCConfig) and isinstance(registry.config_for("marwil"), MARWILConfig)


def test_checkpoint_restores_and_a_bc_checkpoint_starts_ppo(expert_dir, tmp_path):
    bc = _offline(BCConfig, expert_dir).build_algo()
    bc.train()
    path = bc.save_to_path(str(tmp_path / "bc"))
    bc_state = bc.get_module().state_dict()
    bc.stop()

    restored = Algorithm.from_checkpoint(path)
    assert type(restored).__name__ == "BC" and restored.iteration == 1
    assert all(torch.equal(bc_state[k], v) for k, v in restored.get_module().state_dict().items())
    restored.train()
    restored.stop()

    ppo = tiny_ppo().rl_module(model_config={"fcnet_hiddens": [64, 64]}, initial_weights_from=path).build_algo()
    ppo_state = ppo.get_module().state_dict()
    assert all(torch.equal(bc_state[k], ppo_state[k]) for k in bc_state)
    runner_state = ppo.env_runner_group.local_runner.module["default_policy"].state_dict()
    assert all(torch.equal(bc_state[k], runner_state[k]) for k in runner_state)  # the runners act with it
    ppo.train()
    ppo.stop()
    with pytest.raises(ValueError, match="do not fit"):
        tiny_ppo().rl_module(initial_weights_from=path).build_algo()  # 32-unit layers, not 64


def test_marwil_trains_each_module_of_multi_agent_masked_data(tmp_path):
    """Take-away records both players' moves with masks; MARWIL learns a module per player."""
    players = {"p0": None, "p1": RLModuleSpec(module_class=OptimalTaker)}
    mapping = lambda aid, *a, **k: "p0" if aid == "player_0" else "p1"  # noqa: E731
    recorder = (tiny_ppo(TakeAway).environment(env_config={"pile": 9})
                .multi_agent(policies=players, policy_mapping_fn=mapping, policies_to_train=["p0"])
                .offline_data(output=str(tmp_path)).build_algo())
    recorder.env_runner_group.local_runner.sample(num_episodes=40)
    recorder.stop()
    algo = (MARWILConfig().environment(TakeAway, env_config={"pile": 9})
            .multi_agent(policies=["p0", "p1"], policy_mapping_fn=mapping)
            .offline_data(input_=str(tmp_path)).training(train_batch_size_per_learner=64)
            .debugging(seed=0).build_algo())
    result = algo.train()
    evaluation = algo.evaluate()
    algo.stop()
    assert set(result["learners"]) == {"p0", "p1"}
    assert evaluation["env_runners"]["num_episodes"] == 10


def test_marwil_on_box_actions(tmp_path):
    recorder = tiny_ppo("Pendulum-v1").offline_data(output=str(tmp_path)).build_algo()
    recorder.env_runner_group.local_runner.sample(num_episodes=2)
    recorder.stop()
    algo = (MARWILConfig().environment("Pendulum-v1").offline_data(input_=str(tmp_path))
            .training(train_batch_size_per_learner=100).debugging(seed=0).build_algo())
    metrics = algo.train()["learners"]["default_policy"]
    algo.stop()
    assert metrics["num_module_steps_trained"] == 400
    assert all(math.isfinite(v) for v in metrics.values())
