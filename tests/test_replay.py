"""Replay: the sum tree, n-step transitions and the buffers, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_ppo
from marl_arena.core import ActorCriticModule, Columns
from marl_arena.env import make_env
from marl_arena.replay import (
    BATCH_INDEXES,
    WEIGHTS,
    MultiAgentReplayBuffer,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    SumTree,
    n_step_transitions,
    replay_buffer_from_config,
)
from marl_arena.runners.env_runner import EnvRunner
from marl_arena.runners.module_specs import module_spec_from_env


# ---------------------------------------------------------------------------- sum tree
def tree_of(priorities) -> SumTree:
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    return tree


@pytest.mark.parametrize("priorities, values, expected", [
    ([1.0, 2.0, 3.0, 4.0], [0, 0.999, 1, 2.999, 3, 5.999, 6, 9.999, 10], [0, 0, 1, 1, 2, 2, 3, 3, 3]),
    # capacity 5 pads to 8 leaves; leaves of priority 0 are never returned, even at v = 0 or v = total
    ([0.0, 2.0, 0.0, 1.0, 1.0], [0, 1.999, 2, 2.5, 3, 4], [1, 1, 3, 3, 4, 4]),
    ([5.0], [0, 2.5, 5], [0, 0, 0]),
], ids=["four", "zeros-and-padding", "single"])
def test_find_prefix_sum_on_hand_made_trees(priorities, values, expected):
    tree = tree_of(priorities)
    assert tree.total == pytest.approx(sum(priorities))
    assert tree.find_prefix_sum(np.array(values)).tolist() == expected


def test_find_prefix_sum_matches_cumsum_search():
    rng = np.random.default_rng(0)
    priorities = rng.random(37)
    tree = tree_of(priorities)
    values = rng.random(1000) * tree.total
    expected = np.searchsorted(np.cumsum(priorities), values, side="right")
    np.testing.assert_array_equal(tree.find_prefix_sum(values), expected)


def test_sampling_frequencies_follow_priorities():
    priorities = np.array([0.5, 3.0, 0.0, 1.5, 2.0, 0.25, 2.75])  # capacity 7: one padding leaf
    tree = tree_of(priorities)
    draws = tree.find_prefix_sum(np.random.default_rng(1).random(100_000) * tree.total)
    frequencies = np.bincount(draws, minlength=len(priorities)) / draws.size
    np.testing.assert_allclose(frequencies, priorities / priorities.sum(), atol=0.005)
    assert frequencies[2] == 0.0


def test_updates_keep_total_and_min_exact():
    rng = np.random.default_rng(2)
    tree, reference = SumTree(13), np.zeros(13)
    assert tree.total == 0.0 and tree.min == np.inf  # nothing stored yet
    for _ in range(50):
        indices = rng.integers(0, 13, size=rng.integers(1, 6))
        priorities = rng.random(indices.size) * 10
        tree.update(indices, priorities)
        for index, priority in zip(indices, priorities):  # sequential semantics: last write wins
            reference[index] = priority
        touched = reference[np.unique(np.concatenate([indices, np.flatnonzero(reference)]))]
        assert tree.total == pytest.approx(reference.sum())
        assert tree.min == pytest.approx(touched.min())
    np.testing.assert_array_equal(tree[np.arange(13)], reference)


def test_repeated_index_keeps_the_last_priority():
    tree = tree_of([1.0, 1.0, 1.0])
    tree.update(np.array([1, 1, 1]), np.array([7.0, 0.5, 9.0]))
    assert tree[np.array([1])].tolist() == [9.0]
    assert tree.total == 11.0 and tree.min == 1.0


def test_sum_tree_rejects_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)
    tree = SumTree(4)
    with pytest.raises(ValueError, match="positive total"):
        tree.find_prefix_sum([0.0])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        tree.update([4], [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        tree.update([0, 1], [1.0, -1.0])
    with pytest.raises(ValueError, match=">= 0"):
        tree.update([0], [np.nan])
    tree.update([0], [1.0])
    with pytest.raises(ValueError, match="values must lie"):
        tree.find_prefix_sum([1.5])


# ---------------------------------------------------------------------------- n-step transitions
GAMMA = 0.5


def segment(rewards, end, start=0):
    """One segment: obs are row numbers from ``start``; new_obs and new_action_mask are obs + 100."""
    n = len(rewards)
    obs = np.arange(start, start + n, dtype=np.float32)[:, None]
    flags = {"terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool)}
    flags[end][-1] = True
    return {Columns.OBS: obs, Columns.NEXT_OBS: obs + 100, Columns.ACTIONS: np.arange(start, start + n),
            Columns.REWARDS: np.asarray(rewards, np.float32), Columns.TERMINATEDS: flags["terminated"],
            Columns.TRUNCATEDS: flags["truncated"], Columns.ACTION_MASK: np.tile(obs, (1, 2)),
            Columns.NEXT_ACTION_MASK: np.tile(obs + 100, (1, 2))}


def concat(*segments):
    return {k: np.concatenate([s[k] for s in segments]) for k in segments[0]}


# n = 3, gamma = 0.5. Terminal segment, rewards 1 2 3 4:
#   t0: 1 + 1 + .75 = 2.75 (m=3)   t1: 2 + 1.5 + 1 = 4.5 (m=3, reaches the terminal)
#   t2: 3 + 2 = 5 (m=2)            t3: 4 (m=1)
TERMINAL = dict(rewards=[2.75, 4.5, 5.0, 4.0], steps=[3, 3, 2, 1], last=[2, 3, 3, 3], terminal=[0, 1, 1, 1])
# Truncated segment, rewards 10 20: t0: 10 + 10 = 20 (m=2), t1: 20 (m=1); never terminal.
TRUNCATED = dict(rewards=[20.0, 20.0], steps=[2, 1], last=[1, 1], terminal=[0, 0])


def check_rows(out, rows, expected, offset):
    """Rows ``rows`` of ``out`` against ``expected``; ``offset`` is the segment's first row."""
    last = np.asarray(expected["last"]) + offset
    np.testing.assert_allclose(out[Columns.REWARDS][rows], expected["rewards"])
    np.testing.assert_allclose(out[Columns.N_STEP_DISCOUNT][rows], GAMMA ** np.asarray(expected["steps"]))
    np.testing.assert_array_equal(out[Columns.NEXT_OBS][rows, 0], last + 100)
    np.testing.assert_array_equal(out[Columns.NEXT_ACTION_MASK][rows, 0], last + 100)
    np.testing.assert_array_equal(out[Columns.TERMINATEDS][rows], np.asarray(expected["terminal"], bool))
    np.testing.assert_array_equal(out[Columns.OBS][rows, 0], np.asarray(rows))  # row t keeps its own obs
    np.testing.assert_array_equal(out[Columns.ACTION_MASK][rows, 0], np.asarray(rows))


def test_n_step_terminal_inside_n():
    out = n_step_transitions(segment([1, 2, 3, 4], "terminated"), n=3, gamma=GAMMA)
    check_rows(out, [0, 1, 2, 3], TERMINAL, offset=0)
    assert not out[Columns.TRUNCATEDS].any()


def test_n_step_truncated_end_stays_non_terminal():
    out = n_step_transitions(segment([10, 20], "truncated"), n=3, gamma=GAMMA)
    check_rows(out, [0, 1], TRUNCATED, offset=0)
    assert out[Columns.TRUNCATEDS].tolist() == [True, True]


@pytest.mark.parametrize("order", ["terminal-first", "truncated-first"])
def test_n_step_never_crosses_a_segment_boundary(order):
    if order == "terminal-first":
        batch = concat(segment([1, 2, 3, 4], "terminated"), segment([10, 20], "truncated", start=4))
        terminal_rows, truncated_rows = [0, 1, 2, 3], [4, 5]
    else:
        batch = concat(segment([10, 20], "truncated"), segment([1, 2, 3, 4], "terminated", start=2))
        truncated_rows, terminal_rows = [0, 1], [2, 3, 4, 5]
    out = n_step_transitions(batch, n=3, gamma=GAMMA)
    check_rows(out, terminal_rows, TERMINAL, offset=terminal_rows[0])
    check_rows(out, truncated_rows, TRUNCATED, offset=truncated_rows[0])


def test_n_longer_than_the_batch():
    out = n_step_transitions(segment([1, 2, 3, 4], "terminated"), n=10, gamma=GAMMA)
    np.testing.assert_allclose(out[Columns.REWARDS], [1 + 1 + .75 + .5, 2 + 1.5 + 1, 5, 4])
    np.testing.assert_allclose(out[Columns.N_STEP_DISCOUNT], GAMMA ** np.array([4, 3, 2, 1]))


def test_n_step_one_is_the_identity_plus_discount():
    batch = concat(segment([1, 2, 3, 4], "terminated"), segment([10, 20], "truncated", start=4))
    out = n_step_transitions(batch, n=1, gamma=GAMMA)
    assert set(out) == set(batch) | {Columns.N_STEP_DISCOUNT}
    for key, value in batch.items():
        np.testing.assert_array_equal(out[key], value, err_msg=key)
        assert out[key].dtype == value.dtype
    np.testing.assert_allclose(out[Columns.N_STEP_DISCOUNT], np.full(6, GAMMA))


def reference_n_step(batch, n, gamma):
    """Loop reference: walk forward from each row until n steps or its segment's end."""
    ends = batch[Columns.TERMINATEDS] | batch[Columns.TRUNCATEDS]
    rewards, discounts, last = [], [], []
    for t in range(len(ends)):
        total, k = 0.0, 0
        while True:
            total += gamma ** k * batch[Columns.REWARDS][t + k]
            k += 1
            if k == n or ends[t + k - 1]:
                break
        rewards.append(total), discounts.append(gamma ** k), last.append(t + k - 1)
    return np.array(rewards), np.array(discounts), np.array(last)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_step_matches_a_loop_reference(n):
    rng = np.random.default_rng(n)
    parts, start = [], 0
    for length, end in zip([4, 1, 6, 3, 2], ["terminated", "truncated", "truncated", "terminated", "truncated"]):
        parts.append(segment(rng.normal(size=length), end, start))
        start += length
    batch = concat(*parts)
    out = n_step_transitions(batch, n=n, gamma=0.9)
    rewards, discounts, last = reference_n_step(batch, n, 0.9)
    np.testing.assert_allclose(out[Columns.REWARDS], rewards, rtol=1e-5)
    np.testing.assert_allclose(out[Columns.N_STEP_DISCOUNT], discounts, rtol=1e-6)
    np.testing.assert_array_equal(out[Columns.NEXT_OBS], batch[Columns.NEXT_OBS][last])
    np.testing.assert_array_equal(out[Columns.TERMINATEDS], batch[Columns.TERMINATEDS][last])
    np.testing.assert_array_equal(out[Columns.ACTIONS], batch[Columns.ACTIONS])


def test_n_step_leaves_its_input_alone():
    batch = segment([1, 2, 3, 4], "terminated")
    before = {k: v.copy() for k, v in batch.items()}
    n_step_transitions(batch, n=3, gamma=GAMMA)
    for key, value in before.items():
        np.testing.assert_array_equal(batch[key], value)
    assert Columns.N_STEP_DISCOUNT not in batch


def test_n_step_rejects_bad_input():
    batch = segment([1, 2], "terminated")
    with pytest.raises(ValueError, match="n must be"):
        n_step_transitions(batch, n=0, gamma=GAMMA)
    with pytest.raises(ValueError, match="gamma"):
        n_step_transitions(batch, n=2, gamma=1.5)
    with pytest.raises(ValueError, match="lacks the columns.*new_obs"):
        n_step_transitions({k: v for k, v in batch.items() if k != Columns.NEXT_OBS}, n=2, gamma=GAMMA)
    open_ended = dict(batch, **{Columns.TERMINATEDS: np.zeros(2, bool)})
    with pytest.raises(ValueError, match="ends no segment"):
        n_step_transitions(open_ended, n=2, gamma=GAMMA)


# ---------------------------------------------------------------------------- uniform replay buffer
def rows(values, obs_dim=2):
    """Transitions whose every column encodes the row's value, to read back where it went."""
    values = np.asarray(values)
    return {Columns.OBS: np.repeat(values[:, None], obs_dim, axis=1).astype(np.float32),
            Columns.ACTIONS: values.astype(np.int64),
            Columns.REWARDS: values.astype(np.float32),
            Columns.TERMINATEDS: values % 2 == 0}


def stored(buffer):
    return buffer.get_state()["columns"][Columns.ACTIONS].tolist()


def test_ring_buffer_overwrites_the_oldest_first():
    buffer = ReplayBuffer(capacity=5)
    buffer.add(rows([0, 1, 2]))
    assert len(buffer) == 3 and stored(buffer) == [0, 1, 2]
    buffer.add(rows([3, 4, 5, 6]))
    assert len(buffer) == 5 and stored(buffer) == [5, 6, 2, 3, 4]
    assert buffer.get_state()["next_index"] == 2


def test_batch_longer_than_capacity_equals_row_by_row_adds():
    whole, one_by_one = ReplayBuffer(capacity=3), ReplayBuffer(capacity=3)
    for buffer in (whole, one_by_one):
        buffer.add(rows([100]))
    whole.add(rows(np.arange(7)))
    for value in range(7):
        one_by_one.add(rows([value]))
    assert stored(whole) == stored(one_by_one) == [5, 6, 4]
    assert whole.get_state()["next_index"] == one_by_one.get_state()["next_index"] == 2


def test_uniform_sample_returns_stored_rows_with_their_slots():
    buffer = ReplayBuffer(capacity=8)
    buffer.add(rows(np.arange(10, 16)))
    sample = buffer.sample(20_000, np.random.default_rng(3))
    assert sample[Columns.OBS].shape == (20_000, 2) and sample[Columns.OBS].dtype == np.float32
    np.testing.assert_array_equal(sample[Columns.ACTIONS], sample[BATCH_INDEXES] + 10)
    np.testing.assert_array_equal(sample[Columns.OBS][:, 0], sample[Columns.REWARDS])
    frequencies = np.bincount(sample[BATCH_INDEXES], minlength=6) / 20_000
    np.testing.assert_allclose(frequencies, np.full(6, 1 / 6), atol=0.015)  # never the 2 empty slots


def test_buffer_rejects_bad_batches():
    buffer = ReplayBuffer(capacity=4)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="same number of rows"):
        buffer.add({Columns.OBS: np.zeros((3, 2)), Columns.ACTIONS: np.zeros(2)})
    with pytest.raises(ValueError, match="reserved"):
        buffer.add(dict(rows([1]), **{WEIGHTS: np.ones(1)}))
    buffer.add(rows([1, 2]))
    with pytest.raises(ValueError, match="columns"):
        buffer.add({k: v for k, v in rows([3]).items() if k != Columns.REWARDS})
    with pytest.raises(ValueError, match="'obs' has rows of shape \\(3,\\)"):
        buffer.add(rows([3], obs_dim=3))
    with pytest.raises(ValueError, match="'actions'.*float64"):
        buffer.add(dict(rows([3]), **{Columns.ACTIONS: np.array([0.5])}))
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(0, np.random.default_rng(0))
    assert stored(buffer) == [1, 2]  # nothing half-written


# ---------------------------------------------------------------------------- prioritized replay
def prioritized(alpha=1.0, beta=0.5, eps=0.5, capacity=4):
    """Four stored transitions with priorities (|td| + 0.5)^alpha = [1, 2, 3, 4]^alpha."""
    buffer = PrioritizedReplayBuffer(capacity=capacity, alpha=alpha, beta=beta, eps=eps)
    buffer.add(rows([0, 1, 2, 3]))
    buffer.update_priorities(np.arange(4), np.array([0.5, -1.5, 2.5, -3.5]))
    return buffer


def test_new_transitions_get_the_max_priority():
    buffer = PrioritizedReplayBuffer(capacity=4, alpha=0.5, beta=0.5, eps=0.5)
    buffer.add(rows([0, 1]))
    np.testing.assert_allclose(buffer.get_state()["priorities"], [1.0, 1.0])  # max seen starts at 1
    buffer.update_priorities(np.array([0, 1]), np.array([8.5, 0.0]))  # raw 9 and 0.5
    buffer.add(rows([2]))
    np.testing.assert_allclose(buffer.get_state()["priorities"], [3.0, 0.5 ** 0.5, 3.0])  # 9^0.5


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_importance_weights_hand_computed(alpha):
    buffer = prioritized(alpha=alpha, beta=0.5)
    sample = buffer.sample(200, np.random.default_rng(4))
    p = np.array([1.0, 2.0, 3.0, 4.0]) ** alpha
    probabilities = p / p.sum()
    weights = (4 * probabilities) ** -0.5
    expected = weights / weights.max()
    # alpha = 1: w = p^-0.5 = [1, 0.7071, 0.5774, 0.5]
    if alpha == 1.0:
        np.testing.assert_allclose(expected, [1.0, 2 ** -0.5, 3 ** -0.5, 0.5])
    np.testing.assert_allclose(sample[WEIGHTS], expected[sample[BATCH_INDEXES]], rtol=1e-6)
    assert sample[WEIGHTS].dtype == np.float32
    assert set(sample[BATCH_INDEXES].tolist()) == {0, 1, 2, 3}


def test_prioritized_sampling_frequencies_and_beta():
    buffer = prioritized(beta=0.0)
    sample = buffer.sample(100_000, np.random.default_rng(5))
    frequencies = np.bincount(sample[BATCH_INDEXES], minlength=4) / 100_000
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.005)
    np.testing.assert_array_equal(sample[WEIGHTS], 1.0)  # beta = 0: no correction
    np.testing.assert_array_equal(sample[Columns.ACTIONS], sample[BATCH_INDEXES])
    buffer.beta = 1.0  # annealed
    sample = buffer.sample(50, np.random.default_rng(5))
    np.testing.assert_allclose(sample[WEIGHTS], 1.0 / (sample[BATCH_INDEXES] + 1), rtol=1e-6)


def test_prioritized_buffer_rejects_bad_input():
    buffer = prioritized()
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        buffer.update_priorities(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="2 indices but 1"):
        buffer.update_priorities(np.array([0, 1]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        buffer.update_priorities(np.array([0]), np.array([np.inf]))
    with pytest.raises(ValueError, match="beta"):
        buffer.beta = -0.1
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        PrioritizedReplayBuffer(eps=0.0)


# ---------------------------------------------------------------------------- config and multi-agent
@pytest.mark.parametrize("config, message", [
    ({"type": "EpisodeReplayBuffer"},
     r"'EpisodeReplayBuffer' is not a known.*\['PrioritizedReplayBuffer', 'ReplayBuffer'\]"),
    ({"capacity": 10}, r"\['type'\] = None is not a known"),
    ({"type": "ReplayBuffer", "alpha": 0.6}, r"unknown keys \['alpha'\].*\['type', 'capacity'\]"),
    ({"type": "PrioritizedReplayBuffer", "capcity": 10},
     r"unknown keys \['capcity'\].*\['type', 'capacity', 'alpha', 'beta', 'eps'\]"),
    ({"type": "ReplayBuffer", "capacity": 0}, "capacity must be a positive int, got 0"),
    ({"type": "PrioritizedReplayBuffer", "alpha": -1}, "alpha must be a finite number >= 0"),
    (["ReplayBuffer"], "must be a dict"),
], ids=["unknown-type", "no-type", "key-of-other-type", "typo", "capacity", "alpha", "not-a-dict"])
def test_bad_replay_buffer_config_is_named(config, message):
    with pytest.raises(ValueError, match=message):
        MultiAgentReplayBuffer(config)


def test_config_builds_the_named_buffer():
    buffer = replay_buffer_from_config({"type": "PrioritizedReplayBuffer", "capacity": 60, "alpha": 0.5, "beta": 0.7})
    assert isinstance(buffer, PrioritizedReplayBuffer)
    assert (buffer.capacity, buffer.alpha, buffer.beta) == (60, 0.5, 0.7)
    assert type(replay_buffer_from_config({"type": "ReplayBuffer"})) is ReplayBuffer


def test_multi_agent_buffer_routes_each_module_to_its_own_buffer():
    buffer = MultiAgentReplayBuffer({"type": "PrioritizedReplayBuffer", "capacity": 10, "alpha": 1.0, "beta": 1.0})
    buffer.add({"main": rows([1, 2, 3]), "exploiter": rows([-1, -2])})
    buffer.add({"main": rows([4])})
    assert (len(buffer["main"]), len(buffer["exploiter"]), len(buffer)) == (4, 2, 6)
    assert isinstance(buffer["main"], PrioritizedReplayBuffer)
    rng = np.random.default_rng(6)
    sample = buffer.sample(50, rng, module_id="exploiter")
    assert list(sample) == ["exploiter"] and set(sample["exploiter"][Columns.ACTIONS].tolist()) == {-1, -2}
    both = buffer.sample(50, rng)
    assert set(both) == {"main", "exploiter"} and (both["main"][Columns.ACTIONS] > 0).all()
    buffer.update_priorities("exploiter", np.array([0, 1]), np.array([0.0, 9.0]))  # priorities ~0 and 9
    assert set(buffer.sample(50, rng, "exploiter")["exploiter"][Columns.ACTIONS].tolist()) == {-2}
    np.testing.assert_allclose(buffer["main"].get_state()["priorities"], np.ones(4))  # untouched
    with pytest.raises(ValueError, match=r"module 'nobody'.*\['exploiter', 'main'\]"):
        buffer.sample(5, rng, module_id="nobody")


def test_multi_agent_uniform_buffer_has_no_priorities():
    buffer = MultiAgentReplayBuffer({"type": "ReplayBuffer", "capacity": 4})
    with pytest.raises(ValueError, match="no module has transitions"):
        buffer.sample(2, np.random.default_rng(0))
    buffer.add({"main": rows([1])})
    with pytest.raises(TypeError, match="no priorities"):
        buffer.update_priorities("main", np.array([0]), np.array([1.0]))


# ---------------------------------------------------------------------------- checkpoints
def assert_same_samples(a, b, seed=7):
    """Equal samples under equal seeds (per module for multi-agent buffers)."""
    first, second = a.sample(64, np.random.default_rng(seed)), b.sample(64, np.random.default_rng(seed))
    if isinstance(a, MultiAgentReplayBuffer):
        first = {(m, k): v for m, batch in first.items() for k, v in batch.items()}
        second = {(m, k): v for m, batch in second.items() for k, v in batch.items()}
    assert set(first) == set(second)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=str(key))


@pytest.mark.parametrize("make", [lambda: ReplayBuffer(capacity=5),
                                  lambda: PrioritizedReplayBuffer(capacity=5, alpha=0.5, beta=0.5, eps=0.5)],
                         ids=["uniform", "prioritized"])
def test_get_state_set_state_round_trip(make):
    original, restored = make(), make()
    original.add(rows(np.arange(10, 17)))  # wraps around
    if isinstance(original, PrioritizedReplayBuffer):
        original.update_priorities(np.arange(5), np.array([0.5, 3.5, 8.5, 1.5, 0.0]))
    state = original.get_state()
    restored.set_state(state)
    assert len(restored) == len(original) == 5
    assert_same_samples(original, restored)
    for buffer in (original, restored):  # both go on writing to the same slots, with the same priorities
        buffer.add(rows([99]))
    assert_same_samples(original, restored)
    assert stored(restored) == stored(original)
    state["columns"][Columns.ACTIONS][:] = -1  # the state is a copy
    assert -1 not in stored(original)


def test_multi_agent_round_trip_and_bad_states():
    config = {"type": "PrioritizedReplayBuffer", "capacity": 8, "alpha": 0.7}
    original = MultiAgentReplayBuffer(config)
    original.add({"a": rows([1, 2, 3]), "b": rows([4])})
    original.update_priorities("a", np.array([0, 2]), np.array([3.0, 0.1]))
    restored = MultiAgentReplayBuffer(config)
    restored.set_state(original.get_state())
    assert restored.module_ids == ["a", "b"]
    assert_same_samples(original, restored)
    with pytest.raises(ValueError, match="capacity 8, this buffer 4"):
        PrioritizedReplayBuffer(capacity=4).set_state(original["a"].get_state())
    uniform_state = ReplayBuffer(capacity=8).get_state()
    with pytest.raises(ValueError, match="lacks \\['priorities', 'max_priority'\\]"):
        PrioritizedReplayBuffer(capacity=8).set_state(uniform_state)


# ---------------------------------------------------------------------------- with the real EnvRunner
def test_env_runner_fragments_through_n_step_into_replay():
    """Rollout fragments cut episodes mid-way: n-step rows of every module stay in their own
    segment (as the loop reference says) and the replayed rows are rows that were added."""
    config = tiny_ppo("ma_cartpole").multi_agent(policies={"p0", "p1"},
                                                 policy_mapping_fn=lambda aid, *a, **k: f"p{aid}")
    runner = EnvRunner(config, module_spec_from_env(config, make_env(config.env), ActorCriticModule))
    buffer = MultiAgentReplayBuffer({"type": "PrioritizedReplayBuffer", "capacity": 1000})
    added, cuts = {"p0": [], "p1": []}, 0
    for _ in range(3):
        for module_id, batch in runner.sample(num_timesteps=30).batches.items():
            transitions = n_step_transitions(batch, n=3, gamma=0.9)
            rewards, discounts, _ = reference_n_step(batch, 3, 0.9)
            np.testing.assert_allclose(transitions[Columns.REWARDS], rewards, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(transitions[Columns.N_STEP_DISCOUNT], discounts, rtol=1e-6)
            cuts += int(batch[Columns.TRUNCATEDS].sum())
            buffer.add({module_id: transitions})
            added[module_id].append(transitions)
    assert cuts > 0  # the 30-step fragments did cut episodes
    rng = np.random.default_rng(8)
    for module_id, sample in buffer.sample(32, rng).items():
        all_rows = {k: np.concatenate([t[k] for t in added[module_id]]) for k in added[module_id][0]}
        np.testing.assert_array_equal(sample[Columns.OBS], all_rows[Columns.OBS][sample[BATCH_INDEXES]])
        np.testing.assert_array_equal(sample[Columns.REWARDS], all_rows[Columns.REWARDS][sample[BATCH_INDEXES]])
        assert len(buffer[module_id]) == len(all_rows[Columns.OBS])
