"""Bad input gets an error that names the problem; failing envs are recreated on request."""

from __future__ import annotations

import gymnasium as gym
import pytest

from conftest import tiny_ppo
from marl_arena.runners import EnvError


class _ExplodingCartPole(gym.Wrapper):
    """CartPole whose every ``explode_every``-th step (counted over all copies) raises."""

    steps = 0

    def __init__(self, config=None):
        super().__init__(gym.make("CartPole-v1"))
        self.explode_every = (config or {}).get("explode_every", 100)

    def step(self, action):
        _ExplodingCartPole.steps += 1
        if _ExplodingCartPole.steps % self.explode_every == 0:
            raise RuntimeError("simulator lost its physics")
        return self.env.step(action)


def test_unknown_env_id_names_it_and_suggests():
    with pytest.raises(ValueError, match=r"Unknown env id 'CartPol-v1'.*Did you mean 'CartPole-v1'"):
        tiny_ppo("CartPol-v1").build_algo()


def test_mapping_to_a_module_that_does_not_exist():
    config = tiny_ppo("ma_cartpole").multi_agent(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"q{aid}")
    with pytest.raises(ValueError, match=r"mapped agent 0 to module 'q0'.*\['p0', 'p1'\]"):
        config.build_algo()


def test_policies_set_but_default_mapping_left():
    config = tiny_ppo("ma_cartpole").multi_agent(policies={"p0", "p1"})
    with pytest.raises(ValueError, match="default_policy"):
        config.build_algo()


@pytest.mark.parametrize(
    "training, message",
    [
        ({"num_epochs": -5}, "num_epochs=-5"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"clip_param": -0.1}, "clip_param=-0.1"),
    ],
)
def test_bad_numbers_name_field_and_value(training, message):
    with pytest.raises(ValueError, match=message):
        tiny_ppo(**training).build_algo()


def test_negative_batch_size():
    with pytest.raises(ValueError, match=r"train_batch_size_per_learner=-5 is not allowed: it must be an integer >= 1"):
        tiny_ppo(batch=-5).build_algo()


def test_env_that_raises_names_env_call_and_fix():
    with pytest.raises(EnvError) as info:
        algo = tiny_ppo(_ExplodingCartPole).build_algo()
        algo.train()
    message = str(info.value)
    assert "simulator lost its physics" in message
    assert "step(actions=" in message
    assert "restart_failed_sub_environments=True" in message


def test_env_that_raises_is_recreated_and_training_goes_on():
    config = tiny_ppo(_ExplodingCartPole).fault_tolerance(restart_failed_sub_environments=True)
    algo = config.build_algo()
    results = [algo.train() for _ in range(3)]
    algo.stop()
    restarts = sum(r["env_runners"]["num_sub_env_restarts"] for r in results)
    assert restarts >= 3  # 768 steps, one failure per 100
    assert results[-1]["num_env_steps_sampled_lifetime"] >= 3 * 256
    assert results[-1]["env_runners"]["episode_return_mean"] > 0


def test_uncopyable_env_config_value_is_named():
    import threading

    config = tiny_ppo().environment("CartPole-v1", env_config={"lock": threading.Lock()})
    with pytest.raises(ValueError, match=r"env_config\['lock'\].*cannot be copied"):
        config.build_algo()
