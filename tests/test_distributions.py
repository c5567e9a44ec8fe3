"""Action distributions against torch.distributions, and ActorCriticModule's outputs and masks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, TanhTransform

from marl_arena.core import ActorCriticModule, Categorical, Columns, DiagGaussian, distribution_for_space
from marl_arena.core.actor_critic import apply_action_mask

BATCH, N_ACTIONS = 64, 5


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def random_mask(gen, rows=BATCH, n=N_ACTIONS):
    """A 0/1 mask with at least one legal action per row."""
    mask = (torch.rand(rows, n, generator=gen) < 0.5).float()
    mask[torch.arange(rows), torch.randint(n, (rows,), generator=gen)] = 1.0
    return mask


def assert_legal(actions, mask):
    assert (mask.gather(-1, actions.long().unsqueeze(-1)) == 1).all()


@pytest.fixture
def masked_logits(gen):
    """Logits whose illegal entries are the largest, so a broken mask shows up at once."""
    mask = random_mask(gen)
    logits = torch.randn(BATCH, N_ACTIONS, generator=gen) + 10.0 * (1 - mask)
    return apply_action_mask(logits, {Columns.ACTION_MASK: mask}), logits, mask


# ---------------------------------------------------------------------------- Categorical
def test_categorical_never_samples_or_picks_masked_actions(masked_logits):
    masked, _, mask = masked_logits
    dist = Categorical(masked)
    torch.manual_seed(0)
    for _ in range(200):
        assert_legal(dist.sample(), mask)
    assert_legal(dist.deterministic_sample(), mask)


def test_categorical_matches_torch_on_legal_actions(masked_logits):
    masked, raw, mask = masked_logits
    reference = torch.distributions.Categorical(logits=raw.masked_fill(mask == 0, float("-inf")))
    dist = Categorical(masked)
    actions = reference.sample()
    torch.testing.assert_close(dist.logp(actions), reference.log_prob(actions))
    torch.testing.assert_close(dist.entropy(), reference.entropy())


def test_categorical_unmasked_matches_torch(gen):
    logits = torch.randn(BATCH, N_ACTIONS, generator=gen)
    other = torch.randn(BATCH, N_ACTIONS, generator=gen)
    reference, reference_other = (torch.distributions.Categorical(logits=x) for x in (logits, other))
    actions = torch.randint(N_ACTIONS, (BATCH,), generator=gen)
    torch.testing.assert_close(Categorical(logits).logp(actions), reference.log_prob(actions))
    torch.testing.assert_close(Categorical(logits).entropy(), reference.entropy())
    torch.testing.assert_close(Categorical(logits).kl(Categorical(other)),
                               torch.distributions.kl_divergence(reference, reference_other))


def neg_inf_mask(logits, mask):
    return logits.masked_fill(mask == 0, float("-inf"))


@pytest.mark.parametrize("mask_logits", [lambda x, m: apply_action_mask(x, {Columns.ACTION_MASK: m}), neg_inf_mask],
                         ids=["apply_action_mask", "-inf"])
def test_categorical_entropy_and_kl_are_finite_with_masks(gen, mask_logits):
    mask = random_mask(gen)
    dist = Categorical(mask_logits(torch.randn(BATCH, N_ACTIONS, generator=gen), mask))
    other = Categorical(mask_logits(torch.randn(BATCH, N_ACTIONS, generator=gen), mask))
    reference = torch.distributions.Categorical(logits=neg_inf_mask(dist.logits, mask))
    torch.testing.assert_close(dist.entropy(), reference.entropy())
    kl = dist.kl(other)
    assert torch.isfinite(kl).all() and (kl >= -1e-6).all()
    torch.testing.assert_close(dist.kl(dist), torch.zeros(BATCH))


# ---------------------------------------------------------------------------- Gaussians
def gaussian_inputs(gen, dim=3):
    mean = torch.randn(BATCH, dim, generator=gen)
    log_std = torch.rand(BATCH, dim, generator=gen) - 1.0  # std in [e^-1, 1]
    return torch.cat([mean, log_std], -1), Normal(mean, log_std.exp())


def test_diag_gaussian_matches_torch_normal(gen):
    inputs, normal = gaussian_inputs(gen)
    other_inputs, other_normal = gaussian_inputs(gen)
    dist = DiagGaussian(inputs)
    actions = torch.randn(BATCH, 3, generator=gen)
    torch.testing.assert_close(dist.logp(actions), normal.log_prob(actions).sum(-1))
    torch.testing.assert_close(dist.entropy(), normal.entropy().sum(-1))
    torch.testing.assert_close(dist.kl(DiagGaussian(other_inputs)),
                               torch.distributions.kl_divergence(normal, other_normal).sum(-1))
    torch.testing.assert_close(dist.deterministic_sample(), normal.mean)


BOUNDED = gym.spaces.Box(np.array([-1.0, 0.0, 2.0], np.float32), np.array([1.0, 4.0, 2.5], np.float32))


def squashed(inputs):
    factory, width = distribution_for_space(BOUNDED, squashed=True)
    assert width == 6
    return factory(inputs)


def test_squashed_gaussian_samples_stay_inside_bounds(gen):
    inputs, _ = gaussian_inputs(gen)
    extreme = torch.cat([50.0 * torch.sign(inputs[:, :3]), inputs[:, 3:]], -1)  # tanh saturates
    low, high = torch.as_tensor(BOUNDED.low), torch.as_tensor(BOUNDED.high)
    torch.manual_seed(0)
    for dist in (squashed(inputs), squashed(extreme)):
        for actions in (dist.sample(), dist.rsample_with_logp()[0], dist.deterministic_sample()):
            assert ((actions >= low) & (actions <= high)).all()


def test_squashed_gaussian_logp_matches_torch_tanh_transform(gen):
    """In float64, so that the check is of the maths, not of float32 rounding near the bounds."""
    inputs, _ = gaussian_inputs(gen)
    inputs = inputs.double()
    mean, log_std = inputs.chunk(2, -1)
    low, high = (torch.as_tensor(x, dtype=torch.float64) for x in (BOUNDED.low, BOUNDED.high))
    reference = Independent(TransformedDistribution(
        Normal(mean, log_std.exp()), [TanhTransform(), AffineTransform(loc=(low + high) / 2, scale=(high - low) / 2)]), 1)
    torch.manual_seed(0)
    dist = squashed(inputs)
    actions, logp = dist.rsample_with_logp()
    torch.testing.assert_close(dist.logp(actions), logp, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(logp, reference.log_prob(actions), atol=1e-6, rtol=1e-6)
    assert torch.isfinite(dist.entropy()).all() and torch.isfinite(dist.kl(squashed(inputs.flip(0)))).all()


@pytest.mark.parametrize("space, squash", [
    (gym.spaces.MultiDiscrete([2, 3]), False),
    (gym.spaces.MultiBinary(3), False),
    (gym.spaces.Box(0, 5, (2,), np.int64), False),
    (gym.spaces.Dict({"a": gym.spaces.Discrete(2)}), False),
], ids=["multidiscrete", "multibinary", "int-box", "dict"])
def test_unsupported_action_space_is_named(space, squash):
    with pytest.raises(ValueError, match="supported are Discrete and float Box") as error:
        distribution_for_space(space, squashed=squash)
    assert str(space) in str(error.value)


def test_squashing_needs_a_bounded_box():
    with pytest.raises(ValueError, match="bounded Box"):
        distribution_for_space(gym.spaces.Box(-np.inf, np.inf, (2,), np.float32), squashed=True)


# ---------------------------------------------------------------------------- ActorCriticModule
OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)


def module(action_space, **model_config):
    torch.manual_seed(0)
    return ActorCriticModule(OBS_SPACE, action_space, {"fcnet_hiddens": [16], **model_config})


@pytest.mark.parametrize("vf_share_layers", [False, True])
@pytest.mark.parametrize("forward", ["forward_inference", "forward_exploration", "forward_train"])
def test_masked_forward_never_yields_an_illegal_action(gen, forward, vf_share_layers):
    net = module(gym.spaces.Discrete(N_ACTIONS), vf_share_layers=vf_share_layers)
    mask = random_mask(gen)
    batch = {Columns.OBS: torch.rand(BATCH, 4, generator=gen) * 2 - 1, Columns.ACTION_MASK: mask}
    dist = net.action_distribution(getattr(net, forward)(batch)[Columns.ACTION_DIST_INPUTS])
    torch.manual_seed(0)
    assert_legal(dist.deterministic_sample(), mask)
    for _ in range(50):
        assert_legal(dist.sample(), mask)


@pytest.mark.parametrize("vf_share_layers", [False, True])
@pytest.mark.parametrize("action_space, extra, dist_width, action_shape", [
    (gym.spaces.Discrete(3), {}, 3, ()),
    (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), {}, 4, (2,)),
    (gym.spaces.Box(-1.0, 1.0, (2,), np.float32), {"free_log_std": True}, 4, (2,)),
], ids=["discrete", "box", "box-free-log-std"])
def test_module_output_shapes(gen, action_space, extra, dist_width, action_shape, vf_share_layers):
    net = module(action_space, vf_share_layers=vf_share_layers, **extra)
    obs = torch.rand(7, 4, generator=gen)
    out = net.forward_train({Columns.OBS: obs})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (7, dist_width)
    assert out[Columns.VF_PREDS].shape == (7,)
    torch.testing.assert_close(net.compute_values(obs), out[Columns.VF_PREDS])
    assert net.action_distribution(out[Columns.ACTION_DIST_INPUTS]).sample().shape == (7, *action_shape)
    inference = net.forward_inference({Columns.OBS: obs})
    torch.testing.assert_close(inference[Columns.ACTION_DIST_INPUTS], out[Columns.ACTION_DIST_INPUTS])


@pytest.mark.parametrize("vf_share_layers", [False, True])
def test_value_loss_reaches_the_encoder_only_when_shared(gen, vf_share_layers):
    net = module(gym.spaces.Discrete(3), vf_share_layers=vf_share_layers)
    net.compute_values(torch.rand(5, 4, generator=gen)).sum().backward()
    encoder_grads = [p.grad for p in net.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in encoder_grads) == vf_share_layers
    assert (net.vf_encoder is None) == vf_share_layers


@pytest.mark.parametrize("call", ["forward_train", "compute_values"])
def test_inference_only_module_has_no_value_head(gen, call):
    net = ActorCriticModule(OBS_SPACE, gym.spaces.Discrete(3), {"fcnet_hiddens": [8]}, inference_only=True)
    obs = torch.rand(2, 4, generator=gen)
    assert net.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].shape == (2, 3)
    with pytest.raises(RuntimeError, match="inference_only"):
        getattr(net, call)({Columns.OBS: obs} if call == "forward_train" else obs)
