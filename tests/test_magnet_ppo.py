"""MagnetPPOLearner (MMD): the magnet term, its schedule of moves, checkpoints and bad settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marl_arena.algorithms import PPOConfig
from marl_arena.algorithms.ppo.magnet import MAGNET_DIST_INPUTS, MagnetPPOLearner
from marl_arena.algorithms.ppo.ppo_learner import PPOLearner
from marl_arena.core.columns import Columns


def _config(**learner_config) -> PPOConfig:
    return (PPOConfig().environment("CartPole-v1")
            .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=64)
            .training(train_batch_size_per_learner=128, minibatch_size=64, num_epochs=1, entropy_coeff=0.0,
                      learner_class=MagnetPPOLearner, learner_config_dict=learner_config)
            .rl_module(model_config={"fcnet_hiddens": [16]})
            .debugging(seed=0))


def _learner(algo) -> MagnetPPOLearner:
    return algo.learner_group.local_learner


def _params(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_the_magnet_moves_to_the_policy_every_interval_updates_and_not_between():
    algo = _config(magnet_coeff=0.5, magnet_update_interval=2).build_algo()
    try:
        learner = _learner(algo)
        start = _params(learner.magnets["default_policy"])
        result = algo.train()
        assert result["learners"]["default_policy"]["magnet_updated"] == 0.0
        assert all(torch.equal(a, b) for a, b in zip(start, _params(learner.magnets["default_policy"])))
        assert result["learners"]["default_policy"]["magnet_kl"] > 0.0  # the policy moved away from it
        algo.train()
        magnet, module = learner.magnets["default_policy"], learner.module["default_policy"]
        assert all(torch.equal(a, b) for a, b in zip(_params(magnet), _params(module)))
    finally:
        algo.stop()


def test_the_loss_is_ppos_plus_magnet_coeff_times_the_kl_from_the_policy_to_the_magnet():
    algo = _config(magnet_coeff=0.25).build_algo()
    try:
        learner = _learner(algo)
        module = learner.module["default_policy"]
        rng = np.random.default_rng(0)
        obs = torch.as_tensor(rng.normal(size=(8, 4)), dtype=torch.float32)
        with torch.no_grad():
            old = module.forward_train({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        actions = torch.as_tensor(rng.integers(2, size=8))
        batch = {Columns.OBS: obs, Columns.ACTIONS: actions, Columns.ACTION_DIST_INPUTS: old,
                 Columns.ACTION_LOGP: torch.log_softmax(old, -1).gather(1, actions[:, None])[:, 0],
                 Columns.ADVANTAGES: torch.as_tensor(rng.normal(size=8), dtype=torch.float32),
                 Columns.VALUE_TARGETS: torch.as_tensor(rng.normal(size=8), dtype=torch.float32),
                 MAGNET_DIST_INPUTS: torch.zeros(8, 2)}  # a uniform magnet
        fwd = module.forward_train(batch)
        total, stats = learner.compute_loss_for_module("default_policy", module, batch, fwd)
        ppo_total, _ = PPOLearner.compute_loss_for_module(learner, "default_policy", module, batch, fwd)
        logp = torch.log_softmax(fwd[Columns.ACTION_DIST_INPUTS], -1)
        kl = (logp.exp() * (logp - np.log(0.5))).sum(-1).mean()
        assert torch.allclose(stats["magnet_kl"], kl.detach(), atol=1e-6)
        assert torch.allclose(total, ppo_total + 0.25 * kl, atol=1e-6)
    finally:
        algo.stop()


def test_the_magnet_is_saved_and_restored_with_the_algorithm(tmp_path):
    algo = _config(magnet_update_interval=1).build_algo()
    try:
        algo.train()
        saved = _params(_learner(algo).magnets["default_policy"])
        path = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = _config(magnet_update_interval=1).build_algo()
    try:
        restored.restore_from_path(path)
        learner = _learner(restored)
        assert all(torch.equal(a, b) for a, b in zip(saved, _params(learner.magnets["default_policy"])))
        assert learner.magnets.updates["default_policy"] == 1
    finally:
        restored.stop()


@pytest.mark.parametrize("settings, named", [({"magnet_coeff": -0.1}, "magnet_coeff"),
                                             ({"magnet_update_interval": 0}, "magnet_update_interval"),
                                             ({"magnet_update_interval": 2.5}, "magnet_update_interval"),
                                             ({"magnet_tau": 0.0}, "magnet_tau")])
def test_bad_settings_are_refused_by_name(settings, named):
    with pytest.raises(ValueError, match=named):
        _config(**settings).build_algo()


def test_recurrent_modules_are_refused():
    config = _config()
    config.rl_module(model_config={"fcnet_hiddens": [16], "use_lstm": True, "lstm_cell_size": 8})
    with pytest.raises(ValueError, match="recurrent"):
        config.build_algo()
