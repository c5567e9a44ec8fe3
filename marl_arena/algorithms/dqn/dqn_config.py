"""DQNConfig: DQN's training fields (Rainbow-lite: double Q, dueling, n-step, PER), RLlib's names."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided, _check_int, _check_number
from marl_arena.replay.buffers import replay_buffer_from_config

EpsilonSchedule = float | Sequence[tuple[int, float]]


def epsilon_at(schedule: EpsilonSchedule, env_steps: int) -> float:
    """Epsilon after ``env_steps`` sampled env steps: piecewise linear between the
    ``(env_steps, epsilon)`` points, constant before the first and after the last; a plain
    number is a constant schedule."""
    if isinstance(schedule, numbers.Real):
        return float(schedule)
    points = [(float(t), float(e)) for t, e in schedule]
    if env_steps <= points[0][0]:
        return points[0][1]
    for (t0, e0), (t1, e1) in zip(points, points[1:]):
        if env_steps < t1:
            return e0 + (e1 - e0) * (env_steps - t0) / (t1 - t0)
    return points[-1][1]


class DQNConfig(AlgorithmConfig):
    """Deep Q-learning with the Rainbow-lite components (double Q, dueling heads, n-step, PER)."""

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.dqn.dqn import DQN

            algo_class = DQN
        super().__init__(algo_class)
        self.lr = 5e-4
        self.train_batch_size = 32
        """Transitions per gradient step, sampled from the replay buffer."""
        self.minibatch_size = None
        self.num_epochs = 1
        self.grad_clip = 40.0
        self.rollout_fragment_length = 4
        """Env steps per sub-env per training step (n-step returns do not reach across fragments)."""
        self.replay_buffer_config: dict[str, Any] = {
            "type": "PrioritizedReplayBuffer", "capacity": 50_000, "alpha": 0.6, "beta": 0.4,
        }
        """One buffer per module: ``type`` (ReplayBuffer or PrioritizedReplayBuffer) and its arguments."""
        self.n_step = 1
        """Steps of the n-step return (never across a segment end)."""
        self.double_q = True
        """Pick the next action with the online network, evaluate it with the target network."""
        self.dueling = True
        """Dueling value and advantage heads (DuelingQModule) instead of one Q head (QModule)."""
        self.target_network_update_freq = 500
        """Copy the online network into the target every this many sampled env steps (when tau is None)."""
        self.tau: float | None = None
        """If set, a soft target update theta' <- tau theta + (1 - tau) theta' after every training step."""
        self.num_steps_sampled_before_learning_starts = 1000
        """Env steps sampled (with the exploring policy) before the first gradient step."""
        self.epsilon: EpsilonSchedule = [(0, 1.0), (10_000, 0.05)]
        """Exploration: ``[(env_steps, epsilon), ...]`` piecewise linear, or a constant."""
        self.training_intensity: float | None = None
        """Replayed transitions per sampled env step; None: one gradient step per training step."""
        self.td_error_loss_fn = "huber"
        """'huber' or 'mse', per transition, weighted by the PER importance weights."""
        self.min_sample_timesteps_per_iteration = 1000
        """A ``train()`` call runs training steps until it has sampled at least this many env steps."""
        self.num_atoms = 1
        """Distributional (C51) atoms; only 1 (expected Q) is implemented."""
        self.v_min = -10.0
        self.v_max = 10.0
        self.noisy = False
        """Noisy nets; not implemented (must be False)."""

    def training(self, *, replay_buffer_config: dict | None = NotProvided, n_step: int = NotProvided,
                 double_q: bool = NotProvided, dueling: bool = NotProvided,
                 target_network_update_freq: int = NotProvided, tau: float | None = NotProvided,
                 num_steps_sampled_before_learning_starts: int = NotProvided,
                 epsilon: EpsilonSchedule = NotProvided, training_intensity: float | None = NotProvided,
                 td_error_loss_fn: str = NotProvided, num_atoms: int = NotProvided, v_min: float = NotProvided,
                 v_max: float = NotProvided, noisy: bool = NotProvided, **common) -> "DQNConfig":
        """DQN's fields; the common ones (lr, gamma, train_batch_size, grad_clip, ...) as in AlgorithmConfig.

        A partial ``replay_buffer_config`` updates the default one (RLlib's behaviour).
        """
        super().training(**common)
        if replay_buffer_config is not NotProvided:
            if not isinstance(replay_buffer_config, dict):
                raise ValueError(f"replay_buffer_config={replay_buffer_config!r} is not allowed: it must be a dict.")
            merged = dict(self.replay_buffer_config)
            if "type" in replay_buffer_config and replay_buffer_config["type"] != merged.get("type"):
                merged = {}  # another type: the old type's arguments may not apply
            merged.update(replay_buffer_config)
            replay_buffer_config = merged
        return self._set(replay_buffer_config=replay_buffer_config, n_step=n_step, double_q=double_q,
                         dueling=dueling, target_network_update_freq=target_network_update_freq, tau=tau,
                         num_steps_sampled_before_learning_starts=num_steps_sampled_before_learning_starts,
                         epsilon=epsilon, training_intensity=training_intensity,
                         td_error_loss_fn=td_error_loss_fn, num_atoms=num_atoms, v_min=v_min, v_max=v_max,
                         noisy=noisy)

    def reporting(self, *, min_sample_timesteps_per_iteration: int = NotProvided, **common) -> "DQNConfig":
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
        for name in ("double_q", "dueling", "noisy"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: it must be True or False.")
        if self.td_error_loss_fn not in ("huber", "mse"):
            raise ValueError(f"td_error_loss_fn={self.td_error_loss_fn!r} is not allowed; use 'huber' or 'mse'.")
        if self.num_atoms != 1:
            raise ValueError(f"num_atoms={self.num_atoms!r} is not allowed: distributional DQN (C51, num_atoms > 1) "
                             "is not implemented; use num_atoms=1.")
        if self.noisy is not False:
            raise ValueError(f"noisy={self.noisy!r} is not allowed: noisy networks are not implemented; "
                             "use noisy=False (epsilon-greedy exploration).")
        if self.minibatch_size is not None:
            raise ValueError(f"minibatch_size={self.minibatch_size!r} is not allowed for DQN: every gradient step "
                             "uses one replayed batch of train_batch_size; leave minibatch_size=None.")
        try:
            replay_buffer_from_config(self.replay_buffer_config)
        except (TypeError, ValueError) as error:
            raise ValueError(f"replay_buffer_config={self.replay_buffer_config!r} is not allowed: {error}") from None
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
