"""The mpe2 plugin: ``"mpe2:<game>"`` ids through the PettingZoo Parallel adapter, their global
state, argument and action checks, and a short MAPPO learning check on simple_spread."""

from __future__ import annotations

import numpy as np
import pytest

from marl_arena.algorithms import PPOConfig
from marl_arena.core import RLModuleSpec
from marl_arena.core.centralized_critic import CentralizedCriticModule
from marl_arena.env import make_env, team_rewards
from marl_arena_envs.mpe2 import available_games
from marl_arena_envs.pettingzoo import IllegalActionError, ParallelPettingZooEnv, PettingZooEnv

GAMES = {
    "simple_spread_v3": ["agent_0", "agent_1", "agent_2"],
    "simple_tag_v3": ["adversary_0", "adversary_1", "adversary_2", "agent_0"],
    "simple_adversary_v3": ["adversary_0", "agent_0", "agent_1"],
    "simple_world_comm_v3": ["leadadversary_0", "adversary_0", "adversary_1", "adversary_2", "agent_0", "agent_1"],
}


@pytest.mark.parametrize("game", sorted(GAMES))
def test_each_game_plays_a_seeded_episode_to_its_time_limit(game):
    env = make_env(f"mpe2:{game}", {"max_cycles": 5})
    assert isinstance(env, ParallelPettingZooEnv)
    assert env.possible_agents == GAMES[game]

    def play(seed):
        obs, _ = env.reset(seed=seed)
        assert set(obs) == set(GAMES[game])
        assert env.state().shape == env.state_space.shape
        trace, steps = [], 0
        while env.agents:
            actions = {agent: env.action_spaces[agent].sample() for agent in env.agents}
            obs, rewards, terminateds, truncateds, _ = env.step(actions)
            trace.append((actions, rewards))
            steps += 1
        assert steps == 5 and truncateds["__all__"] and not terminateds["__all__"]
        assert all(obs[agent].shape == env.observation_spaces[agent].shape for agent in obs)
        return trace

    assert play(seed=3) == play(seed=3)


def test_names_versions_apis_and_bad_arguments():
    assert {"simple_spread_v3", "simple_tag_v3"} <= set(available_games())
    assert make_env("mpe2:simple_spread", {"N": 2}).possible_agents == ["agent_0", "agent_1"]  # newest version
    assert isinstance(make_env("mpe2:simple_spread_v3", {"pettingzoo_api": "aec"}), PettingZooEnv)
    with pytest.raises(ValueError, match="Did you mean 'simple_spread_v3'"):
        make_env("mpe2:simple_sprad_v3")
    with pytest.raises(ValueError, match="has no argument 'n_agents'.*'N', 'local_ratio'"):
        make_env("mpe2:simple_spread_v3", {"n_agents": 3})
    with pytest.raises(ValueError, match="could not be built"):
        make_env("mpe2:simple_spread_v3", {"local_ratio": 2.0})
    env = make_env("mpe2:simple_spread_v3")
    env.reset(seed=0)
    with pytest.raises(IllegalActionError, match="agent 'agent_1'"):
        env.step({"agent_0": 0, "agent_1": 7, "agent_2": 0})


def test_local_ratio_zero_shares_the_reward_and_team_rewards_can_share_it_too():
    shared = make_env("mpe2:simple_spread_v3", {"local_ratio": 0.0})
    shared.reset(seed=1)
    _, rewards, *_ = shared.step({agent: 1 for agent in shared.agents})
    assert len(set(rewards.values())) == 1
    mixed = team_rewards("mpe2:simple_spread_v3", {"all": GAMES["simple_spread_v3"]}, aggregate="mean")({})
    raw = make_env("mpe2:simple_spread_v3")
    for env in (mixed, raw):
        env.reset(seed=2)
    actions = {"agent_0": 1, "agent_1": 2, "agent_2": 3}
    _, mixed_rewards, *_ = mixed.step(actions)
    _, raw_rewards, *_ = raw.step(actions)
    assert mixed_rewards == pytest.approx({agent: np.mean(list(raw_rewards.values())) for agent in raw_rewards})


@pytest.mark.slow
def test_mappo_learns_to_spread():
    """Three agents, one shared policy, a critic over the team's observations: the team return
    rises well above the random policy's within a short budget."""
    spec = RLModuleSpec(module_class=CentralizedCriticModule,
                        model_config={"fcnet_hiddens": [64, 64], "critic_input": "team_obs"})
    config = (PPOConfig()
              .environment(team_rewards("mpe2:simple_spread_v3", {"all": GAMES["simple_spread_v3"]},
                                        aggregate="mean"), env_config={"N": 3, "max_cycles": 25})
              .env_runners(num_envs_per_env_runner=8)
              .training(train_batch_size=2000, minibatch_size=2000, num_epochs=8, lr=2e-3, entropy_coeff=0.01,
                        use_kl_loss=False, grad_clip=10.0, vf_clip_param=1e4)
              .multi_agent(policies={"shared": spec}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared")
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(10)]
    finally:
        algo.stop()
    assert algo.get_module("shared").model_config.critic_obs_dim == 54
    # A random policy's team return is about -80 (seed 0 reaches about -64 after these 20k env steps).
    assert np.mean(returns[-3:]) > np.mean(returns[:2]) + 8, returns
