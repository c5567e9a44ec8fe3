"""The custom-module examples: they run as scripts, their modules are built as they say, and they learn."""

from __future__ import annotations

import runpy
import sys

import pytest
import torch
from conftest import EXAMPLES, import_example

from marl_arena.algorithms import Algorithm
from marl_arena.core.columns import Columns


@pytest.fixture(scope="module")
def examples():
    return import_example("custom_rl_module"), import_example("shared_trunk_modules")


@pytest.mark.parametrize("script", ["custom_rl_module.py", "shared_trunk_modules.py"])
def test_examples_run_as_scripts_with_smoke(script, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script, "--smoke"])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert "win rate" in capsys.readouterr().out


def test_custom_residual_cnn_shares_its_trunk_between_policy_and_value_and_learns(examples):
    custom, _ = examples
    out = custom.main()
    module = out["module"]
    assert type(module).__name__ == "ResidualCNNModule"
    assert {name.split(".")[0] for name, _ in module.named_parameters()} == {"trunk", "pi", "vf"}
    obs = torch.rand(4, *module.observation_space.shape)
    module.zero_grad()
    module.compute_values(obs).sum().backward()  # the value loss trains the trunk the policy reads
    assert module.trunk[0].weight.grad.abs().sum() > 0 and module.pi.weight.grad is None
    assert out["win_rate_after"] >= 0.8 and out["win_rate_after"] >= out["win_rate_before"] + 0.1, out


def test_two_module_ids_share_one_trunk_in_learner_runner_and_checkpoint(examples, tmp_path):
    _, shared = examples
    algo = shared.make_config(smoke=True).build_algo()
    try:
        learner = {mid: algo.get_module(mid) for mid in ("x", "o")}
        runner = algo.env_runner_group.local_runner.module
        assert learner["x"].trunk is learner["o"].trunk and runner["x"].trunk is runner["o"].trunk
        assert learner["x"].pi is not learner["o"].pi
        before = {k: v.clone() for k, v in learner["x"].trunk.state_dict().items()}
        algo.train()
        after = learner["o"].trunk.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
        path = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        again = {mid: restored.get_module(mid) for mid in ("x", "o")}
        assert again["x"].trunk is again["o"].trunk
        for key, value in after.items():
            torch.testing.assert_close(again["x"].trunk.state_dict()[key], value)
        batch = {Columns.OBS: torch.rand(3, 3, 3, 3)}
        torch.testing.assert_close(again["o"].forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
                                   learner["o"].forward_inference(batch)[Columns.ACTION_DIST_INPUTS])
    finally:
        restored.stop()


def test_shared_trunk_self_play_improves_both_seats(examples):
    _, shared = examples
    out = shared.main()
    for module_id in ("x", "o"):
        assert out["win_rate_after"][module_id] >= out["win_rate_before"][module_id] + 0.1, out
