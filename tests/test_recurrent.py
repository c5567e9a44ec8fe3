"""Recurrent modules (``use_lstm``): state per agent and episode in the runners, sequences in the learners
(PPO, APPO, IMPALA); the other algorithms refuse them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms import APPOConfig, IMPALAConfig, PPOConfig
from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.algorithm_config import AlgorithmConfig
from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.columns import Columns
from marl_arena.core.onnx_export import module_onnx_bytes
from marl_arena.learners.sequences import SequenceLayout

LSTM = {"use_lstm": True, "lstm_cell_size": 8, "fcnet_hiddens": [16], "max_seq_len": 4}


class Countdown(gym.Env):
    """Observes its own step index; episodes last 3 to 7 steps, whatever the agent does.

    Every row of a sample then says where in its episode it was taken, so the state the
    runner recorded with it can be checked against a replay from the initial state.
    """

    def __init__(self, config=None):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self):
        return np.array([self.t / 10.0, 1.0], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(3, 8))
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(action), self.t >= self.length, False, {}


class Recall(gym.Env):
    """A memory task: the first observation shows a cue (0 or 1), the next three a blank; the
    last action must name the cue (+1, else -1). Without memory the best expected return is 0."""

    def __init__(self, config=None):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.integers(2)), 0
        obs = np.zeros(3, np.float32)
        obs[self.cue] = 1.0
        return obs, {}

    def step(self, action):
        self.t += 1
        done = self.t >= 4
        reward = (1.0 if int(action) == self.cue else -1.0) if done else 0.0
        return np.array([0.0, 0.0, 1.0], np.float32), reward, done, False, {}


def _ppo(env, model=LSTM, **training) -> PPOConfig:
    return (PPOConfig().environment(env).env_runners(num_env_runners=0, num_envs_per_env_runner=3)
            .training(train_batch_size=60, minibatch_size=20, num_epochs=1, **training)
            .rl_module(model_config=dict(model)).debugging(seed=0))


def _replayed_states(module: ActorCriticModule, obs: torch.Tensor) -> torch.Tensor:
    """The state before each of the steps ``obs [T, ...]``, stepping the module from its initial state."""
    state = module.get_initial_state()[None]
    states = []
    with torch.no_grad():
        for row in obs:
            states.append(state[0])
            state = module.forward_inference({Columns.OBS: row[None], Columns.STATE_IN: state})[Columns.STATE_OUT]
    return torch.stack(states)


@pytest.mark.parametrize("vf_share_layers", [True, False])
def test_state_restarts_at_every_episode_and_carries_across_samples(vf_share_layers):
    """Every recorded state is the replay of its own episode's steps: the initial state at step 0
    (reset at episode boundaries), never another sub-env's, and carried over a fragment's end."""
    algo = _ppo(Countdown, {**LSTM, "vf_share_layers": vf_share_layers}).build_algo()
    runner, module = algo.env_runner_group.local_runner, algo.get_module()
    expected = _replayed_states(module, torch.tensor([[t / 10.0, 1.0] for t in range(8)]))
    assert expected.shape[1] == 16 * (1 if vf_share_layers else 2)  # [h, c] of each LSTM
    batches = [runner.sample(num_timesteps=5).batches["default_policy"] for _ in range(6)]  # fragments end mid-episode
    obs = np.concatenate([b[Columns.OBS] for b in batches])
    states = np.concatenate([b[Columns.STATE_IN] for b in batches])
    steps = np.rint(obs[:, 0] * 10).astype(int)
    assert (steps == 0).sum() >= 5 and (steps >= 3).any()
    np.testing.assert_allclose(states, expected[steps].numpy(), atol=1e-6)
    assert not np.allclose(states[steps > 0], 0.0)  # the state really moves: the zero rows are resets
    # The fragment boundaries left episodes running: a later sample's first rows go on from their state.
    assert any(np.rint(b[Columns.OBS][0, 0] * 10) > 0 for b in batches[1:])
    algo.stop()


@pytest.mark.parametrize("mapping", ["shared", "opponent"])
def test_turn_based_sequences_hold_each_agents_own_steps_in_order(mapping):
    """take_away alternates two players over several sub-envs. Each training sequence must be one
    player's own turns in order, starting from the state the runner held for that player, so the
    learner's recurrent pass reproduces every action distribution the runner sampled from.

    ``opponent``: player_1 is a frozen LSTM module (a league opponent) with its own state."""
    policies = ["main"] if mapping == "shared" else ["main", "opponent"]
    config = (_ppo("games:take_away")
              .environment("games:take_away", env_config={"pile": 15})  # 3-4 turns each per game
              .multi_agent(policies=policies, policies_to_train=["main"],
                           policy_mapping_fn=(lambda aid, *a, **k: "main") if mapping == "shared" else
                           (lambda aid, *a, **k: "main" if aid == "player_0" else "opponent")))
    algo = config.build_algo()
    runner = algo.env_runner_group.local_runner
    batch = {k: torch.as_tensor(v) for k, v in runner.sample(num_timesteps=40).batches["main"].items()}
    layout = SequenceLayout.from_segment_ends(batch[Columns.TERMINATEDS], batch[Columns.TRUNCATEDS], 2)
    sequences = layout.to_sequences(batch)
    piles = sequences[Columns.OBS].argmax(-1)
    mask = sequences[Columns.LOSS_MASK]
    assert int(mask.sum()) == len(batch[Columns.OBS]) and (layout.lengths > 1).any()
    # Each player's pile shrinks by at least 2 between its own turns (its take and the opponent's).
    gaps = (piles[:, :-1] - piles[:, 1:])[mask[:, 1:]]
    assert len(gaps) and (gaps >= 2).all()
    module = algo.learner_group.local_learner.module["main"]
    with torch.no_grad():
        replayed = module.forward_train(sequences)[Columns.ACTION_DIST_INPUTS]
    # The runner's logits of masked actions are the dtype's minimum; compare the legal ones.
    legal = sequences[Columns.ACTION_MASK] > 0
    torch.testing.assert_close(replayed[legal], sequences[Columns.ACTION_DIST_INPUTS][legal], atol=1e-5, rtol=1e-5)
    algo.stop()


@pytest.mark.parametrize("obs_space, action_space, extra", [
    (gym.spaces.Box(0, 1, (3,)), gym.spaces.Discrete(3), {"vf_share_layers": True}),
    (gym.spaces.Box(0, 1, (4, 4, 2)), gym.spaces.Discrete(3), {"conv_filters": [[4, 3, 1]]}),
    (gym.spaces.Box(0, 1, (3,)), gym.spaces.Box(-1, 1, (2,)), {"free_log_std": True}),
])
def test_a_training_pass_over_a_sequence_equals_stepping_the_acting_pass(obs_space, action_space, extra):
    """What the learner computes over a sequence is what the runner computed step by step, for
    MLP and CNN trunks, a shared or separate value trunk, discrete or continuous actions."""
    torch.manual_seed(0)
    module = ActorCriticModule(obs_space, action_space, {**LSTM, **extra})
    obs = torch.rand(2, 5, *obs_space.shape)
    start = torch.rand(2, len(module.get_initial_state()))
    with torch.no_grad():
        trained = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: start})
        state, stepped = start, []
        for t in range(5):
            out = module.forward_inference({Columns.OBS: obs[:, t], Columns.STATE_IN: state})
            stepped.append(out[Columns.ACTION_DIST_INPUTS])
            state = out[Columns.STATE_OUT]
        values = module.compute_values(obs, start)
    torch.testing.assert_close(trained[Columns.ACTION_DIST_INPUTS], torch.stack(stepped, dim=1))
    torch.testing.assert_close(trained[Columns.STATE_OUT], state)
    torch.testing.assert_close(trained[Columns.VF_PREDS], values)
    assert values.shape == (2, 5)


def test_sequence_layout_cuts_segments_at_their_ends_and_every_max_seq_len_rows():
    ends = torch.tensor([0, 0, 0, 0, 0, 1, 0, 1, 0, 0], dtype=torch.bool)
    layout = SequenceLayout.from_segment_ends(ends, torch.zeros_like(ends), max_seq_len=2)
    assert layout.starts.tolist() == [0, 2, 4, 6, 8] and layout.lengths.tolist() == [2, 2, 2, 2, 2]
    layout = SequenceLayout.from_segment_ends(ends, torch.zeros_like(ends), max_seq_len=4)
    assert layout.starts.tolist() == [0, 4, 6, 8] and layout.lengths.tolist() == [4, 2, 2, 2]
    rows = torch.arange(10.0)
    padded = layout.pad(rows)
    assert padded.tolist() == [[0, 1, 2, 3], [4, 5, 0, 0], [6, 7, 0, 0], [8, 9, 0, 0]]
    assert layout.unpad(padded).tolist() == rows.tolist()
    assert layout.with_next(rows, rows + 100)[:, :].tolist() == [[0, 1, 2, 3, 103], [4, 5, 105, 0, 0],
                                                                 [6, 7, 107, 0, 0], [8, 9, 109, 0, 0]]


def _memory_task_config(algorithm: str) -> AlgorithmConfig:
    if algorithm == "ppo":
        return PPOConfig().training(train_batch_size=512, minibatch_size=128, num_epochs=6)
    # Asynchronous: fragments of 8 x 32 steps, a train batch each, 1024 env steps per train().
    return ({"appo": APPOConfig, "impala": IMPALAConfig}[algorithm]()
            .env_runners(rollout_fragment_length=32).training(train_batch_size=256)
            .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=1024))


@pytest.mark.parametrize("algorithm", ["ppo", "appo", "impala"])
def test_an_lstm_learns_a_memory_task_an_mlp_cannot(algorithm):
    """Recall pays only for naming a cue seen three steps earlier: the LSTM must reach a greedy
    mean return near 1 where the MLP, with the same settings and budget, stays near 0."""
    def train(model: dict, iterations: int) -> float:
        config = (_memory_task_config(algorithm).environment(Recall)
                  .env_runners(num_env_runners=0, num_envs_per_env_runner=8).training(lr=3e-3)
                  .rl_module(model_config={"fcnet_hiddens": [32], "vf_share_layers": False, **model})
                  .evaluation(evaluation_duration=50, evaluation_num_env_runners=0)
                  .debugging(seed=0))
        algo = config.build_algo()
        for _ in range(iterations):
            algo.train()
            score = algo.evaluate()["env_runners"]["episode_return_mean"]
            if score >= 0.9 and model:  # the MLP uses the whole budget
                break
        algo.stop()
        return score

    assert train({"use_lstm": True, "lstm_cell_size": 16, "max_seq_len": 8}, 12) >= 0.9
    assert train({}, 12) <= 0.5


def test_recurrent_module_restores_from_a_checkpoint_and_exports_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    algo = _ppo(Countdown).build_algo()
    algo.train()
    algo.save_to_path(tmp_path / "ckpt")
    restored = Algorithm.from_checkpoint(tmp_path / "ckpt")
    module, again = algo.get_module(), restored.get_module()
    assert again.is_stateful()
    obs = torch.rand(5, 2)
    torch.testing.assert_close(_replayed_states(again, obs), _replayed_states(module, obs))
    # ONNX: the state goes in and comes out; three steps match torch's.
    session = onnxruntime.InferenceSession(module_onnx_bytes(module), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [Columns.OBS, Columns.STATE_IN]
    state = module.get_initial_state()[None].repeat(2, 1)
    onnx_state = state.numpy()
    for _ in range(3):
        step = torch.rand(2, 2)
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: step, Columns.STATE_IN: state})
        logits, onnx_state = session.run(None, {Columns.OBS: step.numpy(), Columns.STATE_IN: onnx_state})
        np.testing.assert_allclose(logits, out[Columns.ACTION_DIST_INPUTS].numpy(), atol=1e-5)
        state = out[Columns.STATE_OUT]
        np.testing.assert_allclose(onnx_state, state.numpy(), atol=1e-5)
    algo.stop()
    restored.stop()


def test_a_stateful_module_without_state_in_names_what_it_needs():
    module = ActorCriticModule(gym.spaces.Box(0, 1, (2,)), gym.spaces.Discrete(2), LSTM)
    with pytest.raises(ValueError, match="use_lstm=True.*state_in"):
        module.forward_inference({Columns.OBS: torch.zeros(1, 2)})


@pytest.mark.parametrize("config_path", ["marl_arena.algorithms.dqn.DQNConfig", "marl_arena.algorithms.sac.SACConfig",
                                         "marl_arena.algorithms.cql.CQLConfig", "marl_arena.algorithms.bc.BCConfig",
                                         "marl_arena.algorithms.marwil.MARWILConfig"])
def test_algorithms_without_sequence_training_refuse_use_lstm(config_path):
    module_path, name = config_path.rsplit(".", 1)
    config_class = getattr(__import__(module_path, fromlist=[name]), name)
    config = config_class().environment("CartPole-v1").rl_module(model_config={"use_lstm": True})
    with pytest.raises(ValueError, match=f"use_lstm=True, which {name} does not support"):
        config.validate()


def test_use_lstm_in_one_policys_spec_is_refused_too():
    from marl_arena.algorithms.dqn import DQNConfig
    from marl_arena.core.rl_module import RLModuleSpec

    config = (DQNConfig().environment("ma_cartpole", env_config={"num_agents": 2})
              .multi_agent(policies={"a": RLModuleSpec(model_config={"use_lstm": True}), "b": None},
                           policy_mapping_fn=lambda aid, *a, **k: "a" if aid == 0 else "b"))
    with pytest.raises(ValueError, match="module 'a' has use_lstm=True"):
        config.validate()


@pytest.mark.parametrize("field, value", [("lstm_cell_size", 0), ("max_seq_len", 2.5), ("use_lstm", "yes")])
def test_bad_recurrent_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"DefaultModelConfig.{field}"):
        ActorCriticModule(gym.spaces.Box(0, 1, (2,)), gym.spaces.Discrete(2), {**LSTM, field: value})


def test_a_league_of_lstm_players_plays_its_snapshots(tmp_path):
    """Frozen snapshots of an LSTM player are LSTM opponents inside the runners, each seat with its
    own state; the league plays and records their matches."""
    from marl_arena.league.league_config import LeagueConfig

    trainer = (PPOConfig().training(train_batch_size_per_learner=200, minibatch_size=40, num_epochs=1)
               .env_runners(num_envs_per_env_runner=4).rl_module(model_config=LSTM))
    league = (LeagueConfig().environment("games:take_away", env_config={"pile": 10}).trainer(trainer)
              .roster(main_agents=1).matchmaking("pfsp").snapshots(win_rate=None).store(str(tmp_path)).build())
    try:
        league.run(1)
        league.freeze("main_0", steps=0)
        league.run(3)
        board = {row["player"]: row for row in league.leaderboard()}
        runner = league.trainers["main_0"].env_runner_group.local_runner
        opponents = runner.built_added_modules()
    finally:
        league.stop()
    assert board["main_0_v1"]["games"] > 0
    assert opponents and all(runner.module[mid].is_stateful() for mid in opponents)


@pytest.mark.ray
def test_ray_runner_and_two_learners_learn_the_memory_task(ray_session):
    """A remote runner keeps the states in its actor; two data-parallel learners each cut their
    shard of rows (which may split a trajectory) into sequences from the recorded states."""
    import sys

    from ray import cloudpickle

    here = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(here)  # Recall travels to the actors by value, as a user script's would
    try:
        algo = (_memory_task_config("ppo").environment(Recall)
                .env_runners(num_env_runners=1, num_envs_per_env_runner=8).learners(num_learners=2)
                .training(lr=3e-3)
                .rl_module(model_config={"fcnet_hiddens": [32], "vf_share_layers": False, "use_lstm": True,
                                         "lstm_cell_size": 16, "max_seq_len": 8})
                .evaluation(evaluation_duration=50, evaluation_num_env_runners=0)
                .debugging(seed=0)).build_algo()
        try:
            assert algo.learner_group.local_learner is None
            for _ in range(12):
                algo.train()
                score = algo.evaluate()["env_runners"]["episode_return_mean"]
                if score >= 0.9:
                    break
        finally:
            algo.stop()
    finally:
        cloudpickle.unregister_pickle_by_value(here)
    assert score >= 0.9
