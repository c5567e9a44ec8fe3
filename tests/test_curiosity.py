"""Count-based curiosity as a learner connector: the counts, the reward it adds, its state in
checkpoints, and PPO with it learning the sparse maze of ``examples/count_based_curiosity.py``."""

from __future__ import annotations

import runpy
import sys

import numpy as np
import pytest
import torch

from conftest import EXAMPLES, import_example, tiny_ppo
from marl_arena.algorithms import Algorithm
from marl_arena.connectors import CountBasedCuriosity, LearnerConnector
from marl_arena.core.columns import Columns

MID = "default_policy"


def _one_hot(cells: list[int], n: int = 4) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[cells]


def test_counts_accumulate_per_state_and_per_module():
    curiosity = CountBasedCuriosity()
    np.testing.assert_array_equal(curiosity.count("a", _one_hot([0, 1, 1, 2, 0])), [2, 2, 2, 1, 2])
    np.testing.assert_array_equal(curiosity.count("a", _one_hot([1, 3])), [3, 1])
    np.testing.assert_array_equal(curiosity.count("b", _one_hot([1])), [1])  # another module, other counts
    assert len(curiosity.counts["a"]) == 4 and len(curiosity.counts["b"]) == 1


def test_resolution_puts_nearby_continuous_observations_in_one_cell():
    curiosity = CountBasedCuriosity(resolution=0.5)
    obs = np.array([[0.1, 0.2], [0.4, 0.3], [0.6, 0.2], [-0.1, 0.2]], dtype=np.float32)
    np.testing.assert_array_equal(curiosity.count("a", obs), [2, 2, 1, 1])
    # Without a resolution every distinct float row is its own state.
    np.testing.assert_array_equal(CountBasedCuriosity().count("a", obs), [1, 1, 1, 1])


def test_state_keys_are_the_same_in_every_process():
    """Keys are BLAKE2b digests of the row bytes, not Python's per-process salted hash."""
    import hashlib

    obs = _one_hot([2])
    assert CountBasedCuriosity().state_keys(obs) == [hashlib.blake2b(obs[0].tobytes(), digest_size=8).digest()]


def test_the_bonus_is_beta_over_the_square_root_of_the_next_states_count():
    curiosity = CountBasedCuriosity(beta=0.5)
    batch = {Columns.OBS: torch.as_tensor(_one_hot([0, 0, 0])),
             Columns.NEXT_OBS: torch.as_tensor(_one_hot([1, 1, 2])),
             Columns.REWARDS: torch.tensor([0.0, 1.0, 0.0])}
    shaped, metrics = curiosity(MID, batch)
    expected = torch.tensor([0.5 / np.sqrt(2), 1.0 + 0.5 / np.sqrt(2), 0.5], dtype=torch.float32)
    torch.testing.assert_close(shaped[Columns.REWARDS], expected)
    torch.testing.assert_close(batch[Columns.REWARDS], torch.tensor([0.0, 1.0, 0.0]))  # the input is not changed
    assert metrics["curiosity_num_states"] == 2
    assert metrics["intrinsic_reward_mean"] == pytest.approx(float((expected - batch[Columns.REWARDS]).mean()))
    shaped, _ = curiosity(MID, batch)  # the same states again: smaller bonuses
    torch.testing.assert_close(shaped[Columns.REWARDS] - batch[Columns.REWARDS],
                               torch.tensor([0.5 / 2, 0.5 / 2, 0.5 / np.sqrt(2)], dtype=torch.float32))


def test_sequence_batches_keep_their_shape_and_other_modules_are_left_alone():
    curiosity = CountBasedCuriosity(beta=1.0, module_ids=["learner"])
    obs = torch.as_tensor(_one_hot([0, 1, 0, 1, 2, 3])).reshape(2, 3, 4)
    batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.REWARDS: torch.zeros(2, 3)}
    shaped, _ = curiosity("learner", batch)
    assert shaped[Columns.REWARDS].shape == (2, 3)
    torch.testing.assert_close(shaped[Columns.REWARDS][1], torch.tensor([2 ** -0.5, 1.0, 1.0], dtype=torch.float32))
    untouched, metrics = curiosity("opponent", batch)
    assert untouched is batch and metrics == {}


@pytest.mark.parametrize("kwargs, message", [({"beta": 0}, "beta=0 is not allowed"),
                                             ({"resolution": -1.0}, "resolution=-1.0 is not allowed")])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CountBasedCuriosity(**kwargs)


def test_a_factory_that_returns_no_connector_is_named():
    with pytest.raises(ValueError, match="learner_connector returned .* not a LearnerConnector"):
        tiny_ppo(learner_connector=lambda *spaces: "curiosity").build_algo()
    with pytest.raises(ValueError, match="learner_connector=.*must be None or a callable"):
        tiny_ppo(learner_connector=CountBasedCuriosity).training(learner_connector=3).build_algo()


@pytest.mark.parametrize("env, policies", [("CartPole-v1", None), ("ma_cartpole", ["p0", "p1"])])
def test_the_factory_gets_the_trained_modules_spaces_as_in_rllib(env, policies):
    """RLlib's form, ``lambda obs_space, act_space: ...``: one module's spaces, or a Dict by module id."""
    seen = []

    def factory(observation_space, action_space):
        seen.append((observation_space, action_space))
        return CountBasedCuriosity()

    # RLlib 2.60 moved the setting to learners(); training() still takes it. Both set one field.
    config = tiny_ppo(env, batch=64).learners(learner_connector=factory) if policies is None else \
        tiny_ppo(env, batch=64, learner_connector=factory)
    if policies:
        config.multi_agent(policies=policies, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}")
    algo = config.build_algo()
    try:
        learner = algo.learner_group.local_learner
        modules = {mid: learner.module[mid] for mid in learner.module_ids_to_train}
    finally:
        algo.stop()
    assert len(seen) == 1
    observation_space, action_space = seen[0]
    if policies is None:
        assert observation_space == modules[MID].observation_space and action_space == modules[MID].action_space
    else:
        assert set(observation_space.spaces) == set(policies) == set(action_space.spaces)
        assert all(observation_space[mid] == modules[mid].observation_space for mid in policies)


def test_the_learner_runs_the_connector_before_advantages_and_reports_it():
    class DoubleRewards(LearnerConnector):
        """Records the rewards it sees, so the test knows they reached GAE doubled."""

        def __call__(self, module_id, batch):
            batch = dict(batch)
            batch[Columns.REWARDS] = batch[Columns.REWARDS] * 2
            return batch, {"doubled_rows": float(len(batch[Columns.REWARDS]))}

    # RLlib's factory form (lambda *args, **kwargs) fits; a list of connectors runs in order.
    algo = tiny_ppo(batch=64, learner_connector=lambda *a, **k: [DoubleRewards(), CountBasedCuriosity()]).build_algo()
    try:
        learner = algo.learner_group.local_learner
        seen = {}
        original = learner.prepare_batch

        def prepare_batch(module_id, batch):  # what GAE gets
            seen["rewards"] = batch[Columns.REWARDS].clone()
            return original(module_id, batch)

        learner.prepare_batch = prepare_batch
        batches, _ = algo.sample_batches(64)
        metrics = learner.update(batches)[MID]
    finally:
        algo.stop()
    bonus = seen["rewards"] - 2 * torch.as_tensor(batches[MID][Columns.REWARDS])
    assert metrics["doubled_rows"] == len(bonus) and metrics["intrinsic_reward_mean"] == pytest.approx(float(bonus.mean()), rel=1e-5)
    assert (bonus > 0).all() and (bonus <= 0.1 + 1e-6).all()


def test_counts_are_saved_in_checkpoints_and_restored(tmp_path):
    config = tiny_ppo(env="FrozenLake-v1", batch=128).environment(env_config={"is_slippery": False}).training(
        learner_connector=lambda *spaces: CountBasedCuriosity(beta=0.3))
    algo = config.build_algo()
    try:
        algo.train()
        counts = algo.learner_group.local_learner.learner_connectors[0].counts[MID]
        path = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    assert sum(counts.values()) == 128 and len(counts) > 1
    restored = Algorithm.from_checkpoint(path)
    try:
        curiosity = restored.learner_group.local_learner.learner_connectors[0]
        assert curiosity.counts[MID] == counts and curiosity.beta == 0.3
        # The restored counts go on: a state seen n times before earns beta / sqrt(n + 1).
        key, seen = next(iter(counts.items()))
        row = next(r for r in np.eye(16, dtype=np.float32) if curiosity.state_keys(r[None])[0] == key)
        batch = {Columns.OBS: torch.as_tensor(row[None]), Columns.REWARDS: torch.zeros(1)}
        shaped, _ = curiosity(MID, batch)
        assert float(shaped[Columns.REWARDS][0]) == pytest.approx(0.3 / np.sqrt(seen + 1))
    finally:
        restored.stop()


@pytest.fixture(scope="module")
def example():
    return import_example("count_based_curiosity")


def test_the_example_runs_as_a_script(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["count_based_curiosity.py", "--smoke"])
    runpy.run_path(str(EXAMPLES / "count_based_curiosity.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "plain PPO:" in out and "PPO + curiosity:" in out


def test_ppo_with_curiosity_learns_the_sparse_maze(example):
    """The greedy policy walks from start to goal (return 1) within the example's budget."""
    out = example.train(curiosity=True, seed=0)
    assert out["reached"], out
