"""A custom learner class (``config.training(learner_class=...)``): the example's extra loss term
reaches the metrics and the gradient, in the driver and in a Ray learner actor; a class that is
not the algorithm's learner is refused by name."""

from __future__ import annotations

import runpy
import sys

import pytest
import torch

from conftest import EXAMPLES, import_example, tiny_ppo
from marl_arena.algorithms.dqn.dqn_learner import DQNLearner
from marl_arena.algorithms.ppo.ppo_learner import PPOLearner
from marl_arena.core.columns import Columns

MID = "default_policy"


@pytest.fixture(scope="module")
def example():
    return import_example("custom_loss_learner")


def _config(example, coeff: float, **learners):
    return (tiny_ppo(batch=128, learner_class=example.LogitL2PPOLearner,
                     learner_config_dict={"logits_l2_coeff": coeff})
            .learners(**learners))


def test_the_learner_class_is_used_and_its_term_is_in_the_metrics(example):
    algo = _config(example, 0.5).build_algo()
    try:
        assert type(algo.learner_group.local_learner) is example.LogitL2PPOLearner
        metrics = algo.train()["learners"][MID]
    finally:
        algo.stop()
    assert metrics["logits_l2"] > 0
    # PPO's own diagnostics are still there: the term is added, not substituted.
    assert {"policy_loss", "vf_loss", "mean_kl_loss"} <= set(metrics)


def _loss_gradients(learner, batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    module = learner.module[MID]
    loss, stats = learner.compute_loss_for_module(MID, module, batch, module.forward_train(batch))
    grads = torch.autograd.grad(loss, list(module.parameters()), allow_unused=True)
    named = {name: (torch.zeros_like(p) if g is None else g) for (name, p), g in zip(module.named_parameters(), grads)}
    return named, stats


def test_the_extra_term_adds_exactly_its_own_gradient(example):
    """Same weights, same batch: the gradient with the term minus PPO's alone is the gradient of
    ``coeff * mean(logits ** 2)``, computed independently here."""
    coeff = 0.7
    algo = _config(example, coeff).build_algo()
    try:
        batches, _ = algo.sample_batches(128)
        learner = algo.learner_group.local_learner
        batch = learner.prepare_batch(MID, {k: torch.as_tensor(v) for k, v in batches[MID].items()})
        with_term, stats = _loss_gradients(learner, batch)
        learner.logits_l2_coeff = 0.0
        without, _ = _loss_gradients(learner, batch)
        module = learner.module[MID]
        logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
        expected = torch.autograd.grad(coeff * (logits ** 2).mean(), list(module.parameters()), allow_unused=True)
    finally:
        algo.stop()
    assert float(stats["logits_l2"]) > 0
    changed = 0
    for (name, param), grad in zip(module.named_parameters(), expected):
        grad = torch.zeros_like(param) if grad is None else grad
        torch.testing.assert_close(with_term[name] - without[name], grad, atol=1e-6, rtol=1e-4)
        changed += int(grad.abs().sum() > 0)
    assert changed > 0  # the term reaches the policy's parameters


def test_illegal_actions_are_left_out_of_the_penalty(example):
    algo = _config(example, 1.0).build_algo()
    try:
        ppo = algo.learner_group.local_learner
        logits = torch.tensor([[1.0, torch.finfo(torch.float32).min], [2.0, 3.0]])
        module = ppo.module[MID]
        fwd = {Columns.ACTION_DIST_INPUTS: logits, Columns.VF_PREDS: torch.zeros(2)}
        batch = {Columns.ACTIONS: torch.tensor([0, 1]), Columns.ACTION_LOGP: torch.zeros(2),
                 Columns.ACTION_DIST_INPUTS: logits.clone(), Columns.ADVANTAGES: torch.zeros(2),
                 Columns.VALUE_TARGETS: torch.zeros(2), Columns.ACTION_MASK: torch.tensor([[1.0, 0.0], [1.0, 1.0]])}
        _, stats = ppo.compute_loss_for_module(MID, module, batch, fwd)
    finally:
        algo.stop()
    assert float(stats["logits_l2"]) == pytest.approx((1.0 + 4.0 + 9.0) / 3)


@pytest.mark.parametrize("learner_class, message", [
    (DQNLearner, "subclass of marl_arena.algorithms.ppo.ppo_learner.PPOLearner"),
    ("PPOLearner", "learner_class='PPOLearner' is not allowed"),
])
def test_a_learner_class_that_is_not_the_algorithms_learner_is_refused(learner_class, message):
    with pytest.raises(ValueError, match=message):
        tiny_ppo(learner_class=learner_class).build_algo()


def test_learner_config_dict_must_be_a_dict():
    with pytest.raises(ValueError, match="learner_config_dict=.*must be a dict"):
        tiny_ppo(learner_config_dict=[("logits_l2_coeff", 1.0)]).build_algo()


def test_the_algorithms_own_learner_is_the_default():
    algo = tiny_ppo().build_algo()
    try:
        assert type(algo.learner_group.local_learner) is PPOLearner
    finally:
        algo.stop()


def test_the_example_runs_as_a_script(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["custom_loss_learner.py", "--smoke"])
    runpy.run_path(str(EXAMPLES / "custom_loss_learner.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "logits_l2_coeff=0.1: mean squared logit" in out


@pytest.mark.ray
def test_the_learner_class_runs_in_a_ray_learner_actor(example, ray_session):
    """One remote learner: the class travels to the actor and its term is in the metrics.

    The example's module is importable only here (its folder is on this process's path), so
    Ray ships it by value, as it does for a class defined in the user's script.
    """
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(example)
    try:
        algo = _config(example, 0.5, num_learners=1).build_algo()
        try:
            assert algo.learner_group.local_learner is None
            metrics = algo.train()["learners"][MID]
        finally:
            algo.stop()
    finally:
        cloudpickle.unregister_pickle_by_value(example)
    assert metrics["logits_l2"] > 0
