"""Env ids to MultiAgentEnvs (register_env / make_env) and MultiAgentCartPole."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from marl_arena.env import (
    ALL_AGENTS,
    DEFAULT_AGENT_ID,
    EnvContext,
    MultiAgentCartPole,
    SingleAgentEnvAdapter,
    make_env,
    register_env,
)
from marl_arena.env import registry


@pytest.fixture(autouse=True)
def private_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# ---------------------------------------------------------------------------- make_env
def test_gymnasium_id_becomes_one_default_agent():
    env = make_env("CartPole-v1")
    assert isinstance(env, SingleAgentEnvAdapter)
    assert env.possible_agents == [DEFAULT_AGENT_ID]
    obs, _ = env.reset(seed=0)
    assert list(obs) == [DEFAULT_AGENT_ID]
    assert env.get_action_space(DEFAULT_AGENT_ID) == gym.spaces.Discrete(2)
    _, rewards, terminateds, truncateds, _ = env.step({DEFAULT_AGENT_ID: 0})
    assert rewards == {DEFAULT_AGENT_ID: 1.0}
    assert ALL_AGENTS in terminateds and ALL_AGENTS in truncateds


def test_gymnasium_env_config_reaches_gym_make():
    env = make_env("CartPole-v1", {"max_episode_steps": 2})
    env.reset(seed=0)
    env.step({DEFAULT_AGENT_ID: 0})
    *_, truncateds, _ = env.step({DEFAULT_AGENT_ID: 1})
    assert truncateds == {DEFAULT_AGENT_ID: True, ALL_AGENTS: True}


def test_registered_creator_gets_the_env_config_as_env_context():
    seen = []

    def creator(config):
        seen.append(config)
        return MultiAgentCartPole(config)

    register_env("my-cartpoles", creator)
    env = make_env("my-cartpoles", {"num_agents": 3})
    assert env.possible_agents == [0, 1, 2]
    assert isinstance(seen[0], EnvContext) and seen[0] == {"num_agents": 3}


def test_registered_gymnasium_creator_is_wrapped():
    register_env("wrapped-pendulum", lambda config: gym.make("Pendulum-v1"))
    env = make_env("wrapped-pendulum")
    assert isinstance(env, SingleAgentEnvAdapter)
    assert isinstance(env.get_action_space(DEFAULT_AGENT_ID), gym.spaces.Box)


def test_class_is_constructed_with_the_env_config():
    env = make_env(MultiAgentCartPole, {"num_agents": 4})
    assert isinstance(env, MultiAgentCartPole) and env.possible_agents == [0, 1, 2, 3]


def test_plugin_scheme_resolves_through_entry_points(monkeypatch):
    class EntryPoint:
        name = "toy"

        @staticmethod
        def load():
            return lambda game, config: MultiAgentCartPole({"num_agents": int(game)})

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint] if group == registry.ENTRY_POINT_GROUP else [])
    assert make_env("toy:3").possible_agents == [0, 1, 2]


@pytest.mark.parametrize("typo, suggestion", [("CartPol-v1", "CartPole-v1"), ("my-cartpole", "my-cartpoles")])
def test_unknown_id_names_it_and_suggests_close_matches(typo, suggestion):
    register_env("my-cartpoles", MultiAgentCartPole)
    with pytest.raises(ValueError) as error:
        make_env(typo)
    assert repr(typo) in str(error.value)
    assert f"Did you mean {suggestion!r}" in str(error.value)


@pytest.fixture
def retired_gym_id(monkeypatch):
    """A gymnasium env registered only as v2, so that 'MarlArenaRetired-v1' names a replaced version."""
    spec = gym.envs.registration.EnvSpec("MarlArenaRetired-v2", entry_point="gymnasium.envs.classic_control:CartPoleEnv")
    monkeypatch.setitem(gym.registry, spec.id, spec)
    return "MarlArenaRetired-v1"


def test_replaced_gymnasium_version_resolves_to_its_successor_with_a_warning(retired_gym_id, caplog):
    env = make_env(retired_gym_id)
    assert isinstance(env, SingleAgentEnvAdapter)
    assert env.env.spec.id == "MarlArenaRetired-v2"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["gymnasium has replaced 'MarlArenaRetired-v1' by 'MarlArenaRetired-v2'; "
                        "making 'MarlArenaRetired-v2'."]


def test_newer_version_than_gymnasium_has_is_unknown(retired_gym_id):
    with pytest.raises(ValueError, match=r"Unknown env id 'MarlArenaRetired-v3'"):
        make_env("MarlArenaRetired-v3")


def test_taxi_id_of_rllibs_first_page_makes_taxi_whatever_gymnasium_calls_it():
    env = make_env("Taxi-v3")
    assert env.env.spec.name == "Taxi"


@pytest.mark.parametrize("made", [None, 42, object()], ids=["None", "int", "object"])
def test_creator_returning_no_env_is_rejected(made):
    register_env("broken", lambda config: made)
    with pytest.raises(ValueError, match="neither a marl_arena MultiAgentEnv nor a gymnasium.Env"):
        make_env("broken")


@pytest.mark.parametrize("name, creator", [("", MultiAgentCartPole), (None, MultiAgentCartPole), ("x", "not callable")])
def test_register_env_rejects_bad_arguments(name, creator):
    with pytest.raises(ValueError, match="register_env"):
        register_env(name, creator)


def test_non_id_non_callable_env_is_rejected():
    with pytest.raises(ValueError, match="id string, a class or a creator"):
        make_env(3.5)


# ---------------------------------------------------------------------------- MultiAgentCartPole
@pytest.mark.parametrize("num_agents", [0, -2])
def test_cartpole_needs_at_least_one_agent(num_agents):
    with pytest.raises(ValueError, match=f"num_agents >= 1, got {num_agents}"):
        MultiAgentCartPole({"num_agents": num_agents})


def test_cartpole_seeding_is_reproducible_and_distinct_per_agent():
    first, _ = MultiAgentCartPole({"num_agents": 3}).reset(seed=7)
    again, _ = MultiAgentCartPole({"num_agents": 3}).reset(seed=7)
    for agent in range(3):
        np.testing.assert_array_equal(first[agent], again[agent])
    assert not np.array_equal(first[0], first[1])


def test_cartpole_agents_leave_when_done_and_all_when_everyone_is():
    """Agent 0 pushes left and falls early; agent 1 alternates and lasts longer."""
    env = MultiAgentCartPole({"num_agents": 2})
    obs, _ = env.reset(seed=3)
    step, left = 0, None
    while env.agents:
        step += 1
        alive = list(env.agents)
        obs, rewards, terminateds, truncateds, _ = env.step({a: 0 if a == 0 else step % 2 for a in alive})
        assert set(obs) == set(rewards) == set(alive)  # a leaving agent's final obs comes once
        assert terminateds[ALL_AGENTS] == (not env.agents)
        if left is None and env.agents == [1]:
            left = step
            assert terminateds[0] and not terminateds[ALL_AGENTS]
    assert left is not None and left < step
    with pytest.raises(ValueError, match="not alive"):
        env.step({0: 0})
