"""The OpenSpiel plugin: env semantics, episodes' returns, errors, policy conversion, opponents.

Everything is seeded and runs in one process (no Ray). The central check: per-agent episode
returns recorded by marl_arena's episodes equal the game's own ``state.returns()``, for
turn-based, simultaneous-move and chance games, both when the episode is driven by hand and
through a real EnvRunner.
"""

from __future__ import annotations

import numpy as np
import pytest
import pyspiel
import torch
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability
from open_spiel.python.bots.uniform_random import UniformRandomBot

from marl_arena.algorithms import PPOConfig
from marl_arena.core import ActorCriticModule, Columns, MultiRLModule
from marl_arena.env import MultiAgentEpisode, make_env, register_env
from marl_arena.runners import EnvRunner
from marl_arena.runners.module_specs import module_spec_from_env
from marl_arena_envs.openspiel import (ModulePolicy, OpenSpielEnv, load_game, make, play_against_random,
                                     play_both_seats_against_random)

GAMES = [
    ("kuhn_poker", 300),
    ("leduc_poker", 200),
    ("tic_tac_toe", 200),
    ("goofspiel(num_cards=4)", 200),
    ("connect_four", 40),
]
SHARED = "shared"


def _random_actions(obs: dict, rng: np.random.Generator) -> dict:
    return {p: int(rng.choice(np.flatnonzero(o["action_mask"]))) for p, o in obs.items()}


def _play_recorded(env: OpenSpielEnv, rng: np.random.Generator, seed: int) -> tuple[MultiAgentEpisode, list]:
    """One random game through the env and a MultiAgentEpisode fed as the EnvRunner feeds it."""
    episode = MultiAgentEpisode()
    obs, _ = env.reset(seed=seed)
    outcome = episode.add_env_reset(obs)
    checks = []

    def observe(outcome, obs):
        for agent_id in obs:
            if agent_id not in episode.agents:
                episode.add_agent(agent_id, SHARED)
        processed = {a: (o["observation"], o["action_mask"]) for a, o in obs.items()}
        episode.add_observations(outcome, processed)

    observe(outcome, obs)
    while True:
        state = env.state
        if state.is_simultaneous_node():
            expected = [p for p in range(env.num_players) if state.legal_actions(p)]
        else:
            expected = [state.current_player()]
        checks.append(sorted(obs) == expected)
        actions = _random_actions(obs, rng)
        for player, action in actions.items():
            checks.append(action in state.legal_actions(player))
            episode.add_actions(player, action, {})
        obs, rewards, terminateds, truncateds, _ = env.step(actions)
        for agent_id in rewards:
            if agent_id not in episode.agents:
                episode.add_agent(agent_id, SHARED)
        outcome = episode.add_env_step(obs, rewards, terminateds, truncateds)
        observe(outcome, obs)
        if terminateds["__all__"]:
            checks.append(set(rewards) == set(env.possible_agents))
            return episode, checks


@pytest.mark.parametrize("game,episodes", GAMES, ids=[g for g, _ in GAMES])
def test_random_play_episode_returns_equal_game_returns(game, episodes):
    env = make_env(f"open_spiel:{game}")
    rng = np.random.default_rng(0)
    for seed in range(episodes):
        episode, checks = _play_recorded(env, rng, seed)
        assert all(checks), f"wrong acting players or illegal action in {game}, episode {seed}"
        returns = env.state.returns()
        assert env.state.is_terminal()
        for player in range(env.num_players):
            assert episode.agent_returns[player] == pytest.approx(returns[player])
            # every player's last transition is terminal, whoever made the last move
            segment = episode.agents[player].take_completed()
            assert segment is not None and segment[Columns.TERMINATEDS][-1]
            assert segment[Columns.REWARDS].sum() == pytest.approx(returns[player])
            legal = segment[Columns.ACTION_MASK][np.arange(len(segment[Columns.ACTIONS])), segment[Columns.ACTIONS]]
            assert np.all(legal == 1.0)


def test_observations_match_the_game_tensors():
    env = OpenSpielEnv("kuhn_poker")
    obs, _ = env.reset(seed=1)
    (player,) = obs
    assert np.array_equal(obs[player]["observation"], np.asarray(env.state.information_state_tensor(player), np.float32))
    assert obs[player]["observation"].dtype == np.float32
    assert env.observation_spaces[player].contains(obs[player])
    ttt = OpenSpielEnv("tic_tac_toe", seat_one_hot=True)  # no information state tensor: observation tensor
    obs, _ = ttt.reset(seed=0)
    assert obs[0]["observation"].shape == (3, 3, 3 + 2)  # board planes, HxWxC, and two seat planes
    assert np.all(obs[0]["observation"][..., -2:] == [1.0, 0.0])
    assert np.array_equal(obs[0]["action_mask"], np.ones(9, np.float32))
    obs, *_ = ttt.step({0: 4})
    assert np.all(obs[1]["observation"][..., -2:] == [0.0, 1.0])
    planes = np.asarray(ttt.state.observation_tensor(1), np.float32).reshape(3, 3, 3)  # OpenSpiel's CxHxW
    assert np.array_equal(np.moveaxis(obs[1]["observation"][..., :3], -1, 0), planes)
    assert ttt.observation_spaces[1].contains(obs[1])
    assert obs[1]["action_mask"][4] == 0.0 and obs[1]["action_mask"].sum() == 8


def test_seeded_resets_repeat_chance_outcomes():
    histories = []
    for _ in range(2):
        env = OpenSpielEnv("leduc_poker", opponents={1: "random"})
        rng = np.random.default_rng(5)
        runs = []
        for seed in (3, None, None):
            obs, _ = env.reset(seed=seed)
            while obs:
                obs, _, terminateds, _, _ = env.step(_random_actions(obs, rng))
            runs.append(env.state.history())
        histories.append(runs)
    assert histories[0] == histories[1]


# ---------------------------------------------------------------------- the real EnvRunner
class _RecordingEnv(OpenSpielEnv):
    """Remembers the game's returns at the end of each episode, for comparison with the runner's."""

    finished: list[list[float]] = []

    def step(self, actions):
        out = super().step(actions)
        if out[2]["__all__"]:
            _RecordingEnv.finished.append(list(self.state.returns()))
        return out


@pytest.mark.parametrize("game", ["kuhn_poker", "goofspiel(num_cards=4)"])
def test_env_runner_episode_returns_equal_game_returns(game):
    register_env(f"recording_{game}", lambda cfg: _RecordingEnv(game, **cfg))
    _RecordingEnv.finished = []
    config = (
        PPOConfig()
        .environment(f"recording_{game}")
        .training(train_batch_size_per_learner=64, minibatch_size=32)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .multi_agent(policies={SHARED}, policy_mapping_fn=lambda agent_id, episode=None, **kw: SHARED)
        .debugging(seed=0)
    )
    spec = module_spec_from_env(config, make_env(config.env), ActorCriticModule)
    runner = EnvRunner(config, spec)
    result = runner.sample(num_episodes=150)
    assert len(result.episodes) == 150
    assert len(_RecordingEnv.finished) >= 150
    for stats, returns in zip(result.episodes, _RecordingEnv.finished):
        assert stats.agent_returns == pytest.approx({p: r for p, r in enumerate(returns)})
        assert stats.module_returns[SHARED] == pytest.approx(sum(returns))
    batch = result.batches[SHARED]
    chosen = batch[Columns.ACTION_MASK][np.arange(len(batch[Columns.ACTIONS])), batch[Columns.ACTIONS]]
    assert np.all(chosen == 1.0), "the runner sent an action outside the mask"
    # one terminal transition per player per episode
    assert batch[Columns.TERMINATEDS].sum() == 2 * len(_RecordingEnv.finished)


def test_ppo_trains_one_shared_module_on_an_open_spiel_id():
    config = (
        PPOConfig()
        .environment("open_spiel:kuhn_poker")
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size_per_learner=256, minibatch_size=64, num_epochs=2, gamma=1.0)
        .rl_module(model_config={"fcnet_hiddens": [16, 16]})
        .multi_agent(policies={SHARED}, policy_mapping_fn=lambda agent_id, episode=None, **kw: SHARED)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        assert result["env_runners"]["num_episodes"] > 0
        assert set(result["env_runners"]["agent_episode_returns_mean"]) == {0, 1}
        assert SHARED in result["learners"]
        policy = ModulePolicy.from_algorithm(algo)
        assert policy.player_ids == [0, 1]
        game = load_game("kuhn_poker")
        score = exploitability.exploitability(game, policy)
        assert 0.0 <= score < 1.0
        assert exploitability.exploitability(game, policy.to_tabular()) == pytest.approx(score, abs=1e-6)
    finally:
        algo.stop()


def test_ppo_against_a_seated_opponent_sees_only_the_learner_seat():
    config = (
        PPOConfig()
        .environment("open_spiel:tic_tac_toe", env_config={"opponents": {1: "random"}})
        .training(train_batch_size_per_learner=128, minibatch_size=64, num_epochs=1)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        assert set(result["env_runners"]["agent_episode_returns_mean"]) == {0}
        assert ModulePolicy.from_algorithm(algo).player_ids == [0]
    finally:
        algo.stop()


# ---------------------------------------------------------------------- ids and errors
def test_open_spiel_ids_resolve_through_make_env():
    env = make_env("open_spiel:goofspiel(num_cards=4)")
    assert isinstance(env, OpenSpielEnv)
    assert env.game.get_parameters()["num_cards"] == 4
    assert env.possible_agents == [0, 1]
    assert env.action_spaces[0].n == 4
    env = make_env("open_spiel:goofspiel", {"game_parameters": {"num_cards": 3}, "seat_one_hot": True})
    assert env.action_spaces[1].n == 3
    assert isinstance(make("kuhn_poker", {}), OpenSpielEnv)


def test_unknown_game_names_the_game_and_close_matches():
    with pytest.raises(ValueError, match=r"kuhn_pokr.*kuhn_poker"):
        make_env("open_spiel:kuhn_pokr")


@pytest.mark.parametrize("name,named", [
    ("goofspiel(num_cards=abc)", "num_cards"),
    ("goofspiel(cards=4)", "cards"),
    ("goofspiel(num_cards=-4)", "num_cards"),
    ("goofspiel(num_cards=4", "bracket"),
])
def test_bad_parameters_name_the_game(name, named):
    with pytest.raises(ValueError, match="goofspiel") as info:
        make_env(f"open_spiel:{name}")
    assert named in str(info.value)


def test_unknown_env_config_key_is_named():
    with pytest.raises(ValueError, match="seat_onehot"):
        make("kuhn_poker", {"seat_onehot": True})


def test_illegal_action_names_game_player_action_and_legal_actions():
    env = OpenSpielEnv("tic_tac_toe")
    env.reset(seed=0)
    env.step({0: 4})
    with pytest.raises(ValueError) as info:
        env.step({1: 4})
    message = str(info.value)
    for part in ("tic_tac_toe", "player 1", "action 4", "legal actions", "0=", "8="):
        assert part in message, message
    with pytest.raises(ValueError, match="acting player"):
        env.step({0: 1})
    with pytest.raises(ValueError, match="Illegal action 'x'"):
        env.step({1: "x"})
    env.step({1: 0})  # the env is still usable after rejected actions


def test_bad_opponents_are_rejected():
    with pytest.raises(ValueError, match="seats"):
        OpenSpielEnv("kuhn_poker", opponents={2: "random"})
    with pytest.raises(ValueError, match="every seat"):
        OpenSpielEnv("kuhn_poker", opponents={0: "random", 1: "random"})
    with pytest.raises(ValueError, match="'alphazero'"):
        OpenSpielEnv("kuhn_poker", opponents={1: "alphazero"})
    with pytest.raises(ValueError, match="simultaneous"):
        OpenSpielEnv("goofspiel(num_cards=4)", opponents={1: "mcts"})


# ---------------------------------------------------------------------- policy conversion
def _uniform_module(env: OpenSpielEnv) -> ActorCriticModule:
    """A default module whose policy head outputs all-zero logits: exactly uniform over legal actions."""
    obs_space = env.observation_spaces[env.possible_agents[0]]["observation"]
    module = ActorCriticModule(obs_space, env.action_spaces[env.possible_agents[0]], {"fcnet_hiddens": [16]})
    with torch.no_grad():
        module.pi[-1].weight.zero_()
        module.pi[-1].bias.zero_()
    return module


def test_uniform_module_scores_the_uniform_policys_exploitability():
    game = load_game("kuhn_poker")
    module = _uniform_module(OpenSpielEnv(game))
    policy = ModulePolicy(game, module)
    expected = exploitability.exploitability(game, os_policy.UniformRandomPolicy(game))
    assert expected == pytest.approx(0.4583333, abs=1e-6)
    assert exploitability.exploitability(game, policy) == pytest.approx(expected, abs=1e-6)
    assert exploitability.nash_conv(game, policy.to_tabular()) == pytest.approx(2 * expected, abs=1e-6)
    state = game.new_initial_state()
    state.apply_action(0)
    state.apply_action(1)
    assert policy.action_probabilities(state) == pytest.approx({0: 0.5, 1: 0.5})


def test_module_policy_accepts_multi_modules_and_player_mappings():
    game = load_game("leduc_poker")
    env = OpenSpielEnv(game)
    uniform = _uniform_module(env)
    other = ActorCriticModule(env.observation_spaces[0]["observation"], env.action_spaces[0], {"fcnet_hiddens": [16]})
    multi = MultiRLModule({"a": uniform, "b": other})
    policy = ModulePolicy(game, multi, player_to_module={0: "a", 1: "b"})
    assert policy.player_ids == [0, 1]
    tabular = ModulePolicy(game, {0: uniform, 1: uniform}).to_tabular()
    assert exploitability.exploitability(game, tabular) == pytest.approx(
        exploitability.exploitability(game, os_policy.UniformRandomPolicy(game)), abs=1e-6)
    with pytest.raises(ValueError, match="'c'"):
        ModulePolicy(game, multi, player_to_module={0: "a", 1: "c"})
    with pytest.raises(ValueError, match="shape"):
        ModulePolicy(game, uniform, seat_one_hot=True)


def test_greedy_module_policy_puts_all_mass_on_one_legal_action():
    game = load_game("tic_tac_toe")
    env = OpenSpielEnv(game)
    module = ActorCriticModule(env.observation_spaces[0]["observation"], env.action_spaces[0], {"fcnet_hiddens": [8]})
    state = game.new_initial_state()
    state.apply_action(4)
    probs = ModulePolicy(game, module, greedy=True).action_probabilities(state)
    assert 4 not in probs and sorted(probs.values()) == [0.0] * 7 + [1.0]


# ---------------------------------------------------------------------- opponents
def _play_against(env: OpenSpielEnv, seat: int, episodes: int, seed: int) -> np.ndarray:
    """The learner seat's returns with uniformly random legal moves."""
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        while obs:
            assert list(obs) == [seat]
            obs, *_ = env.step(_random_actions(obs, rng))
        returns.append(env.state.returns()[seat])
    return np.asarray(returns)


@pytest.mark.parametrize("seat", [0, 1])
def test_mcts_opponent_beats_a_random_learner_at_tic_tac_toe(seat):
    env = OpenSpielEnv("tic_tac_toe", opponents={1 - seat: {"bot": "mcts", "max_simulations": 1000}})
    returns = _play_against(env, seat, episodes=50, seed=seat)
    assert np.mean(returns < 0) >= 0.6, returns  # MCTS wins most games (measured: 68% and 96%)
    assert np.mean(returns > 0) <= 0.06, returns  # and (almost) never loses


class _ShadowBot(pyspiel.Bot):
    """Replays every action it is told about on its own state and checks it matches the game."""

    def __init__(self, game, player):
        super().__init__()
        self.game, self.player = game, player
        self.shadow = None
        self.steps = 0

    def restart(self):
        self.shadow = self.game.new_initial_state()

    def inform_action(self, state, player_id, action):
        assert self.shadow.history() == state.history()
        self.shadow.apply_action(action)

    def inform_actions(self, state, actions):
        assert self.shadow.history() == state.history()
        self.shadow.apply_actions(actions)

    def step(self, state):
        assert self.shadow.history() == state.history(), (self.shadow.history(), state.history())
        self.steps += 1
        action = state.legal_actions(self.player)[0]
        if not state.is_simultaneous_node():
            self.shadow.apply_action(action)
        return action


@pytest.mark.parametrize("game", ["leduc_poker", "goofspiel(num_cards=4)"])
def test_bot_opponents_stay_in_sync_with_the_game(game):
    loaded = load_game(game)
    bot = _ShadowBot(loaded, 1)
    env = OpenSpielEnv(loaded, opponents={1: bot})
    returns = _play_against(env, seat=0, episodes=40, seed=0)
    assert bot.steps > 40 and len(returns) == 40


def test_python_and_cpp_random_bots_policies_and_factories_can_sit():
    game = load_game("kuhn_poker")
    module = _uniform_module(OpenSpielEnv(game))
    for opponent in (
        pyspiel.make_uniform_random_bot(1, 7),
        UniformRandomBot(1, np.random.RandomState(7)),
        os_policy.UniformRandomPolicy(game),
        ModulePolicy(game, module, players=[1]),
        lambda g, player, seed: pyspiel.make_uniform_random_bot(player, seed),
    ):
        env = OpenSpielEnv(game, opponents={1: opponent})
        returns = _play_against(env, seat=0, episodes=20, seed=3)
        assert len(returns) == 20 and set(returns) <= {-2.0, -1.0, 1.0, 2.0}


def test_board_bots_rebuild_the_state_and_win_or_block():
    import pyspiel
    import torch

    from marl_arena_envs.openspiel.board_bots import TicTacToeGreedy, board_state

    game = pyspiel.load_game("tic_tac_toe")
    state = game.new_initial_state()
    for move in (4, 0, 8, 2):  # x: 4, 8; o: 0, 2 -> x to move, no win of its own, must block o at 1
        state.apply_action(move)
    env = OpenSpielEnv("tic_tac_toe")
    rebuilt = board_state(env.encoder.vector(state, 0))
    assert rebuilt.observation_tensor(0) == state.observation_tensor(0)
    assert rebuilt.current_player() == state.current_player()
    greedy = TicTacToeGreedy(env.encoder.space()["observation"], env.action_spaces[0])
    obs = torch.as_tensor(env.encoder.vector(state, 0)[None])
    assert greedy.scripted_logits(obs).argmax().item() == 1  # blocks o's top row
    state.apply_action(1)
    state.apply_action(6)  # o elsewhere; now x (4, 8, 1) can win at 7 (column 1-4-7)
    obs = torch.as_tensor(env.encoder.vector(state, 0)[None])
    assert greedy.scripted_logits(obs).argmax().item() == 7


def test_both_seats_against_random_play_each_seat_on_its_own_games():
    policy = os_policy.UniformRandomPolicy(pyspiel.load_game("tic_tac_toe"))
    both = play_both_seats_against_random(policy, "tic_tac_toe", 30, seed=7)
    assert both == {f"seat{seat}": play_against_random(policy, "tic_tac_toe", seat, 30, seed=7 * (seat + 1))
                    for seat in (0, 1)}
    assert both["seat0"]["win"] > both["seat0"]["loss"]  # greedy ties pick the first legal cell: as first player that still beats random
