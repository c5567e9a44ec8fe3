"""Centralized critics (MAPPO) and team rewards: critic inputs assembled by the runner (an agent done
before its teammates included), bootstrapping from the next critic input, shared critics,
Ray runners with two learners, and rewards mixed per team."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms import Algorithm, PPOConfig
from marl_arena.core import Columns, MultiRLModuleSpec, RLModuleSpec
from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.centralized_critic import CentralizedCriticConfig, CentralizedCriticModule
from marl_arena.env import MultiAgentEnv, TeamRewards, register_env, team_rewards
from marl_arena.runners.env_runner import EnvRunner
from marl_arena.runners.module_specs import module_spec_from_env

INDEX = {"a": 1.0, "b": 2.0, "c": 3.0}


class TeamGame(MultiAgentEnv):
    """Three simultaneous agents; obs = [agent index, step]; ``b`` terminates at step ``b_done_at``,
    the others are truncated at ``length``. Rewards: each agent its index, every step."""

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.possible_agents = ["a", "b", "c"]
        box = gym.spaces.Box(-100.0, 100.0, (2,), np.float32)
        self.observation_spaces = {agent: box for agent in self.possible_agents}
        self.action_spaces = {agent: gym.spaces.Discrete(2) for agent in self.possible_agents}
        self.state_space = gym.spaces.Box(-100.0, 100.0, (2,), np.float32)
        self.b_done_at = config.get("b_done_at", 2)
        self.length = config.get("length", 4)
        self.agents = []
        self.t = 0

    def _obs(self, agent):
        return np.array([INDEX[agent], self.t], dtype=np.float32)

    def state(self):
        return np.array([self.t, 100.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return {agent: self._obs(agent) for agent in self.agents}, {}

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)
        self.t += 1
        rewards = {agent: INDEX[agent] for agent in self.agents}
        terminateds = {"b": True} if "b" in self.agents and self.t == self.b_done_at else {}
        obs = {agent: self._obs(agent) for agent in self.agents}
        self.agents = [agent for agent in self.agents if agent not in terminateds]
        over = self.t >= self.length
        truncateds = {agent: True for agent in self.agents} if over else {}
        if over:
            self.agents = []
        terminateds["__all__"] = False
        truncateds["__all__"] = over
        return obs, rewards, terminateds, truncateds, {}


register_env("team_game", lambda cfg: TeamGame(cfg))


def _config(model_config: dict, env="team_game", **env_config) -> PPOConfig:
    spec = RLModuleSpec(module_class=CentralizedCriticModule, model_config={"fcnet_hiddens": [16], **model_config})
    return (PPOConfig().environment(env, env_config=env_config)
            .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
            .multi_agent(policies={"team": spec}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "team")
            .debugging(seed=0))


def _runner(config: PPOConfig) -> EnvRunner:
    env = TeamGame(config.env_config)
    return EnvRunner(config, module_spec_from_env(config, env, ActorCriticModule))


def _rows_by_agent(batch: dict) -> dict[str, dict[str, np.ndarray]]:
    """The shared module's batch split by agent (obs[:, 0] is the agent's index)."""
    out = {}
    for agent, index in INDEX.items():
        rows = batch[Columns.OBS][:, 0] == index
        out[agent] = {key: value[rows] for key, value in batch.items()}
    return out


def _team_row(own: str, t: int, present: set[str]) -> list[float]:
    """A "team_obs" critic row as the runner must build it: own obs, then the others in team order, zeros if absent."""
    row = [INDEX[own], t]
    for member in ("a", "b", "c"):
        if member != own:
            row += [INDEX[member], t] if member in present else [0.0, 0.0]
    return row


# ---------------------------------------------------------------------------- critic input assembly
def test_team_obs_rows_put_own_obs_first_and_zero_a_teammate_done_before_the_others():
    runner = _runner(_config({"critic_input": "team_obs"}))
    batch = runner.sample(num_timesteps=4).batches["team"]
    assert batch[Columns.CRITIC_OBS].shape == (4 + 2 + 4, 6)  # b acted twice, a and c four times
    rows = _rows_by_agent(batch)
    # b is observed at steps 0-2 (its final observation at 2), and absent from then on.
    alive_b = lambda t: {"a", "b", "c"} if t <= 2 else {"a", "c"}  # noqa: E731
    for agent in ("a", "c"):
        expected = [_team_row(agent, t, alive_b(t)) for t in range(4)]
        np.testing.assert_array_equal(rows[agent][Columns.CRITIC_OBS], expected)
        # The next critic input: the following row's, then the one at the truncation (step 4).
        expected_next = expected[1:] + [_team_row(agent, 4, {"a", "c"})]
        np.testing.assert_array_equal(rows[agent][Columns.NEXT_CRITIC_OBS], expected_next)
        assert rows[agent][Columns.TRUNCATEDS].tolist() == [False, False, False, True]
    b = rows["b"]
    np.testing.assert_array_equal(b[Columns.CRITIC_OBS], [_team_row("b", t, {"a", "b", "c"}) for t in range(2)])
    np.testing.assert_array_equal(b[Columns.NEXT_CRITIC_OBS][-1], _team_row("b", 2, {"a", "b", "c"}))
    assert b[Columns.TERMINATEDS].tolist() == [False, True]


def test_state_rows_are_the_env_state_at_each_step_and_a_fragment_end_bootstraps_from_the_next():
    runner = _runner(_config({"critic_input": "state"}))
    batch = runner.sample(num_timesteps=2).batches["team"]  # the episode goes on past the fragment
    for agent, rows in _rows_by_agent(batch).items():
        np.testing.assert_array_equal(rows[Columns.CRITIC_OBS], [[0, 100], [1, 100]])
        np.testing.assert_array_equal(rows[Columns.NEXT_CRITIC_OBS], [[1, 100], [2, 100]])
        expected_ends = [False, True] if agent == "b" else [False, False]
        assert rows[Columns.TERMINATEDS].tolist() == expected_ends
    # The next fragment goes on from step 2 with the agents still in the game.
    rest = _rows_by_agent(runner.sample(num_timesteps=2).batches["team"])
    np.testing.assert_array_equal(rest["a"][Columns.CRITIC_OBS], [[2, 100], [3, 100]])
    assert len(rest["b"][Columns.OBS]) == 0


def test_team_of_two_reads_only_its_members_and_a_module_without_critic_gets_no_column():
    config = _config({"critic_input": "team_obs", "team": ["a", "c"]})
    config.multi_agent(policies={"team": config.policies["team"], "solo": None},
                       policy_mapping_fn=lambda agent_id, *args, **kwargs: "solo" if agent_id == "b" else "team")
    batches = _runner(config).sample(num_timesteps=4).batches
    assert Columns.CRITIC_OBS not in batches["solo"]
    rows = _rows_by_agent(batches["team"])
    np.testing.assert_array_equal(rows["c"][Columns.CRITIC_OBS], [[3, t, 1, t] for t in range(4)])


def test_critic_configuration_errors_name_the_field():
    with pytest.raises(ValueError, match="critic_input='global'"):
        CentralizedCriticConfig(critic_input="global")
    with pytest.raises(ValueError, match="vf_share_layers"):
        CentralizedCriticConfig(vf_share_layers=True)
    with pytest.raises(ValueError, match="names an agent twice"):
        CentralizedCriticConfig(team=["a", "a"])
    with pytest.raises(ValueError, match=r"Module 'team'.*agents \['z'\]"):
        _runner(_config({"team": ["a", "z"]}))

    class Stateless(TeamGame):
        def __init__(self, config=None):
            super().__init__(config)
            self.state_space = None

    config = _config({"critic_input": "state"})
    with pytest.raises(ValueError, match="critic_input='state' needs an env with a global state"):
        module_spec_from_env(config, Stateless(), ActorCriticModule)
    with pytest.raises(ValueError, match="critic_obs_dim"):
        CentralizedCriticModule(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2))
    config = _config({"team": ["a", "c"]})
    with pytest.raises(ValueError, match="Agent 'b' plays module 'team'"):
        _runner(config).sample(num_timesteps=1)


# ---------------------------------------------------------------------------- learning side
def test_ppo_bootstraps_a_centralized_critic_from_the_next_critic_input():
    config = _config({"critic_input": "team_obs"}).training(gamma=1.0, lambda_=1.0)
    algo = config.build_algo()
    try:
        learner = algo.learner_group.local_learner
        module = learner.module["team"]
        critic = torch.arange(12, dtype=torch.float32).reshape(2, 6) / 10
        # Row 0's next critic input is row 1's; the last row's is its own (bootstrapped from).
        next_critic = torch.stack([critic[1], critic[1] + 5.0])
        batch = {Columns.OBS: torch.zeros(2, 2), Columns.ACTIONS: torch.zeros(2, dtype=torch.int64),
                 Columns.REWARDS: torch.tensor([0.0, 1.0]), Columns.TERMINATEDS: torch.tensor([False, False]),
                 Columns.TRUNCATEDS: torch.tensor([False, True]), Columns.NEXT_OBS: torch.zeros(2, 2),
                 Columns.CRITIC_OBS: critic, Columns.NEXT_CRITIC_OBS: next_critic,
                 Columns.ACTION_LOGP: torch.zeros(2), Columns.ACTION_DIST_INPUTS: torch.zeros(2, 2)}
        prepared = learner.prepare_batch("team", batch)
        with torch.no_grad():
            bootstrap = module.compute_values(next_critic[1:])
        # gamma = lambda = 1: the last row's target is its reward plus V(next critic input); the
        # first row's goes through the second row's reward.
        expected = torch.stack([1.0 + bootstrap[0], 1.0 + bootstrap[0]])
        torch.testing.assert_close(prepared[Columns.VALUE_TARGETS].float(), expected)
        assert Columns.NEXT_CRITIC_OBS not in prepared and Columns.CRITIC_OBS in prepared
        with pytest.raises(ValueError, match="critic inputs .* of width 6"):
            module.compute_values(torch.zeros(2, 2))  # observations are not critic inputs
    finally:
        algo.stop()


def test_critic_from_shares_one_value_network_between_two_policy_modules():
    box, actions = gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2)
    base = {"fcnet_hiddens": [8], "critic_obs_dim": 6}
    modules = MultiRLModuleSpec({
        "x": RLModuleSpec(CentralizedCriticModule, box, actions, base),
        "y": RLModuleSpec(CentralizedCriticModule, box, actions, {**base, "critic_from": "x"}),
    }).build()
    assert modules["y"].vf is modules["x"].vf and modules["y"].vf_encoder is modules["x"].vf_encoder
    assert modules["y"].pi is not modules["x"].pi
    with pytest.raises(ValueError, match="critic_from='x'.*reads 6 values"):
        MultiRLModuleSpec({
            "x": RLModuleSpec(CentralizedCriticModule, box, actions, base),
            "y": RLModuleSpec(CentralizedCriticModule, box, actions, {**base, "critic_obs_dim": 4,
                                                                         "critic_from": "x"}),
        }).build()


def test_two_modules_with_one_shared_critic_train_and_keep_it_shared():
    spec = lambda extra: RLModuleSpec(module_class=CentralizedCriticModule,  # noqa: E731
                                      model_config={"fcnet_hiddens": [16], **extra})
    config = (_config({}).multi_agent(
        policies={"ac": spec({}), "b": spec({"critic_from": "ac"})},
        policy_mapping_fn=lambda agent_id, *args, **kwargs: "b" if agent_id == "b" else "ac"))
    algo = config.build_algo()
    try:
        before = algo.get_module("ac").vf[-1].weight.detach().clone()
        result = algo.train()
        after_ac, after_b = algo.get_module("ac"), algo.get_module("b")
        assert after_b.vf is after_ac.vf  # still one object after the weights came back
        assert not torch.equal(before, after_ac.vf[-1].weight)
        assert {"ac", "b"} <= set(result["learners"])
    finally:
        algo.stop()


def test_a_checkpoint_restores_the_centralized_critic_and_the_team_reward_env(tmp_path):
    config = _config({"critic_input": "team_obs"}, env=team_rewards("team_game", {"abc": ["a", "b", "c"]}))
    algo = config.build_algo()
    try:
        algo.train()
        algo.save_to_path(str(tmp_path))
        weights = algo.get_module("team").vf[-1].weight.detach().clone()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert torch.equal(restored.get_module("team").vf[-1].weight, weights)
        assert restored.get_module("team").model_config.critic_obs_dim == 6
        assert restored.train()["learners"]["team"]["num_module_steps_trained"] > 0
    finally:
        restored.stop()


@pytest.mark.ray
def test_ray_runners_and_two_learners_train_a_centralized_critic(ray_session):
    from ray import cloudpickle

    config = (_config({"critic_input": "team_obs"}).env_runners(num_env_runners=1).learners(num_learners=2)
              .training(normalize_value_targets=True))
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    try:
        algo = config.build_algo()
        try:
            results = [algo.train() for _ in range(2)]
        finally:
            algo.stop()
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    metrics = results[-1]["learners"]["team"]
    assert metrics["num_module_steps_trained"] > 0 and np.isfinite(metrics["vf_loss"])
    assert results[-1]["num_env_steps_sampled_lifetime"] >= 128
    # The value normaliser saw TeamGame's returns (every reward is 1, 2 or 3, so their mean is positive).
    assert metrics["value_norm_mean"] > 0.5 and metrics["value_norm_std"] > 0.0


# ---------------------------------------------------------------------------- team rewards
def _mixed_returns(teams, individual_weight, aggregate="sum"):
    env = TeamRewards(TeamGame(), teams, individual_weight, aggregate)
    env.reset()
    totals = {agent: 0.0 for agent in env.possible_agents}
    steps = []
    while env.agents:
        _, rewards, *_ = env.step({agent: 0 for agent in env.agents})
        steps.append(rewards)
        for agent, reward in rewards.items():
            totals[agent] += reward
    return steps, totals


def test_team_rewards_shared_individual_and_mixed():
    # b is done after step 2; c belongs to no team and keeps its own reward.
    steps, _ = _mixed_returns({"ab": ["a", "b"]}, individual_weight=0.0)
    assert steps[0] == {"a": 3.0, "b": 3.0, "c": 3.0}
    assert steps[2] == {"a": 1.0, "c": 3.0}  # b has left: the team's reward is a's
    steps, _ = _mixed_returns({"ab": ["a", "b"]}, individual_weight=1.0)
    assert steps[0] == {"a": 1.0, "b": 2.0, "c": 3.0}
    steps, _ = _mixed_returns({"ab": ["a", "b"]}, individual_weight=0.5, aggregate="mean")
    assert steps[0] == pytest.approx({"a": 0.5 * 1 + 0.5 * 1.5, "b": 0.5 * 2 + 0.5 * 1.5, "c": 3.0})
    steps, totals = _mixed_returns({"ab": ["a", "b"], "c": ["c"]}, individual_weight=0.0, aggregate="mean")
    assert totals == {"a": 1.5 + 1.5 + 1.0 + 1.0, "b": 3.0, "c": 12.0}  # the mean over the members still there


def test_team_rewards_reject_bad_teams_and_weights():
    with pytest.raises(ValueError, match="agent 'a' is in both team 'x' and team 'y'"):
        TeamRewards(TeamGame(), {"x": ["a"], "y": ["a", "b"]})
    with pytest.raises(ValueError, match="names agent 'z'"):
        TeamRewards(TeamGame(), {"x": ["z"]})
    with pytest.raises(ValueError, match="individual_weight=1.5"):
        TeamRewards(TeamGame(), {"x": ["a"]}, individual_weight=1.5)
    with pytest.raises(ValueError, match="aggregate='max'"):
        TeamRewards(TeamGame(), {"x": ["a"]}, aggregate="max")


def test_team_rewards_as_the_env_of_a_config_reach_the_learner():
    config = _config({}, env=team_rewards("team_game", {"abc": ["a", "b", "c"]}))
    runner = _runner(config)  # its envs come from config.env: TeamGame inside TeamRewards
    result = runner.sample(num_timesteps=4)
    rows = _rows_by_agent(result.batches["team"])
    assert rows["a"][Columns.REWARDS].tolist() == [6.0, 6.0, 4.0, 4.0]  # a + b + c, then a + c
    assert rows["b"][Columns.REWARDS].tolist() == [6.0, 6.0]
    assert result.episodes[0].agent_returns == {"a": 20.0, "b": 12.0, "c": 20.0}
