"""DreamerV3Config: DreamerV3's fields, with RLlib's names (``model_size``, ``training_ratio``,
``batch_size_B``, ``batch_length_T``, ``horizon_H``, ``world_model_lr``, ``actor_lr``, ``critic_lr``).

The loss constants default to the paper's (Hafner et al. 2023, table of hyperparameters).
"""

from __future__ import annotations

import dataclasses

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided, _check_int, _check_number


class DreamerV3Config(AlgorithmConfig):
    """Model-based RL: a world model learned from replayed sequences, an actor and a critic learned in
    its imagination. ``lr``, ``train_batch_size`` and ``minibatch_size`` are not used."""

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.dreamerv3.dreamerv3 import DreamerV3

            algo_class = DreamerV3
        super().__init__(algo_class)
        self.model_size = "XS"
        """Widths of all networks: "XS", "S", "M", "L" or "XL" (``world_model.MODEL_SIZES``)."""
        self.training_ratio = 32
        """Replayed steps (batch_size_B x batch_length_T per update) per sampled env step. Lower than the
        paper's 512+ so that XS learns CartPole on a two-core CPU in minutes, not hours."""
        self.batch_size_B = 16
        """Sequences per update."""
        self.batch_length_T = 64
        """Steps per replayed sequence."""
        self.horizon_H = 15
        """Steps of every imagined rollout."""
        self.imagination_starts: int | None = 128
        """Replayed states that imagined rollouts start from, drawn at random from the B x T of an
        update; None: all of them (the paper's choice, several times the compute on a CPU)."""
        self.gamma = 0.997
        self.gae_lambda = 0.95
        """lambda of the lambda-returns in imagination."""
        self.world_model_lr = 1e-3
        """Higher than the paper's 1e-4: with few updates per env step, the continue and reward heads
        must learn fast enough to give the actor a signal."""
        self.actor_lr = 3e-5
        self.critic_lr = 3e-4
        """Higher than the paper's 3e-5, so the critic keeps ahead of the actor with few updates."""
        self.grad_clip = 100.0
        """Global-norm clip of every optimizer's gradients."""
        self.entropy_scale = 3e-4
        """Weight of the actor's entropy bonus (the advantages are normalised to a range of about 1)."""
        self.return_normalization_decay = 0.99
        """EMA decay of the 5th and 95th return percentiles."""
        self.critic_ema_decay = 0.98
        """EMA decay of the slow critic's weights."""
        self.critic_ema_regularizer = 1.0
        """Weight of the critic's loss towards the slow critic's predictions."""
        self.free_nats = 1.0
        """KL terms below this many nats have no gradient."""
        self.kl_dynamics_scale = 0.5
        self.kl_representation_scale = 0.1
        self.replay_buffer_capacity = 1_000_000
        """Rows (steps) per module in the sequence replay."""
        self.num_steps_sampled_before_learning_starts = 1024
        """Env steps sampled before the first update."""
        self.min_sample_timesteps_per_iteration = 1000
        """A ``train()`` call samples whole episodes until it has at least this many env steps."""
        self.store_buffer_in_checkpoints = False
        """Save the replay (and its RNG state) in checkpoints; off to keep them small."""
        self.train_batch_size = 1
        self.minibatch_size = None

    def training(self, *, model_size: str = NotProvided, training_ratio: float = NotProvided,
                 batch_size_B: int = NotProvided, batch_length_T: int = NotProvided, horizon_H: int = NotProvided,
                 imagination_starts: int | None = NotProvided,
                 gae_lambda: float = NotProvided, world_model_lr: float = NotProvided, actor_lr: float = NotProvided,
                 critic_lr: float = NotProvided, entropy_scale: float = NotProvided,
                 return_normalization_decay: float = NotProvided, critic_ema_decay: float = NotProvided,
                 critic_ema_regularizer: float = NotProvided, free_nats: float = NotProvided,
                 kl_dynamics_scale: float = NotProvided, kl_representation_scale: float = NotProvided,
                 replay_buffer_capacity: int = NotProvided,
                 num_steps_sampled_before_learning_starts: int = NotProvided,
                 store_buffer_in_checkpoints: bool = NotProvided, **common) -> "DreamerV3Config":
        """DreamerV3's fields; the common ones (gamma, grad_clip, ...) as in AlgorithmConfig."""
        super().training(**common)
        return self._set(model_size=model_size, training_ratio=training_ratio, batch_size_B=batch_size_B,
                         batch_length_T=batch_length_T, horizon_H=horizon_H, imagination_starts=imagination_starts,
                         gae_lambda=gae_lambda,
                         world_model_lr=world_model_lr, actor_lr=actor_lr, critic_lr=critic_lr,
                         entropy_scale=entropy_scale, return_normalization_decay=return_normalization_decay,
                         critic_ema_decay=critic_ema_decay, critic_ema_regularizer=critic_ema_regularizer,
                         free_nats=free_nats, kl_dynamics_scale=kl_dynamics_scale,
                         kl_representation_scale=kl_representation_scale,
                         replay_buffer_capacity=replay_buffer_capacity,
                         num_steps_sampled_before_learning_starts=num_steps_sampled_before_learning_starts,
                         store_buffer_in_checkpoints=store_buffer_in_checkpoints)

    def reporting(self, *, min_sample_timesteps_per_iteration: int = NotProvided, **common) -> "DreamerV3Config":
        super().reporting(**common)
        return self._set(min_sample_timesteps_per_iteration=min_sample_timesteps_per_iteration)

    def model_config_for(self, module_id: str):
        """The module's model config with the named ``model_size``."""
        from marl_arena.algorithms.dreamerv3.dreamerv3_module import DreamerModelConfig

        base = super().model_config_for(module_id)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        return DreamerModelConfig(**{**fields, "model_size": self.model_size})

    def validate(self) -> None:
        from marl_arena.algorithms.dreamerv3.world_model import MODEL_SIZES

        if self.model_size not in MODEL_SIZES:  # first: the base checks build the model config from it
            raise ValueError(f"model_size={self.model_size!r} is not allowed; use one of {list(MODEL_SIZES)}.")
        super().validate()
        for name in ("batch_size_B", "batch_length_T", "horizon_H", "replay_buffer_capacity"):
            _check_int(self, name, minimum=1)
        _check_int(self, "num_steps_sampled_before_learning_starts", minimum=0)
        if self.imagination_starts is not None:
            _check_int(self, "imagination_starts", minimum=1, extra="or None")
        _check_int(self, "min_sample_timesteps_per_iteration", minimum=0)
        if self.replay_buffer_capacity < self.batch_length_T:
            raise ValueError(f"replay_buffer_capacity={self.replay_buffer_capacity!r} is not allowed: it must hold "
                             f"at least one sequence of batch_length_T={self.batch_length_T} rows.")
        _check_number(self, "training_ratio", low=0.0, low_inclusive=False)
        for name in ("world_model_lr", "actor_lr", "critic_lr"):
            _check_number(self, name, low=0.0, low_inclusive=False)
        for name in ("gae_lambda", "return_normalization_decay", "critic_ema_decay"):
            _check_number(self, name, low=0.0, high=1.0)
        for name in ("entropy_scale", "critic_ema_regularizer", "free_nats", "kl_dynamics_scale",
                     "kl_representation_scale"):
            _check_number(self, name, low=0.0)
        if not isinstance(self.store_buffer_in_checkpoints, bool):
            raise ValueError(f"store_buffer_in_checkpoints={self.store_buffer_in_checkpoints!r} is not allowed: "
                             "it must be True or False.")
