"""SACConfig: soft actor-critic's fields, with RLlib's names (continuous and discrete actions)."""

from __future__ import annotations

import numbers
from typing import Any

from marl_arena.algorithms.algorithm_config import NotProvided, _check_number
from marl_arena.algorithms.off_policy_config import OffPolicyConfig


class SACConfig(OffPolicyConfig):
    """Soft actor-critic: squashed Gaussian policy for Box actions, discrete SAC for Discrete ones.

    ``lr`` is not used: the policy, the critics and the temperature each have their own
    learning rate (``actor_lr``, ``critic_lr``, ``alpha_lr``), as in RLlib.
    """

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.sac.sac import SAC

            algo_class = SAC
        super().__init__(algo_class)
        self.train_batch_size = 256
        """Transitions per gradient step, sampled from the replay buffer."""
        self.rollout_fragment_length = 1
        """Env steps per sub-env per training step: one gradient step per env step by default."""
        self.replay_buffer_config: dict[str, Any] = {"type": "ReplayBuffer", "capacity": 100_000}
        self.tau = 5e-3
        self.num_steps_sampled_before_learning_starts = 1000
        self.model_config = {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"}
        self.twin_q = True
        """Two critics and the minimum of their targets (clipped double Q), against overestimation."""
        self.initial_alpha = 1.0
        """The temperature alpha (weight of the entropy bonus) before it is learned."""
        self.target_entropy: float | str = "auto"
        """The policy entropy alpha steers towards. "auto": -dim(A) for Box actions; for discrete
        ones ``target_entropy_scale`` times log(number of legal actions), per state."""
        self.target_entropy_scale = 0.5
        """Discrete actions with target_entropy="auto": the share of the uniform policy's entropy to keep."""
        self.actor_lr = 3e-4
        """Learning rate of the policy."""
        self.critic_lr = 3e-4
        """Learning rate of the critics."""
        self.alpha_lr = 3e-4
        """Learning rate of log(alpha)."""

    def training(self, *, twin_q: bool = NotProvided, initial_alpha: float = NotProvided,
                 target_entropy: float | str = NotProvided, target_entropy_scale: float = NotProvided,
                 actor_lr: float = NotProvided, critic_lr: float = NotProvided, alpha_lr: float = NotProvided,
                 **common) -> "SACConfig":
        """SAC's fields; replay and targets (replay_buffer_config, tau, n_step, ...) as in OffPolicyConfig,
        the common ones (gamma, train_batch_size, grad_clip, ...) as in AlgorithmConfig."""
        super().training(**common)
        return self._set(twin_q=twin_q, initial_alpha=initial_alpha, target_entropy=target_entropy,
                         target_entropy_scale=target_entropy_scale, actor_lr=actor_lr, critic_lr=critic_lr,
                         alpha_lr=alpha_lr)

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.twin_q, bool):
            raise ValueError(f"twin_q={self.twin_q!r} is not allowed: it must be True or False.")
        _check_number(self, "initial_alpha", low=0.0, low_inclusive=False)
        _check_number(self, "target_entropy_scale", low=0.0, high=1.0)
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            _check_number(self, name, low=0.0, low_inclusive=False)
        target = self.target_entropy
        if target != "auto" and (not isinstance(target, numbers.Real) or isinstance(target, bool)
                                 or not float("-inf") < target < float("inf")):
            raise ValueError(f"target_entropy={target!r} is not allowed: it must be 'auto' or a finite number.")
