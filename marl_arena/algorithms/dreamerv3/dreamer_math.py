"""DreamerV3's numerical pieces as plain functions (Hafner et al. 2023, section 2 and appendix).

Each one is tested against hand-computed values (tests/test_dreamerv3_math.py):

* ``symlog``/``symexp``: squash targets of any scale so one loss fits rewards of 1 and 1000;
* ``two_hot``/``two_hot_decode``: regression as classification over bins in symlog space;
* ``percentile_scale``: the 5th-to-95th percentile return range, EMA-smoothed, floored at 1;
* ``lambda_returns``: TD(lambda) targets along an imagined trajectory;
* ``kl_balanced_loss``: the dynamics and representation KL terms, each clipped below by the
  free nats;
* ``unimix``: 1% uniform mixed into categorical probabilities, so no class has probability 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): identity near 0, logarithmic for large magnitudes."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """The inverse of ``symlog``: sign(x) * (exp(|x|) - 1)."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


def symlog_bins(num_bins: int = 255, low: float = -20.0, high: float = 20.0) -> torch.Tensor:
    """Equally spaced bin centres in symlog space (the paper's 255 bins over [-20, 20])."""
    return torch.linspace(low, high, num_bins)


def two_hot(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Weights on the two bins around each ``x`` that interpolate it linearly; out-of-range
    values put all weight on the end bin. Shape ``x.shape + (len(bins),)``.

    With bins b_k <= x < b_{k+1}: weight (b_{k+1} - x) / (b_{k+1} - b_k) on k, the rest on k + 1,
    so ``(two_hot(x, bins) * bins).sum(-1) == x`` inside the range.
    """
    x = x.clamp(bins[0], bins[-1])
    upper = torch.searchsorted(bins, x.contiguous(), right=True).clamp(1, len(bins) - 1)
    lower = upper - 1
    low_value, high_value = bins[lower], bins[upper]
    high_weight = ((x - low_value) / (high_value - low_value)).clamp(0.0, 1.0)
    out = torch.zeros(*x.shape, len(bins), dtype=x.dtype, device=x.device)
    out.scatter_(-1, lower.unsqueeze(-1), (1.0 - high_weight).unsqueeze(-1))
    out.scatter_add_(-1, upper.unsqueeze(-1), high_weight.unsqueeze(-1))
    return out


def two_hot_decode(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """The prediction of a two-hot symlog head in the original scale: symexp(E_softmax[bins])."""
    return symexp((F.softmax(logits, dim=-1) * bins).sum(-1))


def two_hot_loss(logits: torch.Tensor, target: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between a head's bin logits and the two-hot encoding of symlog(target)."""
    return -(two_hot(symlog(target), bins) * F.log_softmax(logits, dim=-1)).sum(-1)


def unimix(logits: torch.Tensor, mix: float) -> torch.Tensor:
    """Logits of (1 - mix) * softmax(logits) + mix * uniform over the last axis."""
    if mix <= 0.0:
        return logits
    probs = F.softmax(logits, dim=-1)
    probs = (1.0 - mix) * probs + mix / logits.shape[-1]
    return torch.log(probs)


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of categoricals over the last axis, summed over the one before it (the latents)."""
    p_log = F.log_softmax(p_logits, dim=-1)
    q_log = F.log_softmax(q_logits, dim=-1)
    return (p_log.exp() * (p_log - q_log)).sum(-1).sum(-1)


def kl_balanced_loss(post_logits: torch.Tensor, prior_logits: torch.Tensor, free_nats: float = 1.0,
                     dyn_scale: float = 0.5, rep_scale: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``dyn_scale * max(free, KL(sg(post) || prior)) + rep_scale * max(free, KL(post || sg(prior)))``.

    Returns the per-step loss and the two clipped terms. The dynamics term trains the prior
    towards the posterior; the smaller representation term keeps the posterior predictable.
    Below ``free_nats`` a term has no gradient, so a well-predicted latent is left alone.
    """
    dyn = categorical_kl(post_logits.detach(), prior_logits).clamp(min=free_nats)
    rep = categorical_kl(post_logits, prior_logits.detach()).clamp(min=free_nats)
    return dyn_scale * dyn + rep_scale * rep, dyn, rep


def lambda_returns(rewards: torch.Tensor, continues: torch.Tensor, values: torch.Tensor,
                   gamma: float, lam: float) -> torch.Tensor:
    """TD(lambda) returns along the time axis 0 of an imagined trajectory.

    ``rewards[t]`` and ``continues[t]`` belong to the transition into state t + 1;
    ``values`` has one more row than ``rewards`` (the bootstrap at the end). The recursion,
    from the last step back: R_t = r_t + gamma c_t ((1 - lam) v_{t+1} + lam R_{t+1}), with
    R_H = v_H.
    """
    horizon = rewards.shape[0]
    if values.shape[0] != horizon + 1:
        raise ValueError(f"lambda_returns: values needs {horizon + 1} rows (one per state), got {values.shape[0]}.")
    out = [values[-1]]
    discounts = gamma * continues
    for t in reversed(range(horizon)):
        out.append(rewards[t] + discounts[t] * ((1.0 - lam) * values[t + 1] + lam * out[-1]))
    return torch.stack(out[::-1][:-1])


def percentile_scale(returns: torch.Tensor, low_ema: torch.Tensor, high_ema: torch.Tensor, decay: float,
                     low_q: float = 0.05, high_q: float = 0.95, first: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Update the EMAs of the returns' 5th and 95th percentiles; the scale is max(1, high - low).

    Returns ``(scale, new_low, new_high)``. ``first=True`` takes this batch's percentiles as
    they are (no EMA yet). Advantages are divided by the scale: large returns are shrunk to
    a range of about 1, small ones are left as they are (the floor), so sparse rewards are
    not blown up into noise.
    """
    flat = returns.detach().reshape(-1).float()
    low = torch.quantile(flat, low_q)
    high = torch.quantile(flat, high_q)
    if not first:
        low = decay * low_ema + (1.0 - decay) * low
        high = decay * high_ema + (1.0 - decay) * high
    scale = torch.clamp(high - low, min=1.0)
    return scale, low, high
