"""AlgorithmConfig / PPOConfig: builder semantics and validation errors that name field and value."""

from __future__ import annotations

import numpy as np
import pytest

from marl_arena.algorithms.ppo import PPOConfig
from marl_arena.env import MultiAgentCartPole


def config():
    return PPOConfig().environment("CartPole-v1").training(train_batch_size=256, minibatch_size=64)


def multi_agent_config(**multi_agent):
    return (PPOConfig().environment(MultiAgentCartPole, env_config={"num_agents": 2})
            .training(train_batch_size=64, minibatch_size=32)
            .multi_agent(policies={"p0", "p1"}, **multi_agent))


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize("method, field, value, allowed", [
    ("training", "train_batch_size", -1, ">= 1"),
    ("training", "train_batch_size", 0, ">= 1"),
    ("training", "train_batch_size_per_learner", -32, ">= 1"),
    ("training", "lr", 0.0, "> 0"),
    ("training", "lr", -1e-3, "> 0"),
    ("training", "lr", float("nan"), "> 0"),
    ("training", "gamma", 1.5, "<= 1"),
    ("training", "num_epochs", 0, ">= 1"),
    ("training", "lambda_", 1.2, "<= 1"),
    ("training", "clip_param", 0, "> 0"),
    ("env_runners", "num_env_runners", -1, ">= 0"),
    ("env_runners", "num_env_runners", 1.5, "integer"),
    ("env_runners", "num_envs_per_env_runner", 0, ">= 1"),
    ("env_runners", "rollout_fragment_length", 0, "'auto'"),
    ("learners", "num_learners", -1, ">= 0"),
    ("evaluation", "evaluation_duration_unit", "foo", "'episodes' or 'timesteps'"),
    ("evaluation", "evaluation_interval", 0, "or None"),
])
def test_bad_value_names_field_value_and_what_is_allowed(method, field, value, allowed):
    bad = getattr(config(), method)(**{field: value})
    with pytest.raises(ValueError) as error:
        bad.validate()
    message = str(error.value)
    assert f"{field}={value!r}" in message
    assert allowed in message


@pytest.mark.parametrize("sizes, batch", [
    ({"train_batch_size": 100, "minibatch_size": 200}, 100),
    ({"train_batch_size_per_learner": 50, "minibatch_size": 64}, 50),
], ids=["train_batch_size", "train_batch_size_per_learner"])
def test_minibatch_larger_than_the_batch_is_rejected(sizes, batch):
    with pytest.raises(ValueError) as error:
        config().training(**sizes).validate()
    assert f"minibatch_size={sizes['minibatch_size']}" in str(error.value)
    assert f"({batch} env steps)" in str(error.value)


def test_a_valid_config_validates():
    config().validate()
    multi_agent_config(policies_to_train=["p0"]).validate()


@pytest.mark.parametrize("method, kwargs", [
    ("training", {"train_batch_size": np.int64(256)}),
    ("training", {"lr": np.float32(1e-3)}),
    ("env_runners", {"num_envs_per_env_runner": np.int64(2)}),
], ids=["np.int64-batch", "np.float32-lr", "np.int64-envs"])
def test_numpy_scalars_are_valid_numbers(method, kwargs):
    """Sweeps (numpy grids, Ray Tune) hand out numpy scalars; np.int64(256) is an integer >= 1."""
    getattr(config(), method)(**kwargs).validate()


def test_missing_env_is_reported():
    with pytest.raises(ValueError, match="No env set"):
        PPOConfig().validate()


def test_policies_to_train_naming_unknown_ids():
    with pytest.raises(ValueError) as error:
        multi_agent_config(policies_to_train=["p0", "p9"]).validate()
    assert "policies_to_train" in str(error.value) and "'p9'" in str(error.value)
    assert "['p0', 'p1']" in str(error.value)


def test_policy_mapping_to_unknown_module_fails_the_build():
    bad = multi_agent_config(policy_mapping_fn=lambda agent, episode: "p2")
    with pytest.raises(ValueError) as error:
        bad.build_algo()
    message = str(error.value)
    assert "'p2'" in message and "['p0', 'p1']" in message


def test_unknown_model_config_key_is_named():
    with pytest.raises(ValueError) as error:
        config().rl_module(model_config={"fcnet_hidden": [8]}).validate()
    message = str(error.value)
    assert "model_config" in message and "'fcnet_hidden'" in message and "'fcnet_hiddens'" in message


@pytest.mark.parametrize("policies", ["p0", {"p0": "not a spec"}, {1: None}], ids=["string", "bad-spec", "int-id"])
def test_bad_policies_are_rejected_by_the_builder(policies):
    with pytest.raises(ValueError, match=r"multi_agent\(policies=...\)"):
        PPOConfig().multi_agent(policies=policies)


# ---------------------------------------------------------------------------- builder methods
@pytest.mark.parametrize("method, kwargs", [
    ("environment", {"env": "Pendulum-v1"}),
    ("environment", {"env_config": {"num_agents": 3}}),
    ("env_runners", {"num_envs_per_env_runner": 4}),
    ("env_runners", {"explore": False}),
    ("learners", {"num_learners": 2}),
    ("training", {"lr": 1e-3}),
    ("training", {"lambda_": 0.5, "gamma": 0.5}),
    ("training", {"minibatch_size": None}),
    ("rl_module", {"model_config": {"fcnet_hiddens": [8]}}),
    ("evaluation", {"evaluation_interval": 3}),
    ("fault_tolerance", {"restart_failed_sub_environments": True}),
    ("debugging", {"seed": 7}),
    ("reporting", {"min_time_s_per_iteration": 1.5}),
])
def test_builder_returns_the_config_and_sets_only_what_is_passed(method, kwargs):
    cfg = config()
    before = cfg.to_dict()
    assert getattr(cfg, method)(**kwargs) is cfg
    after = cfg.to_dict()
    changed = {name for name in after if after[name] != before[name]}
    assert changed == set(kwargs)
    assert all(getattr(cfg, name) == value for name, value in kwargs.items())


def test_multi_agent_normalises_a_set_of_policies_to_a_dict():
    cfg = PPOConfig()
    assert cfg.multi_agent(policies={"a", "b"}) is cfg
    assert cfg.policies == {"a": None, "b": None}


# ---------------------------------------------------------------------------- evaluation config
@pytest.mark.parametrize("evaluation_config, explore", [
    (None, False),
    ({"lr": 0.5}, False),
    ({"explore": True}, True),
], ids=["none", "other-field", "explicit-explore"])
def test_evaluation_config_is_greedy_unless_told_otherwise(evaluation_config, explore):
    cfg = config().evaluation(evaluation_config=evaluation_config)
    evaluation = cfg.get_evaluation_config_object()
    assert evaluation.explore is explore
    assert cfg.explore is True  # the training config keeps exploring
    for name, value in (evaluation_config or {}).items():
        assert getattr(evaluation, name) == value


def test_default_evaluation_config_is_greedy():
    assert config().get_evaluation_config_object().explore is False


def test_evaluation_config_with_unknown_field_is_named():
    with pytest.raises(ValueError, match="'no_such_field'"):
        config().evaluation(evaluation_config={"no_such_field": 1}).get_evaluation_config_object()
