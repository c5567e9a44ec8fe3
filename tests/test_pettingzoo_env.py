"""The PettingZoo plugin: game ids, the AEC and Parallel adapters, action checks, PPO on SISL.

Returns are checked against PettingZoo itself: every recorded game is replayed through the
canonical AEC loop (``agent_iter`` / ``last()``), whose cumulative rewards are the game's
own account of who won.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pettingzoo
import pytest
import torch
from pettingzoo.utils.wrappers import BaseWrapper

with warnings.catch_warnings():  # PettingZoo 1.27 deprecates importing games by module (we keep it readable)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.classic import connect_four_v3, rps_v2, tictactoe_v3
    from pettingzoo.sisl import multiwalker_v9, pursuit_v5

from conftest import tiny_ppo
from marl_arena.core import ActorCriticModule, Columns
from marl_arena.env import ALL_AGENTS, MultiAgentEnv, make_env, register_env
from marl_arena.env import registry
from marl_arena.env.registry import env_creator_for
from marl_arena.runners import EnvRunner
from marl_arena.runners.module_specs import module_spec_from_env
from marl_arena_envs.pettingzoo import (
    IllegalActionError,
    ParallelPettingZooEnv,
    PettingZooEnv,
    available_games,
    make,
)

pytestmark = pytest.mark.filterwarnings("ignore:The old environment creation API:DeprecationWarning")

RAW_GAMES = {"connect_four_v3": connect_four_v3, "tictactoe_v3": tictactoe_v3}


@pytest.fixture(autouse=True)
def private_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# ---------------------------------------------------------------------------- helpers
def replay_returns(game: str, moves: list[tuple[str, int]]) -> dict[str, float]:
    """Play ``moves`` through PettingZoo's canonical AEC loop; the game's own cumulative rewards."""
    env = RAW_GAMES[game].env()
    env.reset(seed=0)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    pending = list(moves)
    for agent in env.agent_iter():
        _, reward, terminated, truncated, _ = env.last()
        returns[agent] += reward
        if terminated or truncated:
            env.step(None)
        else:
            expected_agent, action = pending.pop(0)
            assert agent == expected_agent, "the adapter asked a different agent to move than PettingZoo"
            env.step(action)
    assert not pending, "PettingZoo ended the game before all recorded moves were played"
    return returns


def random_legal(obs: dict, rng: np.random.Generator) -> int:
    legal = np.flatnonzero(obs["action_mask"])
    return int(legal[rng.integers(legal.size)])


class LegalityProbe(BaseWrapper):
    """Sits between the adapter and PettingZoo: asserts that every action reaching the game is
    legal, and that ``None`` is only sent for done agents. Being a wrapper the adapter does not
    know, it also makes the adapter read through the wrapper chain (its slow path)."""

    sent: list

    def __init__(self, env):
        super().__init__(env)
        self.sent = []

    def step(self, action):
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            assert action is None, f"done agent {agent} was sent {action!r} instead of None"
        else:
            assert action is not None, f"live agent {agent} was sent None"
            assert self.observe(agent)["action_mask"][action] == 1, f"illegal action {action} reached the game"
            self.sent.append((agent, action))
        super().step(action)


class Recorder(MultiAgentEnv):
    """A MultiAgentEnv in front of the adapter that logs every episode's moves and checks them."""

    def __init__(self, env: MultiAgentEnv):
        self.env = env
        self.possible_agents = env.possible_agents
        self.observation_spaces = env.observation_spaces
        self.action_spaces = env.action_spaces
        self.episodes: list[list[tuple[Any, int]]] = []
        self._obs: dict = {}

    def reset(self, *, seed=None, options=None):
        self.episodes.append([])
        obs, infos = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, infos

    def step(self, actions):
        for agent, action in actions.items():
            assert self._obs[agent]["action_mask"][action] == 1, f"the runner sent illegal action {action}"
            self.episodes[-1].append((agent, int(action)))
        out = self.env.step(actions)
        self._obs = out[0]
        return out


def play_randomly(env: PettingZooEnv, episodes: int, seed: int) -> list[tuple[list, dict, dict]]:
    """Random legal play through the adapter; per episode: moves, returns, last step's outputs."""
    rng = np.random.default_rng(seed)
    played = []
    for episode in range(episodes):
        obs, infos = env.reset(seed=seed if episode == 0 else None)
        returns: dict = {}
        moves = []
        while True:
            assert len(obs) == 1 and set(infos) == set(obs), f"turn-based obs must hold one agent, got {list(obs)}"
            (agent, agent_obs), = obs.items()
            assert set(agent_obs) == {"observation", "action_mask"}
            action = random_legal(agent_obs, rng)
            moves.append((agent, action))
            obs, rewards, terminateds, truncateds, infos = env.step({agent: action})
            for other, reward in rewards.items():
                returns[other] = returns.get(other, 0.0) + reward
            if terminateds[ALL_AGENTS] or truncateds[ALL_AGENTS]:
                played.append((moves, returns, terminateds))
                break
            assert not any(v for k, v in terminateds.items() if k != ALL_AGENTS)
    return played


# ---------------------------------------------------------------------------- game ids
@pytest.mark.parametrize(
    "env_id, adapter, name",
    [
        ("pettingzoo:connect_four_v3", PettingZooEnv, "connect_four_v3"),
        ("pettingzoo:classic/tictactoe_v3", PettingZooEnv, "tictactoe_v3"),
        ("pettingzoo:leduc_holdem_v4", PettingZooEnv, "leduc_holdem_v4"),
        ("pettingzoo:texas_holdem_v4", PettingZooEnv, "texas_holdem_v4"),
        ("pettingzoo:rps_v2", ParallelPettingZooEnv, "rps_v2"),
        ("pettingzoo:sisl/pursuit_v5", ParallelPettingZooEnv, "pursuit_v5"),
        ("pettingzoo:multiwalker_v9", ParallelPettingZooEnv, "multiwalker_v9"),  # found by searching families
        ("pettingzoo:connect_four", PettingZooEnv, "connect_four_v3"),  # no version: the newest
    ],
)
def test_pettingzoo_ids_resolve_through_make_env(env_id, adapter, name):
    env = make_env(env_id)
    assert type(env) is adapter and env.name == name
    agent = env.possible_agents[0]
    raw = env.env
    assert env.get_observation_space(agent) == raw.observation_space(agent)
    assert env.get_action_space(agent) == raw.action_space(agent)
    obs, _ = env.reset(seed=0)
    assert set(obs) <= set(env.possible_agents) and obs
    env.close()


def test_env_config_becomes_the_games_keyword_arguments():
    env = make_env("pettingzoo:sisl/pursuit_v5", {"n_pursuers": 3, "n_evaders": 2})
    assert env.possible_agents == ["pursuer_0", "pursuer_1", "pursuer_2"]
    rps = make_env("pettingzoo:rps_v2", {"max_cycles": 2})
    rps.reset(seed=0)
    rps.step({"player_0": 0, "player_1": 1})
    *_, truncateds, _ = rps.step({"player_0": 0, "player_1": 1})
    assert truncateds == {"player_0": True, "player_1": True, ALL_AGENTS: True}


def test_pettingzoo_api_key_picks_the_aec_or_parallel_api():
    aec = make("sisl/pursuit_v5", {"pettingzoo_api": "aec", "n_pursuers": 2})
    assert isinstance(aec, PettingZooEnv) and aec.possible_agents == ["pursuer_0", "pursuer_1"]
    assert isinstance(make("sisl/pursuit_v5", {"pettingzoo_api": "parallel"}), ParallelPettingZooEnv)
    with pytest.raises(ValueError, match="'connect_four_v3' has no Parallel API"):
        make("connect_four_v3", {"pettingzoo_api": "parallel"})
    with pytest.raises(ValueError, match="pettingzoo_api.*'sideways'.*'aec' or 'parallel'"):
        make("connect_four_v3", {"pettingzoo_api": "sideways"})


@pytest.mark.parametrize(
    "env_id, expected",
    [
        ("pettingzoo:conect_four_v3", "Did you mean 'connect_four_v3'"),
        ("pettingzoo:tictactoe_v2", "PettingZoo has classic/tictactoe_v3 instead"),
        ("pettingzoo:sisl/connect_four_v3", "PettingZoo has classic/connect_four_v3 instead"),
        ("pettingzoo:no_such_game_v1", "Games are named like 'connect_four_v3'"),
    ],
)
def test_unknown_game_is_named_with_close_matches(env_id, expected):
    with pytest.raises(ValueError) as error:
        make_env(env_id)
    message = str(error.value)
    assert f"Unknown PettingZoo game {env_id.split(':', 1)[1]!r}" in message
    assert expected in message


@pytest.mark.parametrize(
    "game, config, expected",
    [
        # named parameters: checked before building, with the allowed ones and a suggestion
        ("connect_four_v3", {"screen_scale": 3},
         "'connect_four_v3' has no argument 'screen_scale'.*Did you mean 'screen_scaling'"),
        # SISL forwards **kwargs: caught when the game rejects it
        ("sisl/pursuit_v5", {"n_pursuer": 3}, "'pursuit_v5' has no argument 'n_pursuer'"),
        # a value the game cannot take
        ("sisl/pursuit_v5", {"n_pursuers": -1}, "'pursuit_v5' could not be built with env_config.*'n_pursuers': -1"),
    ],
)
def test_bad_arguments_name_the_game_and_the_argument(game, config, expected):
    with pytest.raises(ValueError, match=expected):
        make_env(f"pettingzoo:{game}", config)


@pytest.mark.skipif(importlib.util.find_spec("multi_agent_ale_py") is not None, reason="Atari extras are installed")
def test_game_with_missing_extras_says_what_to_install():
    with pytest.raises(ImportError, match=r"atari/pong_v3.*pip install 'pettingzoo\[atari\]'"):
        make("pong_v3", {})


def test_catalog_falls_back_to_modules_on_disk_without_a_registry(monkeypatch):
    """PettingZoo before 1.27 has no registry; the game modules are found on disk instead."""
    monkeypatch.delattr(pettingzoo, "aec_registry")
    games = available_games()
    assert {"classic/connect_four_v3", "classic/rps_v2", "sisl/pursuit_v5"} <= set(games)
    assert isinstance(make("tictactoe_v3", {}), PettingZooEnv)
    assert isinstance(make("rps_v2", {}), ParallelPettingZooEnv)


def test_games_registered_with_pettingzoo_resolve_with_their_default_arguments(monkeypatch):
    spec = pettingzoo.EnvSpec("mylab/small_pursuit-v1", entry_point="pettingzoo.sisl.pursuit.pursuit:env",
                              kwargs={"n_pursuers": 2}, max_cycles=3)
    monkeypatch.setitem(pettingzoo.aec_registry, spec.id, spec)
    env = make_env("pettingzoo:mylab/small_pursuit_v1")
    assert isinstance(env, PettingZooEnv) and env.possible_agents == ["pursuer_0", "pursuer_1"]
    assert make_env("pettingzoo:small_pursuit", {"n_pursuers": 4}).possible_agents[-1] == "pursuer_3"
    obs, _ = env.reset(seed=0)
    moves = 0
    while True:
        (agent,) = obs
        obs, _, terminateds, truncateds, _ = env.step({agent: 0})
        moves += 1
        if terminateds[ALL_AGENTS] or truncateds[ALL_AGENTS]:
            break
    assert truncateds[ALL_AGENTS] and moves == 3 * 2  # max_cycles=3 from the spec, two pursuers


def test_adapters_reject_the_other_api():
    with pytest.raises(ValueError, match="wrap it in ParallelPettingZooEnv"):
        PettingZooEnv(rps_v2.parallel_env())
    with pytest.raises(ValueError, match="wrap it in PettingZooEnv"):
        ParallelPettingZooEnv(connect_four_v3.env())


# ---------------------------------------------------------------------------- AEC adapter
@pytest.mark.parametrize("game, episodes", [("connect_four_v3", 300), ("tictactoe_v3", 500)])
@pytest.mark.parametrize("through_unknown_wrapper", [False, True], ids=["fast-path", "wrapped"])
def test_random_legal_play_matches_the_games_own_returns(game, episodes, through_unknown_wrapper):
    raw = RAW_GAMES[game].env()
    probe = LegalityProbe(raw) if through_unknown_wrapper else None
    env = PettingZooEnv(probe or raw)
    outcomes = {"win": 0, "draw": 0}
    for moves, returns, terminateds in play_randomly(env, episodes, seed=7):
        assert returns == pytest.approx(replay_returns(game, moves))
        # every agent is told it is done (terminated: these games have no time limit)
        assert terminateds == {**dict.fromkeys(env.possible_agents, True), ALL_AGENTS: True}
        assert env.agents == [] and raw.agents == []  # the None steps happened, out of sight
        outcomes["win" if any(returns.values()) else "draw"] += 1
    assert outcomes["win"] > 0  # random play decides most games
    if probe is not None:
        assert len(probe.sent) > episodes


def test_winning_move_rewards_the_loser_too_and_ends_the_game():
    env = make("connect_four_v3", {})
    obs, _ = env.reset(seed=0)
    for column in (0, 1, 0, 1, 0, 1):
        (agent,) = obs
        obs, rewards, terminateds, truncateds, _ = env.step({agent: column})
        assert rewards == {"player_0": 0, "player_1": 0} and not terminateds[ALL_AGENTS]
    assert list(obs) == ["player_0"]
    obs, rewards, terminateds, truncateds, infos = env.step({"player_0": 0})
    assert rewards == {"player_0": 1, "player_1": -1}
    assert terminateds == {"player_0": True, "player_1": True, ALL_AGENTS: True}
    assert truncateds == {"player_0": False, "player_1": False, ALL_AGENTS: False}
    # Final observations come once, for the record; nobody is asked to move again.
    assert set(obs) == {"player_0", "player_1"} and set(infos) == set(obs)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="episode is over.*reset"):
        env.step({"player_1": 2})


def test_truncation_in_an_aec_game_reaches_every_agent_with_its_final_observation():
    env = make("sisl/pursuit_v5", {"pettingzoo_api": "aec", "n_pursuers": 3, "max_cycles": 2})
    obs, _ = env.reset(seed=1)
    order = []
    while True:
        (agent,) = obs
        order.append(agent)
        obs, rewards, terminateds, truncateds, _ = env.step({agent: 0})
        assert set(rewards) == set(env.possible_agents)
        if truncateds[ALL_AGENTS]:
            break
    assert order == ["pursuer_0", "pursuer_1", "pursuer_2"] * 2
    assert truncateds == {**dict.fromkeys(env.possible_agents, True), ALL_AGENTS: True}
    assert terminateds[ALL_AGENTS] is False
    assert set(obs) == set(env.possible_agents) and all(o.shape == (7, 7, 3) for o in obs.values())
    assert env.agents == [] and env.env.agents == []


def test_aec_seeding_is_reproducible():
    env = make("sisl/pursuit_v5", {"pettingzoo_api": "aec"})
    first = env.reset(seed=3)[0]["pursuer_0"]
    again = env.reset(seed=3)[0]["pursuer_0"]
    other = env.reset(seed=4)[0]["pursuer_0"]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "action, reason",
    [
        (0, "its action mask allows only \\[1, 2, 3, 4, 5, 6\\]"),  # column 0 is full
        (7, "outside the action space Discrete\\(7\\)"),
        (-1, "outside the action space Discrete\\(7\\)"),
        (2.5, "not an integer"),
        ("3", "not an integer"),
    ],
)
def test_illegal_aec_action_names_the_game_agent_and_action(action, reason):
    env = make("connect_four_v3", {})
    obs, _ = env.reset(seed=0)
    for _ in range(6):  # fill column 0
        (agent,) = obs
        obs, *_ = env.step({agent: 0})
    expected = f"Illegal action {action!r} for agent 'player_0' in PettingZoo game 'connect_four_v3': .*{reason}"
    with pytest.raises(IllegalActionError, match=expected):
        env.step({"player_0": action})
    assert issubclass(IllegalActionError, ValueError)
    obs, rewards, *_ = env.step({"player_0": np.int64(1)})  # nothing was played; numpy ints are fine
    assert list(obs) == ["player_1"]


@pytest.mark.parametrize(
    "actions", [{"player_2": 0}, {"player_1": 0, "player_2": 1}, {}], ids=["wrong-agent", "two", "none"]
)
def test_aec_step_needs_exactly_the_agent_to_move(actions):
    env = make("tictactoe_v3", {})
    env.reset(seed=0)
    expected = "'tictactoe_v3' is turn-based: step\\(\\) takes exactly one action, for 'player_1'"
    with pytest.raises(ValueError, match=expected):
        env.step(actions)


# ---------------------------------------------------------------------------- EnvRunner
@pytest.mark.parametrize("game", ["connect_four_v3", "tictactoe_v3"])
def test_env_runner_episode_returns_equal_the_games_own(game):
    """A real EnvRunner, built from a PPOConfig naming "pettingzoo:<game>", one shared module."""
    config = tiny_ppo(f"pettingzoo:{game}").multi_agent(
        policies={"shared"}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared"
    )
    create = env_creator_for(config.env)
    recorders: list[Recorder] = []

    def recorded(env_config):
        recorders.append(Recorder(create(env_config)))
        return recorders[-1]

    probe = create(config.env_config)
    spec = module_spec_from_env(config, probe, ActorCriticModule)
    runner = EnvRunner(config, spec, env_creator=recorded)
    result = runner.sample(num_episodes=40)
    runner.stop()

    assert len(result.episodes) == 40
    recorded_episodes = [moves for moves in recorders[0].episodes if moves][:40]
    decisive = 0
    for stats, moves in zip(result.episodes, recorded_episodes):
        expected = replay_returns(game, moves)
        assert stats.agent_returns == pytest.approx(expected)
        assert stats.module_returns["shared"] == pytest.approx(sum(expected.values()))
        assert stats.length == len(moves)
        decisive += any(expected.values())
    # Every agent ends every game with a terminal transition, the loser included.
    batch = result.batches["shared"]
    terminal_rewards = batch[Columns.REWARDS][batch[Columns.TERMINATEDS]]
    assert len(terminal_rewards) == 2 * 40
    assert (terminal_rewards == 1).sum() == (terminal_rewards == -1).sum() == decisive > 0
    assert batch[Columns.ACTION_MASK].shape[1] == probe.get_action_space("player_1").n


# ---------------------------------------------------------------------------- Parallel adapter
def test_parallel_rps_returns_match_the_raw_parallel_env():
    env = make("rps_v2", {"max_cycles": 10})
    raw = rps_v2.parallel_env(max_cycles=10)
    rng = np.random.default_rng(0)
    for episode in range(20):
        seed = 100 + episode
        env.reset(seed=seed)
        raw.reset(seed=seed)
        ours, theirs = {}, {}
        while True:
            actions = {a: int(rng.integers(3)) for a in env.agents}
            assert set(actions) == set(raw.agents)
            obs, rewards, terminateds, truncateds, _ = env.step(actions)
            _, raw_rewards, *_ = raw.step(actions)
            for a in rewards:
                ours[a] = ours.get(a, 0.0) + rewards[a]
                theirs[a] = theirs.get(a, 0.0) + raw_rewards[a]
            if terminateds[ALL_AGENTS] or truncateds[ALL_AGENTS]:
                break
        assert ours == pytest.approx(theirs)
        assert truncateds[ALL_AGENTS] and not terminateds[ALL_AGENTS] and env.agents == []


def test_parallel_seeding_is_reproducible():
    env = make("sisl/pursuit_v5", {})
    first = env.reset(seed=3)[0]["pursuer_0"]
    np.testing.assert_array_equal(first, env.reset(seed=3)[0]["pursuer_0"])
    assert not np.array_equal(first, env.reset(seed=4)[0]["pursuer_0"])


def test_parallel_agents_that_are_done_leave():
    env = make("sisl/multiwalker_v9", {"n_walkers": 2, "max_cycles": 500})
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        # Walkers pushing hard one way fall over soon; everyone is terminated then.
        obs, rewards, terminateds, truncateds, _ = env.step({a: np.ones(4, np.float32) for a in env.agents})
        assert set(obs) == set(rewards) == {"walker_0", "walker_1"}
        if terminateds[ALL_AGENTS] or truncateds[ALL_AGENTS]:
            break
    assert steps < 500 and terminateds[ALL_AGENTS] and env.agents == []
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step({"walker_0": np.zeros(4, np.float32)})


@pytest.mark.parametrize(
    "game, bad, reason",
    [
        ("sisl/pursuit_v5", 5, "outside the action space Discrete\\(5\\)"),
        ("sisl/pursuit_v5", 1.5, "not an integer"),
        ("sisl/multiwalker_v9", np.array([2.0, 0, 0, 0], np.float32), "outside the bounds"),
        ("sisl/multiwalker_v9", np.array([np.nan, 0, 0, 0], np.float32), "outside the bounds"),
        ("sisl/multiwalker_v9", np.zeros(3, np.float32), "shape \\(3,\\) does not fit"),
    ],
)
def test_illegal_parallel_action_names_the_game_agent_and_action(game, bad, reason):
    env = make(game, {})
    env.reset(seed=0)
    agent = env.agents[1]
    actions = {a: env.get_action_space(a).sample() for a in env.agents}
    actions[agent] = bad
    name = game.split("/")[1]
    expected = f"Illegal action .* for agent '{agent}' in PettingZoo game '{name}': .*{reason}"
    with pytest.raises(IllegalActionError, match=expected):
        env.step(actions)


def test_parallel_step_needs_one_action_per_live_agent():
    env = make("rps_v2", {})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="no action for live agents \\['player_1'\\]"):
        env.step({"player_0": 0})
    with pytest.raises(ValueError, match="not in the game \\['player_9'\\]"):
        env.step({"player_0": 0, "player_1": 1, "player_9": 2})


# ---------------------------------------------------------------------------- PPO on SISL
def _params(algo, module_id: str) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in algo.get_module(module_id).parameters()])


def _sisl_env(name: str, api: str) -> tuple[str, list[str]]:
    """Register ``name`` built by hand around the adapter; returns the env id and its agents."""
    module = {"pursuit_v5": pursuit_v5, "multiwalker_v9": multiwalker_v9}.get(name)
    if module is None:
        module = getattr(pettingzoo.sisl, name)
    if api == "parallel":
        register_env(f"test_{name}", lambda config: ParallelPettingZooEnv(module.parallel_env(**config)))
    else:
        register_env(f"test_{name}", lambda config: PettingZooEnv(module.env(**config)))
    agents = make_env(f"test_{name}").possible_agents
    return f"test_{name}", agents


@pytest.mark.parametrize(
    "name, api, mapping",
    [
        ("pursuit_v5", "parallel", "one-per-agent"),
        ("pursuit_v5", "aec", "shared"),
        ("multiwalker_v9", "parallel", "one-per-agent"),
        ("multiwalker_v9", "parallel", "shared"),
        ("waterworld_v4", "parallel", "one-per-agent"),
        ("waterworld_v4", "parallel", "shared"),
    ],
)
def test_ppo_trains_on_sisl(name, api, mapping):
    if "sisl/" + name not in available_games():
        pytest.skip(f"PettingZoo {pettingzoo.__version__} has no sisl/{name}")
    env_id, agents = _sisl_env(name, api)
    if mapping == "shared":
        multi_agent = {"policies": {"shared"}, "policy_mapping_fn": lambda aid, *a, **k: "shared"}
    else:
        multi_agent = {"policies": set(agents), "policy_mapping_fn": lambda aid, *a, **k: aid}
    if name == "pursuit_v5":
        assert len(agents) == 8  # eight pursuers by default
    config = tiny_ppo(env_id, batch=128).multi_agent(**multi_agent)
    algo = config.build_algo()
    try:
        modules = sorted(algo.learner_group.module_ids_to_train)
        assert modules == sorted(multi_agent["policies"])
        before = {m: _params(algo, m).clone() for m in modules}
        result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] >= 128
        for m in modules:
            assert not torch.equal(before[m], _params(algo, m)), f"module {m} did not change"
            assert all(math.isfinite(result["learners"][m][k]) for k in ("policy_loss", "vf_loss", "entropy"))
        space = algo.get_module(modules[0]).action_space
        assert isinstance(space, gym.spaces.Box if name == "multiwalker_v9" else gym.spaces.Discrete)
    finally:
        algo.stop()
