"""Noisy linear layers (Fortunato et al., 2018, factorised Gaussian noise) for exploring DQN.

A noisy layer's weights are ``mu + sigma * noise``; ``sigma`` is learned, so the network
decides how much to explore, state by state, without an epsilon schedule. The noise is
drawn afresh on every forward pass while noise is on, and left out (weights = ``mu``) while
it is off: acting greedily and evaluating use the mean network.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _factorised(size: int, device: torch.device) -> torch.Tensor:
    """f(x) = sign(x) sqrt(|x|) of standard normal draws."""
    draws = torch.randn(size, device=device)
    return draws.sign() * draws.abs().sqrt()


class NoisyLinear(nn.Module):
    """y = (mu_w + sigma_w * eps_out eps_in^T) x + mu_b + sigma_b * eps_out."""

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 / math.sqrt(in_features)))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 / math.sqrt(in_features)))
        self.noise_on = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.noise_on:
            return F.linear(x, self.weight_mu, self.bias_mu)
        eps_in = _factorised(self.in_features, x.device)
        eps_out = _factorised(self.out_features, x.device)
        weight = self.weight_mu + self.weight_sigma * torch.outer(eps_out, eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * eps_out)
