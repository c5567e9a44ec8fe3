"""OffPolicyConfig: the fields every replay-based algorithm shares (DQN, SAC), with RLlib's names.

Replay, n-step returns, target networks, when learning starts, how many gradient steps per
sampled env step and how much an iteration samples are the same questions for every
off-policy algorithm, so they are asked and validated here once.
"""

from __future__ import annotations

from typing import Any

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided, _check_int, _check_number
from marl_arena.replay.buffers import replay_buffer_from_config


class OffPolicyConfig(AlgorithmConfig):
    """Settings of a replay-based algorithm; subclasses add their loss and module fields."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class)
        self.minibatch_size = None
        self.num_epochs = 1
        self.replay_buffer_config: dict[str, Any] = {"type": "ReplayBuffer", "capacity": 50_000}
        """One buffer per module: ``type`` (ReplayBuffer or PrioritizedReplayBuffer) and its arguments."""
        self.store_buffer_in_checkpoints = False
        """Save every module's replay buffer (and the replay RNG) in checkpoints; off to keep them small."""
        self.n_step = 1
        """Steps of the n-step return (never past an episode's end; runners keep n-1 steps of look-ahead
        across sample calls, so fragments shorter than n do not cut it)."""
        self.target_network_update_freq = 500
        """Copy the online network into the target every this many sampled env steps (when tau is None)."""
        self.tau: float | None = None
        """If set, a soft target update theta' <- tau theta + (1 - tau) theta' after every gradient step, instead
        of periodic copies."""
        self.num_steps_sampled_before_learning_starts = 1000
        """Env steps sampled (with the exploring policy) before the first gradient step."""
        self.training_intensity: float | None = None
        """Replayed transitions per sampled env step; None: one gradient step per training step."""
        self.min_sample_timesteps_per_iteration = 1000
        """A ``train()`` call runs training steps until it has sampled at least this many env steps."""

    def training(self, *, replay_buffer_config: dict | None = NotProvided,
                 store_buffer_in_checkpoints: bool = NotProvided, n_step: int = NotProvided,
                 target_network_update_freq: int = NotProvided, tau: float | None = NotProvided,
                 num_steps_sampled_before_learning_starts: int = NotProvided,
                 training_intensity: float | None = NotProvided, **common) -> "OffPolicyConfig":
        """The replay and target fields; the common ones (lr, gamma, train_batch_size, ...) as in AlgorithmConfig.

        A partial ``replay_buffer_config`` updates the current one (RLlib's behaviour); one
        naming another ``type`` replaces it, since the old type's arguments may not apply.
        """
        super().training(**common)
        if replay_buffer_config is not NotProvided:
            if not isinstance(replay_buffer_config, dict):
                raise ValueError(f"replay_buffer_config={replay_buffer_config!r} is not allowed: it must be a dict.")
            merged = dict(self.replay_buffer_config)
            if "type" in replay_buffer_config and replay_buffer_config["type"] != merged.get("type"):
                merged = {}
            merged.update(replay_buffer_config)
            replay_buffer_config = merged
        return self._set(replay_buffer_config=replay_buffer_config,
                         store_buffer_in_checkpoints=store_buffer_in_checkpoints, n_step=n_step,
                         target_network_update_freq=target_network_update_freq, tau=tau,
                         num_steps_sampled_before_learning_starts=num_steps_sampled_before_learning_starts,
                         training_intensity=training_intensity)

    def reporting(self, *, min_sample_timesteps_per_iteration: int = NotProvided, **common) -> "OffPolicyConfig":
        super().reporting(**common)
        return self._set(min_sample_timesteps_per_iteration=min_sample_timesteps_per_iteration)

    def validate(self) -> None:
        super().validate()
        _check_int(self, "n_step", minimum=1)
        _check_int(self, "target_network_update_freq", minimum=1)
        _check_int(self, "num_steps_sampled_before_learning_starts", minimum=0)
        _check_int(self, "min_sample_timesteps_per_iteration", minimum=0)
        if self.tau is not None:
            _check_number(self, "tau", low=0.0, high=1.0, low_inclusive=False)
        if self.training_intensity is not None:
            _check_number(self, "training_intensity", low=0.0, low_inclusive=False)
        if not isinstance(self.store_buffer_in_checkpoints, bool):
            raise ValueError(f"store_buffer_in_checkpoints={self.store_buffer_in_checkpoints!r} is not allowed: "
                             "it must be True or False.")
        if self.minibatch_size is not None:
            raise ValueError(f"minibatch_size={self.minibatch_size!r} is not allowed for {type(self).__name__}: "
                             "every gradient step uses one replayed batch of train_batch_size; leave it None.")
        try:
            replay_buffer_from_config(self.replay_buffer_config)
        except (TypeError, ValueError) as error:
            raise ValueError(f"replay_buffer_config={self.replay_buffer_config!r} is not allowed: {error}") from None
