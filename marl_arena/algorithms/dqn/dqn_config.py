"""DQNConfig: DQN's training fields (Rainbow-lite: double Q, dueling, n-step, PER), RLlib's names."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Sequence

from marl_arena.algorithms.algorithm_config import NotProvided, _check_int, _check_number
from marl_arena.algorithms.off_policy_config import OffPolicyConfig
from marl_arena.core.q_module import QModelConfig

EpsilonSchedule = float | Sequence[tuple[int, float]]
"""A constant epsilon, or ``(env_steps, epsilon)`` points: read with ``schedules.value_at``, constant
before the first point and after the last."""


class DQNConfig(OffPolicyConfig):
    """Deep Q-learning with the Rainbow-lite components (double Q, dueling heads, n-step, PER)."""

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.dqn.dqn import DQN

            algo_class = DQN
        super().__init__(algo_class)
        self.lr = 5e-4
        self.train_batch_size = 32
        """Transitions per gradient step, sampled from the replay buffer."""
        self.grad_clip = 40.0
        self.rollout_fragment_length = 4
        """Env steps per sub-env per training step (n-step returns reach across fragments)."""
        self.replay_buffer_config: dict[str, Any] = {
            "type": "PrioritizedReplayBuffer", "capacity": 50_000, "alpha": 0.6, "beta": 0.4,
        }
        self.double_q = True
        """Pick the next action with the online network, evaluate it with the target network."""
        self.dueling = True
        """Dueling value and advantage heads (DuelingQModule) instead of one Q head (QModule)."""
        self.epsilon: EpsilonSchedule = [(0, 1.0), (10_000, 0.05)]
        """Exploration: ``[(env_steps, epsilon), ...]`` piecewise linear, or a constant."""
        self.td_error_loss_fn = "huber"
        """'huber' or 'mse', per transition, weighted by the PER importance weights."""
        self.num_atoms = 1
        """Distributional DQN (C51): atoms of the return distribution; 1 learns expected Q."""
        self.v_min = -10.0
        """Lowest return the C51 distribution represents (returns below are clipped to it)."""
        self.v_max = 10.0
        """Highest return the C51 distribution represents."""
        self.noisy = False
        """Noisy linear heads that learn how much to explore; usually with ``epsilon=0.0``."""
        self.sigma0 = 0.5
        """Initial noise scale of the noisy heads."""

    def training(self, *, double_q: bool = NotProvided, dueling: bool = NotProvided,
                 epsilon: EpsilonSchedule = NotProvided, td_error_loss_fn: str = NotProvided,
                 num_atoms: int = NotProvided, v_min: float = NotProvided,
                 v_max: float = NotProvided, noisy: bool = NotProvided, sigma0: float = NotProvided,
                 **common) -> "DQNConfig":
        """DQN's fields; replay and targets (replay_buffer_config, n_step, tau, ...) as in OffPolicyConfig,
        the common ones (lr, gamma, train_batch_size, grad_clip, ...) as in AlgorithmConfig."""
        super().training(**common)
        return self._set(double_q=double_q, dueling=dueling, epsilon=epsilon,
                         td_error_loss_fn=td_error_loss_fn, num_atoms=num_atoms, v_min=v_min, v_max=v_max,
                         noisy=noisy, sigma0=sigma0)

    def model_config_for(self, module_id: str) -> QModelConfig:
        """The module's model config with the Q heads that ``training()`` asks for (C51, noisy)."""
        base = super().model_config_for(module_id)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        return QModelConfig(**{**fields, "num_atoms": self.num_atoms, "v_min": self.v_min, "v_max": self.v_max,
                               "noisy": self.noisy, "sigma0": self.sigma0})

    def validate(self) -> None:
        super().validate()
        for name in ("double_q", "dueling", "noisy"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: it must be True or False.")
        if self.td_error_loss_fn not in ("huber", "mse"):
            raise ValueError(f"td_error_loss_fn={self.td_error_loss_fn!r} is not allowed; use 'huber' or 'mse'.")
        _check_int(self, "num_atoms", minimum=1)
        _check_number(self, "sigma0", low=0.0)
        if not (isinstance(self.v_min, numbers.Real) and isinstance(self.v_max, numbers.Real)
                and self.v_min < self.v_max):
            raise ValueError(f"v_min={self.v_min!r}, v_max={self.v_max!r} are not allowed: they must be numbers "
                             "with v_min < v_max (the range of returns C51 represents).")
        self._validate_epsilon()

    def _validate_epsilon(self) -> None:
        schedule = self.epsilon
        problem = None
        if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
            if not 0.0 <= schedule <= 1.0:
                problem = "a constant epsilon must lie in [0, 1]"
        elif isinstance(schedule, (list, tuple)) and schedule:
            try:
                points = [(t, e) for t, e in schedule]
            except (TypeError, ValueError):
                points = None
            if points is None or not all(
                isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 0
                and isinstance(e, numbers.Real) and not isinstance(e, bool) and 0.0 <= e <= 1.0 for t, e in points
            ):
                problem = "every point must be (env_steps >= 0 as an int, epsilon in [0, 1])"
            elif any(t1 <= t0 for (t0, _), (t1, _) in zip(points, points[1:])):
                problem = "the env steps of the points must increase strictly"
        else:
            problem = "it must be a number in [0, 1] or a non-empty list of (env_steps, epsilon) points"
        if problem:
            raise ValueError(f"epsilon={schedule!r} is not allowed: {problem}, e.g. [(0, 1.0), (10000, 0.05)].")
