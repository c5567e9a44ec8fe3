"""Checkpoints restore in a new process with the same weights, optimizer state and RNG."""

from __future__ import annotations

import json
import pathlib
import pickle
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms import Algorithm, CheckpointError, PPO

RESTORE_AND_UPDATE = textwrap.dedent(
    """
    import pickle, sys, torch
    from marl_arena.algorithms import Algorithm
    checkpoint, batch_file, out_file = sys.argv[1:]
    algo = Algorithm.from_checkpoint(checkpoint)
    restored = {k: v.clone() for k, v in algo.get_module().state_dict().items()}
    with open(batch_file, "rb") as f:
        batch = pickle.load(f)
    algo.learner_group.update(batch, algo.config.num_epochs, algo.config.minibatch_size)
    updated = algo.get_module().state_dict()
    torch.save({"restored": restored, "updated": updated, "iteration": algo.iteration}, out_file)
    algo.stop()
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A PPO trained for two iterations, its checkpoint, and a fixed batch to update on."""
    tmp = tmp_path_factory.mktemp("ckpt")
    algo = tiny_ppo().build_algo()
    algo.train()
    algo.train()
    path = algo.save_to_path(str(tmp / "checkpoint"))
    batch = algo.env_runner_group.local_runner.sample(num_timesteps=256).batches
    with open(tmp / "batch.pkl", "wb") as f:
        pickle.dump(batch, f)
    yield algo, path, tmp
    algo.stop()


def test_restore_in_new_process_continues_identically(trained):
    algo, path, tmp = trained
    saved = {k: v.clone() for k, v in algo.get_module().state_dict().items()}
    algo.learner_group.update(pickle.loads((tmp / "batch.pkl").read_bytes()), algo.config.num_epochs,
                              algo.config.minibatch_size)
    expected = algo.get_module().state_dict()

    script = tmp / "restore.py"
    script.write_text(RESTORE_AND_UPDATE)
    subprocess.run([sys.executable, str(script), path, str(tmp / "batch.pkl"), str(tmp / "out.pt")],
                   check=True, capture_output=True, timeout=120)
    out = torch.load(tmp / "out.pt")

    assert out["iteration"] == 2
    for name, value in saved.items():
        assert torch.equal(out["restored"][name], value), f"restored weight {name} differs"
    changed = any(not torch.equal(saved[n], expected[n]) for n in saved)
    assert changed, "the update on the fixed batch changed nothing"
    for name, value in expected.items():
        # Same weights + same Adam moments + same minibatch RNG => the same update, bit for bit.
        assert torch.equal(out["updated"][name], value), f"weight {name} after one update differs"


def test_training_continues_after_restore(trained):
    _, path, _ = trained
    algo = PPO.from_checkpoint(path)
    result = algo.train()
    algo.stop()
    assert result["training_iteration"] == 3
    assert result["num_env_steps_sampled_lifetime"] >= 3 * 256


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "learner_state.pt").write_bytes(b"not a torch file"), "learner_state.pt"),
        (lambda p: (p / "config.pkl").unlink(), "config.pkl is missing"),
        (lambda p: (p / "metadata.json").write_text(json.dumps(
            {**json.loads((p / "metadata.json").read_text()), "format_version": 99})), "format version 99"),
    ],
    ids=["corrupt-weights", "missing-config", "newer-format"],
)
def test_damaged_checkpoint_is_named_in_the_error(trained, tmp_path, damage, message):
    _, path, _ = trained
    copy = pathlib.Path(shutil.copytree(path, tmp_path / "copy"))
    damage(copy)
    with pytest.raises(CheckpointError, match=message):
        Algorithm.from_checkpoint(str(copy))


def test_missing_checkpoint_dir(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint directory"):
        Algorithm.from_checkpoint(str(tmp_path / "nope"))


def test_config_pickled_before_a_field_existed_restores_with_its_default():
    import cloudpickle

    config = tiny_ppo()
    config.lr = 0.0123
    older = cloudpickle.loads(cloudpickle.dumps(config))
    del older.__dict__["record_moves"]  # as pickled by a marl_arena without that field
    restored = cloudpickle.loads(cloudpickle.dumps(older))
    assert restored.record_moves is False and restored.lr == 0.0123
    restored.validate()
