"""DreamerV3's numerical pieces against values worked out by hand (see each comment)."""

import math

import pytest
import torch

from marl_arena.algorithms.dreamerv3.dreamer_math import (
    categorical_kl,
    kl_balanced_loss,
    lambda_returns,
    percentile_scale,
    symexp,
    symlog,
    symlog_bins,
    two_hot,
    two_hot_decode,
    two_hot_loss,
    unimix,
)


def test_symlog_and_symexp_by_hand():
    x = torch.tensor([0.0, 1.0, -(math.e - 1.0), 1000.0])
    # log(1 + 0) = 0; log 2; -log(e) = -1; log(1001)
    assert torch.allclose(symlog(x), torch.tensor([0.0, math.log(2.0), -1.0, math.log(1001.0)]))
    # symexp(2) = e^2 - 1, symexp(-1) = -(e - 1)
    assert torch.allclose(symexp(torch.tensor([2.0, -1.0, 0.0])), torch.tensor([math.e ** 2 - 1.0, -(math.e - 1.0), 0.0]))
    y = torch.linspace(-500.0, 500.0, 101)
    assert torch.allclose(symexp(symlog(y)), y, rtol=1e-5, atol=1e-4)


def test_two_hot_encoding_by_hand():
    bins = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    encoded = two_hot(torch.tensor([0.25, -5.0, 2.0, 1.0, 1.5]), bins)
    expected = torch.tensor([
        [0.0, 0.75, 0.25, 0.0],   # 0.25 sits a quarter of the way from bin 0 to bin 1
        [1.0, 0.0, 0.0, 0.0],     # below the range: all on the first bin
        [0.0, 0.0, 0.0, 1.0],     # the last bin exactly
        [0.0, 0.0, 1.0, 0.0],     # an inner bin exactly
        [0.0, 0.0, 0.5, 0.5],
    ])
    assert torch.allclose(encoded, expected)
    # The weights reproduce the value inside the range.
    inside = torch.tensor([-0.3, 0.0, 0.7, 1.99])
    assert torch.allclose((two_hot(inside, bins) * bins).sum(-1), inside)


def test_two_hot_decoding_and_loss_by_hand():
    bins = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    logits = torch.log(torch.tensor([1e-12, 0.75, 0.25, 1e-12]))
    # E[bins] = 0.25 in symlog space, so the prediction is symexp(0.25) = e^0.25 - 1
    assert torch.allclose(two_hot_decode(logits, bins), torch.tensor(math.exp(0.25) - 1.0), atol=1e-6)
    # target e - 1 has symlog 1.0: all weight on bin 2, loss = -log softmax(logits)[2]
    logits = torch.tensor([0.3, -0.2, 1.1, 0.0])
    loss = two_hot_loss(logits, torch.tensor(math.e - 1.0), bins)
    assert torch.allclose(loss, -torch.log_softmax(logits, -1)[2])
    default = symlog_bins()
    assert len(default) == 255 and default[0] == -20.0 and default[-1] == 20.0


def test_percentile_return_normalisation_by_hand():
    returns = torch.linspace(0.0, 100.0, 101)  # percentiles 5 and 95 are 5 and 95
    scale, low, high = percentile_scale(returns, torch.tensor(0.0), torch.tensor(0.0), 0.9, first=True)
    assert (float(low), float(high), float(scale)) == pytest.approx((5.0, 95.0, 90.0))
    # With an EMA of decay 0.9 from (0, 10): low 0.9*0 + 0.1*5 = 0.5, high 0.9*10 + 0.1*95 = 18.5
    scale, low, high = percentile_scale(returns, torch.tensor(0.0), torch.tensor(10.0), 0.9)
    assert (float(low), float(high), float(scale)) == pytest.approx((0.5, 18.5, 18.0))
    # A range below 1 is floored at 1: small returns are not blown up.
    scale, _, _ = percentile_scale(torch.linspace(0.0, 0.5, 11), torch.tensor(0.0), torch.tensor(0.0), 0.9, first=True)
    assert float(scale) == 1.0


def test_lambda_returns_by_hand():
    rewards = torch.tensor([1.0, 2.0])
    continues = torch.tensor([1.0, 0.0])
    values = torch.tensor([0.0, 10.0, 20.0])
    # lam 0.5, gamma 0.5: R1 = 2 + 0.5*0*(...) = 2; R0 = 1 + 0.5*(0.5*10 + 0.5*2) = 4
    assert torch.allclose(lambda_returns(rewards, continues, values, 0.5, 0.5), torch.tensor([4.0, 2.0]))
    # lam 1 (Monte Carlo): R0 = 1 + 0.5*2 = 2; lam 0 (one-step TD): R0 = 1 + 0.5*10 = 6
    assert torch.allclose(lambda_returns(rewards, continues, values, 0.5, 1.0), torch.tensor([2.0, 2.0]))
    assert torch.allclose(lambda_returns(rewards, continues, values, 0.5, 0.0), torch.tensor([6.0, 2.0]))
    # Without a terminal, the bootstrap reaches through: R1 = 2 + 0.5*20 = 12 (lam irrelevant at the end)
    assert torch.allclose(lambda_returns(rewards, torch.ones(2), values, 0.5, 1.0), torch.tensor([7.0, 12.0]))
    with pytest.raises(ValueError, match="values needs 3 rows"):
        lambda_returns(rewards, continues, values[:2], 0.5, 0.5)


def test_kl_balancing_with_free_nats_by_hand():
    post = torch.log(torch.tensor([[[0.5, 0.5]]])).requires_grad_(True)
    prior = torch.log(torch.tensor([[[0.9, 0.1]]])).requires_grad_(True)
    # KL(post || prior) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = 0.510826
    kl = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(categorical_kl(post, prior).detach()) == pytest.approx(kl, abs=1e-6)
    loss, dyn, rep = kl_balanced_loss(post, prior, free_nats=0.1, dyn_scale=0.5, rep_scale=0.1)
    assert float(loss.detach()) == pytest.approx(0.6 * kl, abs=1e-6)
    assert float(dyn.detach()) == pytest.approx(kl, abs=1e-6) and float(rep.detach()) == pytest.approx(kl, abs=1e-6)
    # Balancing: the dynamics term trains only the prior, the representation term only the posterior.
    only_dyn, _, _ = kl_balanced_loss(post, prior, free_nats=0.0, dyn_scale=1.0, rep_scale=0.0)
    post_grad, prior_grad = torch.autograd.grad(only_dyn.sum(), [post, prior])
    assert torch.all(post_grad == 0) and prior_grad.abs().sum() > 0
    only_rep, _, _ = kl_balanced_loss(post, prior, free_nats=0.0, dyn_scale=0.0, rep_scale=1.0)
    post_grad, prior_grad = torch.autograd.grad(only_rep.sum(), [post, prior])
    assert torch.all(prior_grad == 0) and post_grad.abs().sum() > 0
    # Below 1 free nat both terms are clipped to 1: loss 0.5 + 0.1, and no gradient at all.
    loss, _, _ = kl_balanced_loss(post, prior, free_nats=1.0)
    assert float(loss.detach()) == pytest.approx(0.6)
    grads = torch.autograd.grad(loss.sum(), [post, prior])
    assert all(torch.all(g == 0) for g in grads)


def test_unimix_by_hand():
    logits = torch.tensor([0.0, -1e9])
    probs = unimix(logits, 0.01).exp()
    # 0.99 * [1, 0] + 0.01 * [0.5, 0.5]
    assert torch.allclose(probs, torch.tensor([0.995, 0.005]))
    assert torch.equal(unimix(logits, 0.0), logits)
