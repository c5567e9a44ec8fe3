"""Default encoders: conv_filters configs, the CNN encoder, spatial observations end to end.

A CNN module must read board planes in their shape (pipeline, OpenSpiel and PettingZoo
plugins), read the same rows flattened (offline files, external clients, ONNX), survive a
checkpoint and the OpenSpiel policy bridge, and learn.
"""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms import Algorithm
from marl_arena.algorithms.ppo import PPOConfig
from marl_arena.core import ActorCriticModule, DuelingQModule, QModule, SACModule
from marl_arena.core.columns import Columns
from marl_arena.core.encoders import CNNEncoder, MLPEncoder, build_encoder
from marl_arena.core.models import DefaultModelConfig
from marl_arena.core.onnx_export import export_module_onnx
from marl_arena.env.registry import make_env
from marl_arena.runners.observation_pipeline import ObservationPipeline
from marl_arena_envs.openspiel import ModulePolicy
from marl_arena_envs.openspiel.evaluation import play_against_random

BOARD = gym.spaces.Box(0.0, 1.0, (6, 7, 2), np.float32)
SMALL_CNN = {"conv_filters": [[8, 3, 1], [8, [2, 3], [2, 2]]], "fcnet_hiddens": [32]}


def _batch(n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 7, generator=gen) > 0.4).float()
    mask[:, 0] = 1.0
    return {Columns.OBS: torch.rand(n, *BOARD.shape, generator=gen), Columns.ACTION_MASK: mask}


# ---------------------------------------------------------------------- config and encoder choice
@pytest.mark.parametrize("config, named", [
    ({"conv_filters": [[16, 3]]}, "conv_filters[0]"),
    ({"conv_filters": [[16, 3, 1], [0, 3, 1]]}, "conv_filters[1]"),
    ({"conv_filters": [[16, [3, 3, 3], 1]]}, "kernel"),
    ({"conv_filters": [[16, 3, 1, "full"]]}, "padding"),
    ({"conv_filters": []}, "conv_filters=[]"),
    ({"conv_filters": 32}, "conv_filters=32"),
    ({"conv_activation": "sigmoid"}, "conv_activation"),
    ({"conv_data_format": "NHWC"}, "conv_data_format"),
])
def test_bad_conv_configs_name_the_field(config, named):
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        DefaultModelConfig(**config)


def test_a_kernel_larger_than_its_input_names_the_layer_and_the_shapes():
    cfg = DefaultModelConfig(conv_filters=[[8, 3, 1, "valid"], [8, 5, 1, "valid"]])
    with pytest.raises(ValueError) as error:
        ActorCriticModule(BOARD, gym.spaces.Discrete(7), cfg)
    message = str(error.value)
    assert "conv_filters[1]" in message and "5x5" in message and "4x5" in message and "(6, 7, 2)" in message


def test_the_encoder_follows_the_observation_rank():
    cnn = DefaultModelConfig(**SMALL_CNN)
    assert isinstance(build_encoder(BOARD, cnn), CNNEncoder)
    assert isinstance(build_encoder(BOARD, DefaultModelConfig()), MLPEncoder)  # no conv_filters: MLP
    flat = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    assert isinstance(build_encoder(flat, cnn), MLPEncoder)  # conv_filters ignored for flat observations


def test_mlp_modules_keep_their_parameter_names():
    """Checkpoints written before the CNN encoder existed must still load."""
    module = ActorCriticModule(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2),
                               {"fcnet_hiddens": [8, 8]})
    assert {"encoder.0.weight", "encoder.2.weight", "vf_encoder.0.weight", "pi.0.weight"} <= set(module.state_dict())


# ---------------------------------------------------------------------- forward passes
@pytest.mark.parametrize("module_class, output, shape", [
    (ActorCriticModule, Columns.VF_PREDS, (5,)), (QModule, Columns.QF_PREDS, (5, 7)),
    (DuelingQModule, Columns.QF_PREDS, (5, 7)), (SACModule, Columns.QF_PREDS, (5, 7)),
])
def test_cnn_modules_forward_shapes_and_masking(module_class, output, shape):
    torch.manual_seed(0)
    module = module_class(BOARD, gym.spaces.Discrete(7), SMALL_CNN)
    assert any(isinstance(m, torch.nn.Conv2d) for m in module.modules())
    batch = _batch()
    train = module.forward_train(batch)
    assert train[output].shape == shape
    logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (5, 7)
    legal = batch[Columns.ACTION_MASK] > 0
    assert torch.all(logits[~legal] == torch.finfo(logits.dtype).min)
    samples = module.action_distribution(module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS])
    for _ in range(20):
        chosen = samples.sample()
        assert torch.all(legal[torch.arange(5), chosen])
    flat = {**batch, Columns.OBS: batch[Columns.OBS].reshape(5, -1)}  # offline rows, external clients, ONNX
    torch.testing.assert_close(module.forward_inference(flat)[Columns.ACTION_DIST_INPUTS], logits)


def test_actor_critic_value_shape_and_shared_trunk():
    module = ActorCriticModule(BOARD, gym.spaces.Discrete(7), {**SMALL_CNN, "vf_share_layers": True})
    out = module.forward_train(_batch())
    assert out[Columns.VF_PREDS].shape == (5,) and module.vf_encoder is None


def test_channels_first_reads_the_same_planes_transposed():
    torch.manual_seed(1)
    last = ActorCriticModule(BOARD, gym.spaces.Discrete(7), SMALL_CNN)
    first = ActorCriticModule(gym.spaces.Box(0.0, 1.0, (2, 6, 7), np.float32), gym.spaces.Discrete(7),
                              {**SMALL_CNN, "conv_data_format": "channels_first"})
    first.load_state_dict(last.state_dict())
    batch = _batch()
    chw = {**batch, Columns.OBS: batch[Columns.OBS].permute(0, 3, 1, 2)}
    torch.testing.assert_close(first.forward_train(chw)[Columns.VF_PREDS], last.forward_train(batch)[Columns.VF_PREDS])


def test_same_padding_keeps_the_board_size_and_strides_round_up():
    encoder = build_encoder(BOARD, DefaultModelConfig(conv_filters=[[4, 4, 1], [4, 3, 2]], fcnet_hiddens=[]))
    assert encoder(torch.zeros(2, *BOARD.shape)).shape == (2, 4 * 3 * 4) == (2, encoder.output_dim)


# ---------------------------------------------------------------------- spatial observations reach the module
@pytest.mark.parametrize("env_id, shape", [
    ("pettingzoo:connect_four_v3", (6, 7, 2)),
    ("open_spiel:connect_four", (6, 7, 3)),
    ("open_spiel:tic_tac_toe", (3, 3, 3)),
])
def test_board_planes_reach_the_module_in_their_shape(env_id, shape):
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    (agent, observation), = obs.items()
    pipeline = ObservationPipeline(env.get_observation_space(agent), None)
    rows, masks = pipeline.process([observation])
    assert pipeline.observation_space.shape == shape and rows.shape == (1, *shape) and rows.dtype == np.float32
    assert masks.shape == (1, env.get_action_space(agent).n)
    np.testing.assert_array_equal(rows[0], np.asarray(observation["observation"], np.float32))


def test_open_spiel_planes_are_the_game_tensor_channels_last():
    env = make_env("open_spiel:connect_four")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step({0: 3})
    planes = np.asarray(env.state.observation_tensor(1), np.float32).reshape(3, 6, 7)
    np.testing.assert_array_equal(obs[1]["observation"], planes.transpose(1, 2, 0))


def test_other_observations_are_still_flattened():
    pipeline = ObservationPipeline(gym.spaces.Box(0, 1, (3, 4), np.float32), None)
    rows, _ = pipeline.process([np.ones((3, 4))])
    assert rows.shape == (1, 12) and pipeline.observation_space.shape == (12,)
    env = make_env("open_spiel:kuhn_poker")
    assert env.get_observation_space(0)["observation"].shape == (11,)


# ---------------------------------------------------------------------- checkpoint, policy bridge, ONNX
def _tic_tac_toe_cnn_ppo(seed: int = 0, **training) -> PPOConfig:
    return (
        PPOConfig()
        .environment("open_spiel:tic_tac_toe", env_config={"opponents": {1: "random"}})
        .env_runners(num_envs_per_env_runner=8)
        .training(train_batch_size_per_learner=512, minibatch_size=128, num_epochs=4, lr=1e-3, **training)
        .rl_module(model_config={"conv_filters": [[16, 3, 1]], "fcnet_hiddens": [64]})
        .debugging(seed=seed)
    )


@pytest.fixture(scope="module")
def cnn_algo():
    algo = _tic_tac_toe_cnn_ppo().build_algo()
    algo.train()
    yield algo
    algo.stop()


def test_cnn_module_round_trips_through_a_checkpoint(cnn_algo, tmp_path):
    module = cnn_algo.get_module()
    assert isinstance(module.encoder, CNNEncoder) and module.observation_space.shape == (3, 3, 3)
    path = cnn_algo.save_to_path(str(tmp_path / "checkpoint"))
    restored = Algorithm.from_checkpoint(path)
    try:
        again = restored.get_module()
        assert isinstance(again.encoder, CNNEncoder)
        for key, value in module.state_dict().items():
            torch.testing.assert_close(again.state_dict()[key], value)
        batch = {Columns.OBS: torch.rand(4, 3, 3, 3), Columns.ACTION_MASK: torch.ones(4, 9)}
        torch.testing.assert_close(again.forward_train(batch)[Columns.VF_PREDS],
                                   module.forward_train(batch)[Columns.VF_PREDS])
        assert restored.train()["env_runners"]["num_episodes"] > 0  # it trains on from there
    finally:
        restored.stop()


def test_cnn_module_plays_through_the_open_spiel_policy_bridge(cnn_algo):
    import pyspiel

    policy = ModulePolicy.from_algorithm(cnn_algo)
    module = cnn_algo.get_module()
    state = pyspiel.load_game("tic_tac_toe").new_initial_state()
    for move in (4, 0):
        state.apply_action(move)
    probs = policy.action_probabilities(state, 0)
    assert sorted(probs) == sorted(state.legal_actions()) and sum(probs.values()) == pytest.approx(1.0)
    planes = policy.encoder.vector(state, 0)
    assert planes.shape == (3, 3, 3)
    with torch.inference_mode():
        logits = module.forward_inference({Columns.OBS: torch.as_tensor(planes[None]),
                                           Columns.ACTION_MASK: torch.as_tensor(policy.encoder.mask(state, 0)[None])})
    expected = torch.softmax(logits[Columns.ACTION_DIST_INPUTS][0].double(), -1).numpy()
    np.testing.assert_allclose([probs[a] for a in sorted(probs)], expected[sorted(probs)], atol=1e-6)
    result = play_against_random(policy, "tic_tac_toe", seat=0, games=4)
    assert result["win"] + result["draw"] + result["loss"] == pytest.approx(1.0)
    flat_module = ActorCriticModule(gym.spaces.Box(-1, 1, (27,), np.float32), gym.spaces.Discrete(9))
    with pytest.raises(ValueError, match=r"\(3, 3, 3\)"):
        ModulePolicy("tic_tac_toe", flat_module)


@pytest.mark.parametrize("env_id", ["open_spiel:connect_four", "pettingzoo:connect_four_v3"])
def test_the_dashboard_play_page_moves_with_a_cnn_module(env_id):
    """The Play page feeds the board as the env would; a CNN module plays a legal move from it."""
    from marl_arena_dashboard import boards, play

    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    (agent, observation), = obs.items()
    space = ObservationPipeline(env.get_observation_space(agent), None).observation_space
    module = ActorCriticModule(space, env.get_action_space(agent), SMALL_CNN)
    board = boards.board_game(env_id)
    state = board.states([3, 3, 4])[-1]
    assert board.observe(state, state.current_player()).shape == space.shape
    assert play.module_move(module, board, state) in state.legal_actions()


def test_onnx_export_of_a_cnn_module_matches_torch():
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    module = ActorCriticModule(BOARD, gym.spaces.Discrete(7), SMALL_CNN, inference_only=True)
    buffer = io.BytesIO()
    export_module_onnx(module, buffer, with_mask=True)
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    batch = _batch(n=6, seed=3)
    outputs, = session.run(None, {"obs": batch[Columns.OBS].reshape(6, -1).numpy(),
                                  Columns.ACTION_MASK: batch[Columns.ACTION_MASK].numpy()})
    with torch.inference_mode():
        expected = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS].numpy()
    legal = batch[Columns.ACTION_MASK].numpy() > 0
    np.testing.assert_allclose(outputs[legal], expected[legal], atol=1e-5, rtol=0)
    assert np.all(outputs[~legal] <= np.finfo(np.float32).min / 2)


def test_dqn_replays_board_planes_through_a_cnn():
    """The replay buffer keeps (n, 3, 3, 3) rows; n-step returns and targets read them through the CNN."""
    from marl_arena.algorithms import DQNConfig

    algo = (DQNConfig().environment("open_spiel:tic_tac_toe", env_config={"opponents": {1: "random"}})
            .training(num_steps_sampled_before_learning_starts=64, n_step=3, replay_buffer_config={"capacity": 1000})
            .reporting(min_sample_timesteps_per_iteration=200)
            .rl_module(model_config={"conv_filters": [[8, 3, 1]], "fcnet_hiddens": [32]})
            .debugging(seed=0).build_algo())
    try:
        before = {k: v.clone() for k, v in algo.get_module().encoder.conv.state_dict().items()}
        for _ in range(2):
            result = algo.train()
        assert result["learners"]["default_policy"]["num_module_steps_trained"] > 0
        after = algo.get_module().encoder.conv.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
    finally:
        algo.stop()


# ---------------------------------------------------------------------- learning
def test_ppo_with_a_cnn_learns_to_beat_random_at_tic_tac_toe():
    """Random play wins about 58% as the first player; ten iterations of a CNN take it well past 80%."""
    algo = _tic_tac_toe_cnn_ppo(seed=1).build_algo()
    try:
        before = play_against_random(ModulePolicy.from_algorithm(algo), "tic_tac_toe", seat=0, games=100, seed=1000)
        for _ in range(10):
            algo.train()
        after = play_against_random(ModulePolicy.from_algorithm(algo), "tic_tac_toe", seat=0, games=100, seed=1000)
    finally:
        algo.stop()
    assert after["win"] >= 0.8 and after["win"] >= before["win"] + 0.15, (before, after)


def test_weights_round_trip_through_arrays_for_the_object_store():
    from marl_arena.core.rl_module import weights_as_arrays, weights_as_tensors

    trained = {"a": {"w": torch.randn(3, 2, requires_grad=True), "steps": torch.tensor(7)}}
    arrays = weights_as_arrays(trained)
    assert all(isinstance(v, np.ndarray) for v in arrays["a"].values())
    arrays["a"]["w"].setflags(write=False)  # as Ray hands them back: read-only views of the store
    back = weights_as_tensors(arrays["a"])
    assert all(torch.equal(back[k], v.detach()) for k, v in trained["a"].items())
    back["w"].add_(1.0)  # a copy: loading never writes into the store's memory
    assert torch.equal(torch.from_numpy(arrays["a"]["w"].copy()), trained["a"]["w"].detach())
