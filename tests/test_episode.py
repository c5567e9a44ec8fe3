"""The episode contract (DESIGN.md "Episodes"), hand-computed on tiny games.

A reward that reaches an agent between two of its own turns belongs to its previous action;
a game that ends on the opponent's move still gives every agent its terminal reward and a
terminal transition. ``play`` drives ``MultiAgentEpisode`` in the EnvRunner's order, and the
last tests drive the real EnvRunner.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from marl_arena.algorithms.ppo import PPOConfig
from marl_arena.core import ActorCriticModule, Columns
from marl_arena.env import ALL_AGENTS, MultiAgentCartPole, MultiAgentEnv, MultiAgentEpisode, make_env
from marl_arena.runners.env_runner import EnvRunner
from marl_arena.runners.module_specs import module_spec_from_env
from marl_arena.runners.observation_pipeline import ObservationPipeline

BOTH = ("p0", "p1")


# ---------------------------------------------------------------------------- tiny games
class CountGame(MultiAgentEnv):
    """Players p0 and p1 take turns adding 1 (action 0) or 2 (action 1); reaching ``n`` wins.

    Rewards per move: the mover pays 0.1; a jump (+2) pays the opponent 0.5; the winner gets
    +1 and the loser -1. Jumps are masked on the opening move (so nobody is paid before its
    first turn) and past ``n``. ``max_moves`` truncates the game. When the game is over both
    players get a final observation unless ``final_obs`` is False. ``ledger`` records every
    reward handed out, per episode: the ground truth the episode must reproduce.
    """

    def __init__(self, config=None):
        config = config or {}
        self.n = config.get("n", 5)
        self.max_moves = config.get("max_moves")
        self.final_obs = config.get("final_obs", True)
        self.possible_agents = list(BOTH)
        space = gym.spaces.Dict({
            "observation": gym.spaces.Box(0, self.n + 1, (1,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (2,), np.int8),
        })
        self.observation_spaces = {a: space for a in BOTH}
        self.action_spaces = {a: gym.spaces.Discrete(2) for a in BOTH}
        self.ledger: list[dict[str, float]] = []

    def _obs(self):
        legal = [self.count + 1 <= self.n, self.count > 0 and self.count + 2 <= self.n]
        return {"observation": np.array([self.count], np.float32), "action_mask": np.array(legal, np.int8)}

    def reset(self, *, seed=None, options=None):
        self.count = self.moves = self.turn = 0
        self.agents = list(BOTH)
        self.ledger.append({a: 0.0 for a in BOTH})
        return {"p0": self._obs()}, {}

    def step(self, actions):
        mover, other = BOTH[self.turn], BOTH[1 - self.turn]
        action = actions[mover]
        if set(actions) != {mover} or not self._obs()["action_mask"][action]:
            raise ValueError(f"CountGame: {actions} is not a legal move for {mover} at {self.count}")
        self.count += int(action) + 1
        self.moves += 1
        self.turn = 1 - self.turn
        rewards = {mover: -0.1, other: 0.5 if action == 1 else 0.0}
        won = self.count >= self.n
        if won:
            rewards[mover] += 1.0
            rewards[other] -= 1.0
        for agent, reward in rewards.items():
            self.ledger[-1][agent] += reward
        truncated = not won and self.max_moves is not None and self.moves >= self.max_moves
        if won or truncated:
            obs = {a: self._obs() for a in BOTH} if self.final_obs else {}
        else:
            obs = {other: self._obs()}
        return obs, rewards, {ALL_AGENTS: won}, {ALL_AGENTS: truncated}, {}


class RockPaperScissors(MultiAgentEnv):
    """Simultaneous moves for ``rounds`` rounds; the round winner gets +1, the loser -1."""

    def __init__(self, config=None):
        self.rounds = (config or {}).get("rounds", 2)
        self.possible_agents = ["a", "b"]
        self.observation_spaces = {a: gym.spaces.Box(0, 10, (1,), np.float32) for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Discrete(3) for a in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.round = 0
        return {a: np.array([0.0], np.float32) for a in self.possible_agents}, {}

    def step(self, actions):
        self.round += 1
        score = {0: 0, 1: 1, 2: -1}[(actions["a"] - actions["b"]) % 3]  # 1: a beats b
        obs = {a: np.array([self.round], np.float32) for a in self.possible_agents}
        over = self.round == self.rounds
        return obs, {"a": score, "b": -score}, {ALL_AGENTS: over}, {ALL_AGENTS: False}, {}


class Lifetimes(MultiAgentEnv):
    """MultiAgentCartPole's semantics with fixed lifetimes: agent 0 falls after one step, agent 1
    is truncated (its own flag) after three; "__all__" is terminated once both are gone.
    Each step pays agent i a reward of i + 1, and agent 0 a stray 100 after it has left."""

    def __init__(self, config=None):
        self.possible_agents = [0, 1]
        self.observation_spaces = {a: gym.spaces.Box(0, 10, (1,), np.float32) for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Discrete(2) for a in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        self.agents = [0, 1]
        return {a: np.array([0.0], np.float32) for a in self.agents}, {}

    def step(self, actions):
        self.t += 1
        obs = {a: np.array([self.t], np.float32) for a in actions}
        rewards = {a: float(a + 1) for a in actions}
        if 0 not in actions:
            rewards[0] = 100.0
        terminateds = {a: a == 0 for a in actions}
        truncateds = {a: a == 1 and self.t == 3 for a in actions}
        self.agents = [a for a in self.agents if not (terminateds.get(a) or truncateds.get(a))]
        return obs, rewards, {**terminateds, ALL_AGENTS: not self.agents}, {**truncateds, ALL_AGENTS: False}, {}


# ---------------------------------------------------------------------------- driving an episode
def play(env, policy, *, mapping=lambda agent: "shared", cut_after=(), seed=0):
    """Drive a MultiAgentEpisode through one game exactly as the EnvRunner does.

    ``policy`` is a list with one ``{agent: action}`` dict per env step (checked against the
    agents the episode says must act) or a callable ``(step, acting) -> actions``. After each
    env step in ``cut_after`` the completed transitions are taken mid-episode, like the end
    of a rollout fragment. Returns the episode and the list of ``take_completed()`` results.
    Each action's extras carry its env step number under ``action_logp``.
    """
    pipelines = {a: ObservationPipeline(env.get_observation_space(a), None) for a in env.possible_agents}
    episode = MultiAgentEpisode()
    chunks = []

    def add_new_agents(*dicts):
        for d in dicts:
            for agent in d:
                if agent not in episode.agents:
                    episode.add_agent(agent, mapping(agent))

    def observe(outcome, obs):
        processed = {}
        for agent in (*outcome.acting, *outcome.ending):
            if agent in obs:
                rows, masks = pipelines[agent].process([obs[agent]])
                processed[agent] = (rows[0], None if masks is None else masks[0])
        episode.add_observations(outcome, processed)
        return outcome.acting

    obs, _ = env.reset(seed=seed)
    add_new_agents(obs)
    acting = observe(episode.add_env_reset(obs), obs)
    step = 0
    while not episode.is_done:
        step += 1
        actions = policy(step, acting) if callable(policy) else policy[step - 1]
        assert sorted(acting, key=str) == sorted(actions, key=str), f"step {step}: the episode says {acting} act"
        for agent, action in actions.items():
            episode.add_actions(agent, action, {Columns.ACTION_LOGP: np.float32(step)})
        obs, rewards, terminateds, truncateds, _ = env.step(actions)
        add_new_agents(obs, rewards)
        acting = observe(episode.add_env_step(obs, rewards, terminateds, truncateds), obs)
        if step in cut_after:
            chunks.append(episode.take_completed())
    chunks.append(episode.take_completed())
    return episode, chunks


def assert_segment(segment, **expected):
    """Each expected column equals the segment's; obs-like columns are given as lists of scalars."""
    for column, want in expected.items():
        got = segment[column]
        want = np.asarray(want)
        if column in (Columns.OBS, Columns.NEXT_OBS):
            want = want.reshape(-1, 1)
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=column)
        assert got.shape == want.shape, column


def transitions(obs, actions, rewards, new_obs, terminateds=None, truncateds=None, **more):
    """Expected columns of one agent's segment (all flags False unless given)."""
    flags = np.zeros(len(actions), bool)
    return {
        Columns.OBS: obs, Columns.ACTIONS: actions, Columns.REWARDS: rewards, Columns.NEXT_OBS: new_obs,
        Columns.TERMINATEDS: flags if terminateds is None else terminateds,
        Columns.TRUNCATEDS: flags if truncateds is None else truncateds,
        **more,
    }


P0_ADD1, P1_JUMP, P0_ADD1_AGAIN, P1_ADD1 = {"p0": 0}, {"p1": 1}, {"p0": 0}, {"p1": 0}
# n=5: counts 0 -> 1 -> 3 (p1 jumps, p0 is paid 0.5) -> 4 -> 5: p1 wins on its own move.
P1_WINS = [P0_ADD1, P1_JUMP, P0_ADD1_AGAIN, P1_ADD1]
P1_WINS_EXPECTED = {
    # p0's first reward: its own move's cost and the opponent's jump bonus (-0.1 + 0.5);
    # its last action is answered by p1's winning move: -0.1 - 1, terminal.
    "p0": transitions(obs=[0, 3], actions=[0, 0], rewards=[0.4, -1.1], new_obs=[3, 5],
                      terminateds=[False, True], action_mask=[[1, 0], [1, 1]],
                      new_action_mask=[[1, 1], [0, 0]], action_logp=[1, 3]),
    "p1": transitions(obs=[1, 4], actions=[1, 0], rewards=[-0.1, 0.9], new_obs=[4, 5],
                      terminateds=[False, True], action_mask=[[1, 1], [1, 0]],
                      new_action_mask=[[1, 0], [0, 0]], action_logp=[2, 4]),
}
# n=3: counts 0 -> 1 -> 2 -> 3: p0 wins; p1 loses on p0's move and still ends terminal.
P0_WINS = [{"p0": 0}, {"p1": 0}, {"p0": 0}]
P0_WINS_EXPECTED = {
    "p0": transitions(obs=[0, 2], actions=[0, 0], rewards=[-0.1, 0.9], new_obs=[2, 3],
                      terminateds=[False, True], action_mask=[[1, 0], [1, 0]],
                      new_action_mask=[[1, 0], [0, 0]], action_logp=[1, 3]),
    "p1": transitions(obs=[1], actions=[0], rewards=[-1.1], new_obs=[3], terminateds=[True],
                      action_mask=[[1, 1]], new_action_mask=[[0, 0]], action_logp=[2]),
}
GAMES = {
    "p1 wins, p0 ends on the opponent's move": ({"n": 5}, P1_WINS, P1_WINS_EXPECTED, {"p0": -0.7, "p1": 0.8}),
    "p0 wins, p1 ends on the opponent's move": ({"n": 3}, P0_WINS, P0_WINS_EXPECTED, {"p0": 0.8, "p1": -1.1}),
}


# ---------------------------------------------------------------------------- turn-based games
@pytest.mark.parametrize("game", list(GAMES))
def test_turn_based_transitions_credit_rewards_between_own_turns(game):
    """Every column hand-computed, action masks included (new_action_mask is the next obs's mask)."""
    env_config, script, expected, _ = GAMES[game]
    _, (segments,) = play(CountGame(env_config), script)
    assert set(segments) == set(BOTH)
    for agent in BOTH:
        assert_segment(segments[agent], **expected[agent])


@pytest.mark.parametrize("game", list(GAMES))
@pytest.mark.parametrize("mapping", [{"p0": "m0", "p1": "m1"}, {"p0": "shared", "p1": "shared"}], ids=["own", "shared"])
def test_returns_match_the_game(game, mapping):
    env_config, script, _, returns = GAMES[game]
    env = CountGame(env_config)
    episode, (segments,) = play(env, script, mapping=mapping.get)
    assert episode.agent_returns == pytest.approx(returns)
    assert env.ledger[-1] == pytest.approx(returns)
    module_returns = {}
    for agent, value in returns.items():
        module_returns[mapping[agent]] = module_returns.get(mapping[agent], 0.0) + value
    assert episode.module_returns == pytest.approx(module_returns)
    assert episode.episode_return == pytest.approx(sum(returns.values()))
    for agent in BOTH:
        assert segments[agent][Columns.REWARDS].sum() == pytest.approx(returns[agent], abs=1e-6)


def test_terminal_transitions_close_without_final_observations():
    """An env may end without any final obs; every agent still gets its terminal transition."""
    _, (segments,) = play(CountGame({"n": 5, "final_obs": False}), P1_WINS)
    assert_segment(segments["p0"], **transitions(obs=[0, 3], actions=[0, 0], rewards=[0.4, -1.1],
                                                 new_obs=[3, 3], terminateds=[False, True]))
    assert_segment(segments["p1"], **transitions(obs=[1, 4], actions=[1, 0], rewards=[-0.1, 0.9],
                                                 new_obs=[4, 4], terminateds=[False, True]))


@pytest.mark.parametrize("final_obs, p0_new_obs, p1_new_obs", [(True, 2, 2), (False, 0, 1)],
                         ids=["bootstrap from the final obs", "no final obs: bootstrap from own obs"])
def test_all_truncated_marks_last_transitions_truncated(final_obs, p0_new_obs, p1_new_obs):
    _, (segments,) = play(CountGame({"n": 5, "max_moves": 2, "final_obs": final_obs}), [{"p0": 0}, {"p1": 0}])
    assert_segment(segments["p0"], **transitions(obs=[0], actions=[0], rewards=[-0.1], new_obs=[p0_new_obs],
                                                 truncateds=[True]))
    assert_segment(segments["p1"], **transitions(obs=[1], actions=[0], rewards=[-0.1], new_obs=[p1_new_obs],
                                                 truncateds=[True]))
    if final_obs:  # the final observation's mask comes with it: at count 2 both moves are legal
        np.testing.assert_array_equal(segments["p0"][Columns.NEXT_ACTION_MASK], [[1, 1]])


def test_cut_mid_episode_truncates_and_keeps_pending_reward():
    """Cut after p0's second move: both agents' completed steps leave truncated; p0's pending
    action keeps the move cost credited before the cut and gets the loss after it."""
    _, (first, second) = play(CountGame({"n": 5}), P1_WINS, cut_after=(3,))
    assert_segment(first["p0"], **transitions(obs=[0], actions=[0], rewards=[0.4], new_obs=[3], truncateds=[True],
                                              new_action_mask=[[1, 1]]))
    assert_segment(first["p1"], **transitions(obs=[1], actions=[1], rewards=[-0.1], new_obs=[4], truncateds=[True],
                                              new_action_mask=[[1, 0]]))
    assert_segment(second["p0"], **transitions(obs=[3], actions=[0], rewards=[-1.1], new_obs=[5],
                                               terminateds=[True]))
    assert_segment(second["p1"], **transitions(obs=[4], actions=[0], rewards=[0.9], new_obs=[5],
                                               terminateds=[True]))


def test_cut_before_any_completed_transition_takes_nothing():
    _, (first, second) = play(CountGame({"n": 5}), P1_WINS, cut_after=(1,))
    assert first == {}
    for agent in BOTH:
        assert_segment(second[agent], **P1_WINS_EXPECTED[agent])


@pytest.mark.parametrize("cut_after", [(1,), (2,), (3,), (1, 2, 3), (2, 3)])
def test_cuts_change_only_truncated_flags(cut_after):
    """Chunks taken at any cut points concatenate to the uncut episode, with a truncated flag
    exactly at each chunk's end (where the learner bootstraps)."""
    _, chunks = play(CountGame({"n": 5}), P1_WINS, cut_after=cut_after)
    for agent in BOTH:
        parts = [chunk[agent] for chunk in chunks if agent in chunk]
        joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        ends = np.cumsum([len(p[Columns.ACTIONS]) for p in parts])[:-1] - 1
        want = dict(P1_WINS_EXPECTED[agent])
        truncateds = np.zeros(len(want[Columns.ACTIONS]), bool)
        truncateds[ends] = True
        want[Columns.TRUNCATEDS] = truncateds
        assert_segment(joined, **want)


def test_actions_are_rejected_without_a_fresh_observation():
    episode = MultiAgentEpisode()
    episode.add_agent("p0", "m")
    episode.add_observations(episode.add_env_reset({"p0": 0}), {"p0": (np.zeros(1, np.float32), None)})
    episode.add_actions("p0", 0, {})
    with pytest.raises(RuntimeError, match="fresh observation"):
        episode.add_actions("p0", 1, {})


# ---------------------------------------------------------------------------- simultaneous moves
def test_simultaneous_moves_each_agent_gets_every_step():
    # round 1: rock beats scissors (a +1), round 2: rock vs rock (draw)
    episode, (segments,) = play(RockPaperScissors({"rounds": 2}), [{"a": 0, "b": 2}, {"a": 0, "b": 0}])
    assert_segment(segments["a"], **transitions(obs=[0, 1], actions=[0, 0], rewards=[1, 0], new_obs=[1, 2],
                                                terminateds=[False, True], action_logp=[1, 2]))
    assert_segment(segments["b"], **transitions(obs=[0, 1], actions=[2, 0], rewards=[-1, 0], new_obs=[1, 2],
                                                terminateds=[False, True], action_logp=[1, 2]))
    assert Columns.ACTION_MASK not in segments["a"]
    assert episode.agent_returns == {"a": 1.0, "b": -1.0}


def test_agent_that_finishes_early_leaves_while_others_go_on():
    """Each agent's own flag says how it ended, even when "__all__" is terminated; rewards
    after an agent has left belong to no action and are ignored."""
    episode, (segments,) = play(Lifetimes(), [{0: 0, 1: 0}, {1: 1}, {1: 0}])
    assert_segment(segments[0], **transitions(obs=[0], actions=[0], rewards=[1], new_obs=[1], terminateds=[True]))
    assert_segment(segments[1], **transitions(obs=[0, 1, 2], actions=[0, 1, 0], rewards=[2, 2, 2],
                                              new_obs=[1, 2, 3], truncateds=[False, False, True]))
    assert episode.agent_returns == {0: 1.0, 1: 6.0}
    assert episode.env_steps == 3


def test_multi_agent_cartpole_each_agent_ends_terminal_at_its_own_fall():
    def policy(step, acting):  # agent 0 pushes left always (falls fast), agent 1 alternates
        return {a: 0 if a == 0 else step % 2 for a in acting}

    episode, (segments,) = play(MultiAgentCartPole({"num_agents": 2}), policy, mapping=str, seed=3)
    lengths = {a: len(segments[a][Columns.ACTIONS]) for a in (0, 1)}
    assert lengths[0] < lengths[1] == episode.env_steps
    for agent, segment in segments.items():
        np.testing.assert_array_equal(segment[Columns.REWARDS], np.ones(lengths[agent]))
        assert segment[Columns.TERMINATEDS].tolist() == [False] * (lengths[agent] - 1) + [True]
        assert not segment[Columns.TRUNCATEDS].any()
        np.testing.assert_array_equal(segment[Columns.NEXT_OBS][:-1], segment[Columns.OBS][1:])
    assert episode.module_returns == {"0": lengths[0], "1": lengths[1]}


# ---------------------------------------------------------------------------- the real EnvRunner
def count_game_runner(mapping, num_envs=1, seed=0):
    """An EnvRunner on CountGame with tiny modules; returns it and the env copies it made."""
    config = (
        PPOConfig()
        .environment(CountGame, env_config={"n": 5})
        .env_runners(num_envs_per_env_runner=num_envs)
        .multi_agent(policies=set(mapping.values()), policy_mapping_fn=lambda agent, episode: mapping[agent])
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .debugging(seed=seed)
    )
    spec = module_spec_from_env(config, make_env(CountGame, config.env_config), ActorCriticModule)
    made = []

    def creator(env_config):
        made.append(CountGame(env_config))
        return made[-1]

    return EnvRunner(config, spec, env_creator=creator), made


@pytest.mark.parametrize("mapping", [{"p0": "m0", "p1": "m1"}, {"p0": "shared", "p1": "shared"}], ids=["own", "shared"])
def test_env_runner_batches_hold_exactly_the_game_rewards(mapping):
    runner, (env,) = count_game_runner(mapping)
    result = runner.sample(num_episodes=30)
    ledger = env.ledger[:30]  # the runner has already reset into a 31st episode
    assert len(result.episodes) == 30
    for stats, paid in zip(result.episodes, ledger):
        assert stats.agent_returns == pytest.approx(paid)
    for module_id, batch in result.batches.items():
        agents = [a for a in BOTH if mapping[a] == module_id]
        assert batch[Columns.REWARDS].sum() == pytest.approx(sum(p[a] for p in ledger for a in agents), abs=1e-4)
        assert batch[Columns.TERMINATEDS].sum() == 30 * len(agents)  # the loser's terminal step too
        assert not batch[Columns.TRUNCATEDS].any()
        rows = np.arange(len(batch[Columns.ACTIONS]))
        assert (batch[Columns.ACTION_MASK][rows, batch[Columns.ACTIONS]] == 1).all()
    assert set(result.batches) == set(mapping.values())


def test_env_runner_fragments_concatenate_to_one_long_sample():
    """Sampling 10 fragments of 4 steps gives the same data as one 40-step sample, with
    truncated flags added where the fragments were cut."""
    mapping = {"p0": "m0", "p1": "m1"}
    whole = count_game_runner(mapping)[0].sample(num_timesteps=40).batches
    runner = count_game_runner(mapping)[0]
    fragments = [runner.sample(num_timesteps=4).batches for _ in range(10)]
    for module_id, batch in whole.items():
        joined = {k: np.concatenate([f[module_id][k] for f in fragments if module_id in f]) for k in batch}
        for column in (Columns.OBS, Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS,
                       Columns.ACTION_MASK, Columns.NEXT_ACTION_MASK, Columns.ACTION_LOGP):
            np.testing.assert_allclose(joined[column], batch[column], atol=1e-6, err_msg=column)
        assert (joined[Columns.TRUNCATEDS] >= batch[Columns.TRUNCATEDS]).all()
        assert joined[Columns.TRUNCATEDS].sum() > batch[Columns.TRUNCATEDS].sum()


def test_env_runner_keeps_the_episodes_of_its_sub_envs_apart():
    """With two sub-envs stepped in one batched forward, each finished episode's returns are
    those one env paid in one game."""
    runner, envs = count_game_runner({"p0": "m0", "p1": "m1"}, num_envs=2)
    result = runner.sample(num_timesteps=80)
    paid = sorted((round(g["p0"], 4), round(g["p1"], 4)) for env in envs for g in env.ledger[:-1])  # last: in progress
    seen = sorted((round(e.agent_returns["p0"], 4), round(e.agent_returns["p1"], 4)) for e in result.episodes)
    assert len(seen) >= 10 and seen == paid
