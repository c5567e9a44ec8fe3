"""GAE, V-trace and explained variance against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from marl_arena.algorithms.estimators import compute_gae, compute_vtrace, explained_variance

GAMMA, LAMBDA = 0.9, 0.8  # gamma * lambda = 0.72


def segment(rewards, values, next_values, end):
    """One trajectory segment's columns; ``end`` flags its last row "terminated" or "truncated"."""
    n = len(rewards)
    flags = {"terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool)}
    flags[end][-1] = True
    return dict(rewards=np.asarray(rewards, np.float32), values=np.asarray(values, np.float32),
                next_values=np.asarray(next_values, np.float32),
                terminateds=flags["terminated"], truncateds=flags["truncated"])


def concat(*segments):
    return {k: np.concatenate([s[k] for s in segments]) for k in segments[0]}


def gae(batch, gamma=GAMMA, lambda_=LAMBDA):
    return compute_gae(batch["rewards"], batch["values"], batch["next_values"], batch["terminateds"],
                       batch["truncateds"], gamma, lambda_)


def three_steps(end):
    return segment([1.0, 2.0, 3.0], [0.5, 1.0, 1.5], [1.0, 1.5, 2.0], end)


# deltas: 1 + .9*1 - .5 = 1.4,  2 + .9*1.5 - 1 = 2.35,  last: 3 - 1.5 = 1.5 (terminal)
#                                                         or 3 + .9*2 - 1.5 = 3.3 (truncated: bootstrap)
TERMINAL_ADV = [1.4 + 0.72 * (2.35 + 0.72 * 1.5), 2.35 + 0.72 * 1.5, 1.5]  # 3.8696, 3.43, 1.5
TRUNCATED_ADV = [1.4 + 0.72 * (2.35 + 0.72 * 3.3), 2.35 + 0.72 * 3.3, 3.3]  # 4.80272, 4.726, 3.3


@pytest.mark.parametrize("end, expected", [("terminated", TERMINAL_ADV), ("truncated", TRUNCATED_ADV)])
def test_gae_hand_computed(end, expected):
    batch = three_steps(end)
    advantages, targets = gae(batch)
    np.testing.assert_allclose(advantages, expected, rtol=1e-5)
    np.testing.assert_allclose(targets, np.asarray(expected) + batch["values"], rtol=1e-5)


@pytest.mark.parametrize("end, expected", [("terminated", TERMINAL_ADV), ("truncated", TRUNCATED_ADV)])
def test_gae_recursion_stops_at_segment_boundary(end, expected):
    """A second segment right after must not leak into the first one's advantages."""
    follower = segment([10.0], [0.0], [5.0], "truncated")  # advantage 10 + .9*5 = 14.5
    advantages, _ = gae(concat(three_steps(end), follower))
    np.testing.assert_allclose(advantages, [*expected, 14.5], rtol=1e-5)


def discounted_returns(batch, gamma):
    """Independent reference: sum of discounted rewards, bootstrapped at truncated ends."""
    returns = np.empty(len(batch["rewards"]))
    running = 0.0
    for t in reversed(range(len(returns))):
        if batch["terminateds"][t]:
            running = 0.0
        elif batch["truncateds"][t]:
            running = batch["next_values"][t]
        running = batch["rewards"][t] + gamma * running
        returns[t] = running
    return returns


def random_batch(seed):
    rng = np.random.default_rng(seed)
    lengths, ends = [4, 1, 6, 3], ["terminated", "truncated", "truncated", "terminated"]
    parts = []
    for n, end in zip(lengths, ends):
        values = rng.normal(size=n + 1)  # next_values continue the values inside a segment
        parts.append(segment(rng.normal(size=n), values[:-1], values[1:], end))
    return concat(*parts)


@pytest.mark.parametrize("seed", [0, 1])
def test_gae_with_lambda_one_is_discounted_return_minus_value(seed):
    batch = random_batch(seed)
    advantages, targets = gae(batch, lambda_=1.0)
    returns = discounted_returns(batch, GAMMA)
    np.testing.assert_allclose(advantages, returns - batch["values"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(targets, returns, rtol=1e-4, atol=1e-5)


def test_gae_with_lambda_zero_is_one_step_td_error():
    batch = random_batch(2)
    advantages, _ = gae(batch, lambda_=0.0)
    bootstrap = np.where(batch["terminateds"], 0.0, batch["next_values"])
    np.testing.assert_allclose(advantages, batch["rewards"] + GAMMA * bootstrap - batch["values"], rtol=1e-5)


# ---------------------------------------------------------------------------- V-trace
def vtrace(batch, behaviour_p, target_p, gamma=GAMMA, **thresholds):
    return compute_vtrace(np.log(behaviour_p), np.log(target_p), batch["rewards"], batch["values"],
                          batch["next_values"], batch["terminateds"], batch["truncateds"], gamma, **thresholds)


# Three steps of three_steps(): rho = target / behaviour = [2, 0.5, 1]; clipped at 1: [1, 0.5, 1] (c alike).
# TD errors as above (1.4, 2.35, then 1.5 terminal or 3.3 truncated), times the clipped rho:
#   terminal:  corrections 1.5;  1.175 + .9*.5*1.5 = 1.85;  1.4 + .9*1*1.85 = 3.065   -> vs = [3.565, 2.85, 3.0]
#   truncated: corrections 3.3;  1.175 + .9*.5*3.3 = 2.66;  1.4 + .9*2.66 = 3.794     -> vs = [4.294, 3.66, 4.8]
# Advantages rho_pg * (r + .9 * vs_next - V), vs_next = [vs1, vs2, 0 or the bootstrap value 2.0]:
#   terminal:  [1 + 2.565 - .5, .5 * (2 + 2.7 - 1), 3 - 1.5] = [3.065, 1.85, 1.5]
#   truncated: [1 + 3.294 - .5, .5 * (2 + 4.32 - 1), 3 + 1.8 - 1.5] = [3.794, 2.66, 3.3]
BEHAVIOUR_P, TARGET_P = np.array([0.5, 0.5, 0.5]), np.array([1.0, 0.25, 0.5])


@pytest.mark.parametrize("end, targets, advantages", [
    ("terminated", [3.565, 2.85, 3.0], [3.065, 1.85, 1.5]),
    ("truncated", [4.294, 3.66, 4.8], [3.794, 2.66, 3.3]),
])
def test_vtrace_hand_computed(end, targets, advantages):
    vs, pg_advantages = vtrace(three_steps(end), BEHAVIOUR_P, TARGET_P)
    np.testing.assert_allclose(vs, targets, rtol=1e-5)
    np.testing.assert_allclose(pg_advantages, advantages, rtol=1e-5)


def test_vtrace_without_clipping_uses_the_raw_ratios():
    # rho = c = [2, 0.5, 1]: corrections 1.5; 1.85; 2 * 1.4 + .9 * 2 * 1.85 = 6.13; advantage 2 * (1 + 2.565 - .5)
    vs, pg_advantages = vtrace(three_steps("terminated"), BEHAVIOUR_P, TARGET_P, clip_rho_threshold=None,
                               clip_pg_rho_threshold=None, clip_c_threshold=None)
    np.testing.assert_allclose(vs, [6.63, 2.85, 3.0], rtol=1e-5)
    np.testing.assert_allclose(pg_advantages, [6.13, 1.85, 1.5], rtol=1e-5)


def test_vtrace_pg_threshold_clips_only_the_advantages():
    batch = three_steps("terminated")
    vs, clipped = vtrace(batch, BEHAVIOUR_P, TARGET_P)
    same_vs, unclipped = vtrace(batch, BEHAVIOUR_P, TARGET_P, clip_pg_rho_threshold=None)
    np.testing.assert_allclose(vs, same_vs)
    np.testing.assert_allclose(unclipped, clipped * [2.0, 1.0, 1.0], rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_vtrace_on_policy_equals_lambda_one_gae_and_n_step_returns(seed):
    """With behaviour == target policy every rho is 1: the targets are the discounted returns
    to each segment's end (bootstrapped at truncations), the advantages GAE(lambda=1)'s."""
    batch = random_batch(seed)
    probabilities = np.random.default_rng(seed).uniform(0.1, 1.0, size=len(batch["rewards"]))
    vs, pg_advantages = vtrace(batch, probabilities, probabilities)
    gae_advantages, gae_targets = gae(batch, lambda_=1.0)
    np.testing.assert_allclose(vs, discounted_returns(batch, GAMMA), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vs, gae_targets, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pg_advantages, gae_advantages, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- explained variance
TARGETS = np.array([1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("targets, predictions, expected", [
    (TARGETS, TARGETS, 1.0),
    (TARGETS, np.full(4, TARGETS.mean()), 0.0),
    (TARGETS, TARGETS + 5.0, 1.0),  # a constant offset does not count: variance only
    (TARGETS, np.array([2.0, 2.0, 3.0, 3.0]), 1.0 - 0.5 / 1.25),  # Var([-1, 0, 0, 1]) = 0.5
    (TARGETS, -10.0 * TARGETS, -1.0),  # clipped at -1
    (np.full(4, 3.0), TARGETS, -1.0),  # targets that do not vary
], ids=["perfect", "mean", "offset", "partial", "clipped", "constant-targets"])
def test_explained_variance(targets, predictions, expected):
    assert explained_variance(targets, predictions) == pytest.approx(expected)
