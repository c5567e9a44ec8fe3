"""The marl-arena command line: train with checkpoints, evaluate them, clear errors."""

from __future__ import annotations

import json

import pytest

from marl_arena.cli import main

SMALL = ["--config", "train_batch_size_per_learner=256", "minibatch_size=64", "num_epochs=1", "--fcnet-hiddens", "16"]


def test_train_writes_checkpoints_and_evaluate_reads_them(tmp_path, capsys):
    rc = main(["train", "--env", "CartPole-v1", "--stop-iters", "2", "--checkpoint-dir", str(tmp_path),
               "--checkpoint-freq", "1", "--seed", "0", "--quiet", *SMALL])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("iter ") == 2 and "steps/s" in out
    assert "evaluation over 10 episodes" in out
    assert {p.name for p in tmp_path.iterdir()} == {"iter_000001", "iter_000002", "final"}

    assert main(["evaluate", str(tmp_path / "final"), "--episodes", "3"]) == 0
    evaluation = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluation["num_episodes"] == 3 and evaluation["episode_return_mean"] > 0


def test_unreached_stop_reward_exits_nonzero(capsys):
    rc = main(["train", "--env", "CartPole-v1", "--stop-reward", "1000", "--stop-iters", "1", "--quiet", *SMALL])
    assert rc == 1
    assert "stop reward 1000.0 not reached" in capsys.readouterr().err


def test_unknown_env_is_a_clear_error(capsys):
    assert main(["train", "--env", "CartPol-v1", "--stop-iters", "1"]) == 2
    assert "Did you mean 'CartPole-v1'" in capsys.readouterr().err


def test_unknown_config_field_is_named():
    with pytest.raises(SystemExit, match="no field 'learning_rate'"):
        main(["train", "--env", "CartPole-v1", "--stop-iters", "1", "--config", "learning_rate=0.1"])


def test_train_needs_a_stop_condition():
    with pytest.raises(SystemExit, match="stop condition"):
        main(["train", "--env", "CartPole-v1"])
