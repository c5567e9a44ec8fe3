"""The EnvRunner's sampling shortcuts draw exactly what the general paths draw."""

from __future__ import annotations

import numpy as np
import pytest

from marl_arena.runners.env_runner import _sample_categorical_rows, _sample_one_categorical, _stack, sample_categorical

MASKED = np.finfo(np.float32).min


def logit_rows(count: int, width: int = 7, seed: int = 0) -> list[np.ndarray]:
    """One-row logit arrays across scales (near uniform to near greedy), some actions masked."""
    rng = np.random.default_rng(seed)
    rows = []
    for scale in np.geomspace(0.01, 50.0, count):
        row = (rng.normal(size=(1, width)) * scale).astype(np.float32)
        row[0, rng.random(width) < 0.3] = MASKED
        row[0, rng.integers(width)] = rng.normal()  # at least one legal action
        rows.append(row)
    return rows


@pytest.mark.parametrize("explore", [True, False])
def test_one_row_shortcut_draws_the_batched_paths_actions_and_log_probabilities(explore):
    rows = logit_rows(2000)
    fast_rng, general_rng = np.random.default_rng(7), np.random.default_rng(7)
    for logits in rows:
        fast = _sample_one_categorical(logits, fast_rng, explore)
        general = _sample_categorical_rows(logits, general_rng, explore)
        for got, expected in zip(fast, general):
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, expected)
    # Both consumed the same draws: the streams are still in step.
    assert fast_rng.random() == general_rng.random()


def test_one_row_shortcut_never_draws_a_masked_action_and_rejects_non_finite_logits():
    rng = np.random.default_rng(0)
    logits = np.array([[MASKED, 0.5, MASKED, -0.2]], np.float32)
    draws = [int(sample_categorical(logits, rng, explore=True)[0][0]) for _ in range(5000)]
    assert set(draws) == {1, 3}
    expected = np.exp(0.5) / (np.exp(0.5) + np.exp(-0.2))
    assert abs(draws.count(1) / len(draws) - expected) < 0.03
    with pytest.raises(ValueError, match="not finite"):
        sample_categorical(np.array([[np.nan, 0.0]], np.float32), rng, explore=True)


def test_stack_of_one_row_is_a_view_with_the_batch_axis():
    row = np.arange(6, dtype=np.float32).reshape(2, 3)
    stacked = _stack([row])
    assert stacked.shape == (1, 2, 3) and np.shares_memory(stacked, row)
    np.testing.assert_array_equal(_stack([row, row + 1]), np.stack([row, row + 1]))
