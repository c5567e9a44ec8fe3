"""DreamerV3: replay rows, recurrent acting, a learning check, checkpoints and bad config values."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.dreamerv3 import DreamerV3, DreamerV3Config
from marl_arena.algorithms.dreamerv3.dreamerv3_module import DreamerV3Module
from marl_arena.algorithms.dreamerv3.sequence_replay import SequenceReplay, episode_rows
from marl_arena.algorithms.registry import config_for
from marl_arena.core.columns import Columns


class MatchCue(gym.Env):
    """Four steps; each shows a cue out of two and pays 1 for the action that matches it.

    A random policy scores 2 on average, the optimal one 4: the world model must learn that
    the reward follows the (cue, action) pair, and the actor must learn to follow the cue.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        super().__init__()

    def _observe(self):
        self._cue = int(self.np_random.integers(2))
        return np.eye(2, dtype=np.float32)[self._cue]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(int(action) == self._cue)
        self._t += 1
        return self._observe(), reward, self._t >= 4, False, {}


def tiny(**training) -> DreamerV3Config:
    settings = dict(model_size="nano", batch_size_B=8, batch_length_T=8, training_ratio=64,
                    imagination_starts=None, num_steps_sampled_before_learning_starts=64,
                    world_model_lr=1e-3, actor_lr=3e-4, critic_lr=3e-4)
    settings.update(training)
    return (DreamerV3Config().environment(MatchCue).training(**settings)
            .reporting(min_sample_timesteps_per_iteration=64).debugging(seed=0))


# ---------------------------------------------------------------------- replay rows
def test_episode_rows_put_the_arrival_reward_on_the_next_observation():
    batch = {  # one terminated episode of 2 transitions, then one truncated of 1
        Columns.OBS: np.array([[0.0], [1.0], [5.0]], np.float32),
        Columns.NEXT_OBS: np.array([[1.0], [2.0], [6.0]], np.float32),
        Columns.ACTIONS: np.array([1, 0, 1]),
        Columns.REWARDS: np.array([0.5, 2.0, 3.0], np.float32),
        Columns.TERMINATEDS: np.array([False, True, False]),
        Columns.TRUNCATEDS: np.array([False, False, True]),
    }
    rows = episode_rows(batch)
    assert rows[Columns.OBS][:, 0].tolist() == [0.0, 1.0, 2.0, 5.0, 6.0]
    assert rows[Columns.ACTIONS].tolist() == [1, 0, 0, 1, 0]
    assert rows[Columns.REWARDS].tolist() == [0.0, 0.5, 2.0, 0.0, 3.0]
    assert rows[Columns.IS_FIRST].tolist() == [True, False, False, True, False]
    assert rows[Columns.IS_TERMINAL].tolist() == [False, False, True, False, False]  # truncated: not terminal
    with pytest.raises(ValueError, match="does not end an episode"):
        episode_rows({**batch, Columns.TRUNCATEDS: np.zeros(3, bool)})


def test_sequence_replay_windows_are_consecutive_and_start_first():
    replay = SequenceReplay(capacity=10)
    for start in range(0, 14, 7):  # 14 rows into 10 slots: rows 4..13 remain
        replay.add({Columns.OBS: np.arange(start, start + 7, dtype=np.float32)[:, None],
                    Columns.ACTIONS: np.arange(start, start + 7), Columns.REWARDS: np.zeros(7, np.float32),
                    Columns.IS_FIRST: np.zeros(7, bool), Columns.IS_TERMINAL: np.zeros(7, bool)})
    assert len(replay) == 10
    sample = replay.sample(32, 4, np.random.default_rng(0))
    obs = sample[Columns.OBS][..., 0]
    assert np.all(np.diff(obs, axis=1) == 1) and obs.min() >= 4 and obs.max() <= 13
    assert sample[Columns.IS_FIRST][:, 0].all() and not sample[Columns.IS_FIRST][:, 1:].any()
    assert np.array_equal(sample[Columns.PREV_ACTIONS][:, 1:], sample[Columns.ACTIONS][:, :-1])
    big = SequenceReplay(capacity=1_000_000)  # rows are allocated as the buffer fills, not up front
    big.add({key: value[:7] for key, value in sample.items() if key != Columns.PREV_ACTIONS})
    assert len(big) == 7 and big.get_state()["columns"][Columns.OBS].shape[0] < 10_000


# ---------------------------------------------------------------------- acting
def test_module_state_carries_the_chosen_action_and_masks_hold():
    space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    module = DreamerV3Module(space, gym.spaces.Discrete(3), {"model_size": "nano"})
    state = module.get_initial_state().expand(64, -1)
    mask = torch.tensor([[0.0, 1.0, 0.0]]).expand(64, -1)
    out = module.forward_exploration({Columns.OBS: torch.rand(64, 3), Columns.ACTION_MASK: mask, Columns.STATE_IN: state})
    action = module.action_distribution(out[Columns.ACTION_DIST_INPUTS]).sample()
    assert torch.all(action == 1)  # the only legal action, and the runner's draw is the module's
    wm = module.world_model
    prev = out[Columns.STATE_OUT][:, wm.size.deter + wm.stoch_dim:-1]
    assert torch.all(prev.argmax(-1) == 1) and torch.all(out[Columns.STATE_OUT][:, -1] == 1.0)


# ---------------------------------------------------------------------- learning
def test_dreamerv3_learns_to_follow_the_cue():
    algo = tiny().build_algo()
    try:
        score = -np.inf
        for _ in range(40):
            result = algo.train()
            if result["num_env_steps_sampled_lifetime"] >= 600:
                score = algo.evaluate()["env_runners"]["episode_return_mean"]
                if score >= 3.8:
                    break
        assert score >= 3.8, f"greedy return {score} after {result['num_env_steps_sampled_lifetime']} env steps (random: 2, best: 4)"
        learner = result["learners"]["default_policy"]
        for key in ("world_model_loss", "decoder_loss", "reward_loss", "continue_loss", "kl_dynamics",
                    "kl_representation", "actor_loss", "critic_loss", "actor_entropy", "return_scale"):
            assert np.isfinite(learner[key]), key
    finally:
        algo.stop()


# ---------------------------------------------------------------------- checkpoints and config
def test_checkpoint_round_trip_keeps_weights_slow_critic_and_counters(tmp_path):
    algo = tiny(store_buffer_in_checkpoints=True).build_algo()
    try:
        algo.train()
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        restored = Algorithm.from_checkpoint(path)
        try:
            assert isinstance(restored, DreamerV3)
            before, after = algo.get_module().state_dict(), restored.get_module().state_dict()
            assert before.keys() == after.keys()
            assert all(torch.equal(before[k], after[k]) for k in before)
            assert restored.num_updates_lifetime == algo.num_updates_lifetime > 0
            assert len(restored.replay["default_policy"]) == len(algo.replay["default_policy"])
            assert restored.train()["num_env_steps_sampled_lifetime"] > algo._counters["num_env_steps_sampled_lifetime"]
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_registry_and_bad_values():
    assert isinstance(config_for("DreamerV3"), DreamerV3Config)
    with pytest.raises(ValueError, match="model_size='XXL' is not allowed"):
        tiny(model_size="XXL").build_algo()
    with pytest.raises(ValueError, match="training_ratio=0 is not allowed"):
        tiny(training_ratio=0).build_algo()
    with pytest.raises(ValueError, match="replay_buffer_capacity=4 is not allowed"):
        tiny(replay_buffer_capacity=4).build_algo()
    with pytest.raises(ValueError, match="bounded Box"):
        DreamerV3Module(gym.spaces.Box(0.0, 1.0, (2,)), gym.spaces.Box(-np.inf, np.inf, (1,)))


def _one_update(observation_space, action_space, obs, actions):
    from marl_arena.algorithms.dreamerv3.dreamerv3_learner import DreamerV3Learner
    from marl_arena.core.rl_module import MultiRLModuleSpec, RLModuleSpec

    config = tiny()
    spec = RLModuleSpec(DreamerV3Module, observation_space, action_space, config.model_config_for("default_policy"))
    learner = DreamerV3Learner(config, MultiRLModuleSpec({"default_policy": spec}))
    batch_size, length = obs.shape[:2]
    batch = {Columns.OBS: obs, Columns.ACTIONS: actions, Columns.PREV_ACTIONS: np.roll(actions, 1, axis=1),
             Columns.REWARDS: np.ones((batch_size, length), np.float32),
             Columns.IS_FIRST: np.eye(1, length, dtype=bool).repeat(batch_size, 0),
             Columns.IS_TERMINAL: np.zeros((batch_size, length), bool)}
    module = learner.module["default_policy"]
    before = [p.detach().clone() for p in module.parameters()]
    metrics = learner.update({"default_policy": batch})["default_policy"]
    changed = {name: any(not torch.equal(b, p) for b, p in zip(before, module.parameters()) if b.shape == p.shape)
               for name in ("all",)}
    return module, metrics, changed


def test_images_go_through_the_cnn_and_back():
    space = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    obs = np.random.default_rng(0).integers(0, 256, (2, 8, 16, 16, 3)).astype(np.uint8)
    module, metrics, changed = _one_update(space, gym.spaces.Discrete(3), obs, np.zeros((2, 8), np.int64))
    wm = module.world_model
    assert wm.image and any(isinstance(m, torch.nn.Conv2d) for m in wm.encoder.modules())
    features = torch.zeros(5, wm.feature_dim)
    assert wm.decoder(features).shape == (5, 16, 16, 3)  # the decoder paints the whole image back
    assert np.isfinite(metrics["decoder_loss"]) and changed["all"]


def test_continuous_actions_act_in_bounds_and_learn():
    space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    actions_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    module, metrics, _ = _one_update(space, actions_space, np.zeros((2, 8, 3), np.float32),
                                     np.full((2, 8, 1), 1.5, np.float32))
    out = module.forward_exploration({Columns.OBS: torch.rand(16, 3), Columns.STATE_IN: module.get_initial_state().expand(16, -1)})
    dist = module.action_distribution(out[Columns.ACTION_DIST_INPUTS])
    drawn = dist.sample()
    assert torch.all(drawn.abs() <= 2.0)
    # The state's previous action is what the runner's draw returns (a point mass), scaled to [-1, 1].
    wm = module.world_model
    carried = out[Columns.STATE_OUT][:, wm.size.deter + wm.stoch_dim:-1]
    assert torch.allclose(carried * 2.0, drawn, atol=1e-3)
    assert np.isfinite(metrics["actor_loss"]) and np.isfinite(metrics["actor_entropy"])
