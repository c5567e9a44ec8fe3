"""APPOConfig: IMPALA's fields plus APPO's clipped surrogate, target network and KL loss, with RLlib's names."""

from __future__ import annotations

from marl_arena.algorithms.algorithm_config import NotProvided, _check_int, _check_number
from marl_arena.algorithms.impala.impala_config import IMPALAConfig


class APPOConfig(IMPALAConfig):
    """Asynchronous PPO (IMPACT): PPO's clipped objective on V-trace advantages against a target policy."""

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.appo.appo import APPO

            algo_class = APPO
        super().__init__(algo_class)
        self.clip_param = 0.4
        """Probability-ratio clip range of the surrogate objective (ratio of the learner to the target policy)."""
        self.use_kl_loss = False
        """Add a KL(target || current) penalty, its coefficient adapted towards ``kl_target``."""
        self.kl_coeff = 1.0
        self.kl_target = 0.01
        self.target_network_update_freq = 2
        """Update the target policy (and adapt the KL coefficient) every this many times
        ``circular_buffer_num_batches * circular_buffer_iterations_per_batch`` updates (RLlib's unit,
        counted in updates rather than trained env steps)."""
        self.tau = 1.0
        """Target update theta' <- tau theta + (1 - tau) theta' (1: a copy)."""
        self.target_worker_clipping = 2.0
        """Clip of pi_behaviour / pi_target in the surrogate's importance ratio."""
        self.circular_buffer_num_batches = 8
        self.circular_buffer_iterations_per_batch = 2
        self.learner_queue_size = 16

    def training(self, *, clip_param: float = NotProvided, use_kl_loss: bool = NotProvided,
                 kl_coeff: float = NotProvided, kl_target: float = NotProvided,
                 target_network_update_freq: int = NotProvided, tau: float = NotProvided,
                 target_worker_clipping: float = NotProvided, **impala) -> "APPOConfig":
        """APPO's fields; IMPALA's (vtrace, vf_loss_coeff, circular buffer ...) and the common ones as there."""
        super().training(**impala)
        return self._set(clip_param=clip_param, use_kl_loss=use_kl_loss, kl_coeff=kl_coeff, kl_target=kl_target,
                         target_network_update_freq=target_network_update_freq, tau=tau,
                         target_worker_clipping=target_worker_clipping)

    @property
    def target_update_interval(self) -> int:
        """Learner updates between target-network updates."""
        return (self.target_network_update_freq * self.circular_buffer_num_batches
                * self.circular_buffer_iterations_per_batch)

    def validate(self) -> None:
        super().validate()
        _check_number(self, "clip_param", low=0.0, low_inclusive=False)
        if not isinstance(self.use_kl_loss, bool):
            raise ValueError(f"use_kl_loss={self.use_kl_loss!r} is not allowed: it must be True or False.")
        _check_number(self, "kl_coeff", low=0.0)
        _check_number(self, "kl_target", low=0.0, low_inclusive=False)
        _check_int(self, "target_network_update_freq", minimum=1)
        _check_number(self, "tau", low=0.0, high=1.0, low_inclusive=False)
        _check_number(self, "target_worker_clipping", low=0.0, low_inclusive=False)
