"""PPOConfig: PPO's training fields, with RLlib's names."""

from __future__ import annotations

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided, _check_number
from marl_arena.algorithms.schedules import check_schedule


class PPOConfig(AlgorithmConfig):
    """Proximal Policy Optimisation (clipped objective, GAE, optional adaptive KL penalty)."""

    supports_recurrent_modules = True
    scheduled_fields = ("lr", "entropy_coeff")

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.ppo.ppo import PPO

            algo_class = PPO
        super().__init__(algo_class)
        self.num_epochs = 10
        self.minibatch_size = 128
        self.lambda_ = 0.95
        """GAE lambda."""
        self.clip_param = 0.2
        """Probability-ratio clip range of the surrogate objective."""
        self.vf_clip_param = 10.0
        """Cap on each row's squared value error in the value loss (RLlib's meaning): rows
        beyond it give the value function no gradient, so a few outlying returns cannot
        dominate a shared trunk. With returns of large magnitude (Pendulum) raise it, or the
        value function learns only from the rows it already predicts well."""
        self.vf_loss_coeff = 1.0
        self.entropy_coeff = 0.0
        """Weight of the entropy bonus: a number, or a schedule ``[[env_steps, coeff], ...]`` as
        ``lr`` may be (``marl_arena.algorithms.schedules``; RLlib's form of both)."""
        self.use_kl_loss = True
        """Add an adaptive KL(old || new) penalty to the loss."""
        self.kl_coeff = 0.2
        """Initial KL penalty coefficient (adapted towards ``kl_target``)."""
        self.kl_target = 0.01
        self.overlap_sampling = False
        """Remote runners sample the next batch while the learner updates on this one.

        Faster iterations for one iteration of policy lag: each batch was sampled with the
        weights from before the previous update, so the probability ratios start away from 1
        and clip sooner. Without remote runners it changes nothing."""
        self.normalize_value_targets = False
        """The value head learns returns standardised by their running mean and std, and its
        outputs are scaled back for GAE (marlbenchmark/on-policy's ``use_valuenorm``, on by default
        in MAPPO; ``learners.value_norm``). Helps where returns change scale as the policy
        learns. ``vf_clip_param`` then caps the squared error of the normalised values. The value
        loss shrinks with it, and ``grad_clip`` clips policy and value gradients together, so a
        learning rate tuned without it may be too large with it."""
        self.value_norm_decay = 0.99999
        """Weight of the past in the normaliser's running moments, per train batch; the moments
        are debiased, so values near 1 average every batch so far nearly equally."""

    def training(self, *, lambda_: float = NotProvided, clip_param: float = NotProvided,
                 vf_clip_param: float = NotProvided, vf_loss_coeff: float = NotProvided,
                 entropy_coeff: float = NotProvided, use_kl_loss: bool = NotProvided,
                 kl_coeff: float = NotProvided, kl_target: float = NotProvided,
                 overlap_sampling: bool = NotProvided, normalize_value_targets: bool = NotProvided,
                 value_norm_decay: float = NotProvided, **common) -> "PPOConfig":
        """PPO's fields; the common ones (lr, gamma, batch sizes, ...) as in AlgorithmConfig."""
        super().training(**common)
        return self._set(lambda_=lambda_, clip_param=clip_param, vf_clip_param=vf_clip_param,
                         vf_loss_coeff=vf_loss_coeff, entropy_coeff=entropy_coeff, use_kl_loss=use_kl_loss,
                         kl_coeff=kl_coeff, kl_target=kl_target, overlap_sampling=overlap_sampling,
                         normalize_value_targets=normalize_value_targets, value_norm_decay=value_norm_decay)

    def validate(self) -> None:
        super().validate()
        _check_number(self, "lambda_", low=0.0, high=1.0)
        _check_number(self, "clip_param", low=0.0, low_inclusive=False)
        _check_number(self, "vf_clip_param", low=0.0, low_inclusive=False)
        _check_number(self, "vf_loss_coeff", low=0.0)
        check_schedule(self, "entropy_coeff", low=0.0)
        _check_number(self, "kl_coeff", low=0.0)
        _check_number(self, "kl_target", low=0.0, low_inclusive=False)
        if not isinstance(self.overlap_sampling, bool):
            raise ValueError(f"overlap_sampling={self.overlap_sampling!r} must be True or False.")
        if not isinstance(self.normalize_value_targets, bool):
            raise ValueError(f"normalize_value_targets={self.normalize_value_targets!r} must be True or False.")
        _check_number(self, "value_norm_decay", low=0.0, high=1.0)
        if self.value_norm_decay >= 1.0:
            raise ValueError(f"value_norm_decay={self.value_norm_decay!r} must be below 1 (1 would never move "
                             "the running moments); allowed: [0, 1).")
        if self.minibatch_size is not None and self.minibatch_size > self.total_train_batch_size:
            raise ValueError(
                f"minibatch_size={self.minibatch_size} is larger than the train batch "
                f"({self.total_train_batch_size} env steps); it must be at most that."
            )
