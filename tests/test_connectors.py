"""FlattenObservations and the per-agent ObservationPipeline (mask splitting + connector)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from marl_arena.connectors import FlattenObservations
from marl_arena.runners.observation_pipeline import ObservationPipeline

flatten = FlattenObservations()

BOX = spaces.Box(-1.0, 1.0, (2, 3), np.float32)
NESTED = spaces.Dict({
    "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
    "inv": spaces.Tuple((spaces.Discrete(2), spaces.MultiBinary(3))),
})


@pytest.mark.parametrize("space, observations, expected", [
    (spaces.Discrete(3), [2, 0], [[0, 0, 1], [1, 0, 0]]),
    (spaces.Discrete(3, start=-1), [-1, 1], [[1, 0, 0], [0, 0, 1]]),
    (spaces.MultiDiscrete([3, 2]), [[1, 0], [2, 1]], [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1]]),
    # a MultiDiscrete may start elsewhere than 0, as Discrete may: the lowest value is one-hot index 0
    (spaces.MultiDiscrete([3, 2], start=[1, -1]), [[1, -1], [3, 0]], [[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]]),
    (BOX, [np.arange(6).reshape(2, 3)], [[0, 1, 2, 3, 4, 5]]),
    (spaces.MultiBinary(3), [[1, 0, 1]], [[1, 0, 1]]),
    # gymnasium sorts Dict keys: "a" comes first
    (spaces.Dict({"b": spaces.Discrete(2), "a": spaces.Box(0, 5, (1,))}), [{"b": 1, "a": [4.0]}], [[4, 0, 1]]),
    (spaces.Tuple((spaces.Discrete(2), spaces.Box(0, 5, (2,)))), [(0, [3.0, 2.0])], [[1, 0, 3, 2]]),
    (NESTED, [{"pos": [0.5, -0.5], "inv": (1, [0, 1, 1])}], [[0, 1, 0, 1, 1, 0.5, -0.5]]),
], ids=["discrete", "discrete-start", "multidiscrete", "multidiscrete-start", "box-2d", "multibinary", "dict",
        "tuple", "nested"])
def test_flatten_values(space, observations, expected):
    out = flatten.transform_batch(space, observations)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.asarray(expected, np.float32))


@pytest.mark.parametrize("space", [
    spaces.Discrete(4), spaces.MultiDiscrete([2, 3, 4]), BOX, spaces.MultiBinary((2, 2)), NESTED,
    spaces.Tuple((NESTED, spaces.Discrete(5))),
], ids=["discrete", "multidiscrete", "box-2d", "multibinary-2d", "nested-dict", "nested-tuple"])
def test_transform_space_matches_transformed_batch(space):
    space.seed(0)
    observations = [space.sample() for _ in range(5)]
    out = flatten.transform_batch(space, observations)
    flat_space = flatten.transform_space(space)
    assert out.shape == (5, *flat_space.shape)
    assert all(flat_space.contains(row) for row in out)


@pytest.mark.parametrize("space", [spaces.Text(5), spaces.Sequence(spaces.Discrete(2))], ids=["text", "sequence"])
def test_unflattenable_space_is_named_in_the_error(space):
    with pytest.raises(ValueError, match=type(space).__name__):
        flatten.transform_space(space)


# ---------------------------------------------------------------------------- ObservationPipeline
MASK = spaces.Box(0, 1, (3,), np.int8)


def masked(**parts):
    return spaces.Dict({**parts, "action_mask": MASK})


@pytest.mark.parametrize("raw_space, observations, rows", [
    (masked(observation=spaces.Box(-5, 5, (2,), np.float32)),
     [{"observation": [1.0, 2.0], "action_mask": [1, 0, 1]}, {"observation": [3.0, 4.0], "action_mask": [0, 1, 0]}],
     [[1, 2], [3, 4]]),
    (masked(observation=spaces.Discrete(3)),
     [{"observation": 2, "action_mask": [1, 0, 1]}, {"observation": 0, "action_mask": [0, 1, 0]}],
     [[0, 0, 1], [1, 0, 0]]),
    (masked(observation=spaces.Discrete(2), turn=spaces.Discrete(2)),  # extra keys stay, flattened
     [{"observation": 1, "turn": 0, "action_mask": [1, 0, 1]}, {"observation": 0, "turn": 1, "action_mask": [0, 1, 0]}],
     [[0, 1, 1, 0], [1, 0, 0, 1]]),
], ids=["box", "discrete", "extra-keys"])
def test_pipeline_splits_off_the_action_mask(raw_space, observations, rows):
    pipeline = ObservationPipeline(raw_space, None)
    out, masks = pipeline.process(observations)
    np.testing.assert_array_equal(out, rows)
    np.testing.assert_array_equal(masks, [[1, 0, 1], [0, 1, 0]])
    assert masks.dtype == np.float32
    assert out.shape[1:] == pipeline.observation_space.shape


@pytest.mark.parametrize("raw_space, observation, row", [
    (spaces.Box(-1, 1, (3,), np.float32), [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),
    (spaces.Discrete(3), 1, [0, 1, 0]),
    (BOX, np.ones((2, 3)), np.ones(6)),
], ids=["flat-box-as-is", "discrete-auto-flattened", "2d-box-auto-flattened"])
def test_pipeline_without_mask(raw_space, observation, row):
    pipeline = ObservationPipeline(raw_space, None)
    out, masks = pipeline.process([observation])
    assert masks is None
    np.testing.assert_allclose(out, [row], rtol=1e-6)
    assert out.dtype == np.float32 and out.shape[1:] == pipeline.observation_space.shape


def test_pipeline_uses_a_given_connector_on_the_inner_space():
    pipeline = ObservationPipeline(masked(observation=spaces.Box(-1, 1, (3,), np.float32)), flatten)
    assert pipeline.connector is flatten and pipeline.observation_space.shape == (3,)
    out, _ = pipeline.process([{"observation": [0.5, 0.0, -0.5], "action_mask": [1, 1, 1]}])
    np.testing.assert_array_equal(out, [[0.5, 0.0, -0.5]])
