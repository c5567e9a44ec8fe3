"""IMPALAConfig: IMPALA's training fields, with RLlib's names and defaults."""

from __future__ import annotations

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided, _check_int, _check_number
from marl_arena.algorithms.schedules import check_schedule


class IMPALAConfig(AlgorithmConfig):
    """Importance-weighted actor-learner training: asynchronous sampling, V-trace, one step per batch.

    Defaults are RLlib's, except that runners and the learner live in the driver
    (``num_env_runners=0``, ``num_learners=0``) unless asked for, as for every marl_arena
    algorithm. A ``train()`` call lasts at least ``min_time_s_per_iteration`` (10 s, as in
    RLlib) and ``min_sample_timesteps_per_iteration`` env steps.
    """

    supports_recurrent_modules = True
    scheduled_fields = ("lr", "entropy_coeff")

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.impala.impala import IMPALA

            algo_class = IMPALA
        super().__init__(algo_class)
        self.lr = 5e-4
        self.train_batch_size = 500
        self.minibatch_size = None
        """None: one gradient step on the whole train batch (IMPALA's update)."""
        self.rollout_fragment_length = 50
        self.grad_clip = 40.0
        self.grad_clip_by = "global_norm"
        """Only clipping by global norm exists here; accepted so RLlib configs run unchanged."""
        self.vtrace = True
        """Correct for the lag between behaviour and learner policy with V-trace; False takes every
        importance weight as 1 (value targets become lambda = 1 returns)."""
        self.vtrace_clip_rho_threshold = 1.0
        """Clip of the importance weight in V-trace's TD errors (rho bar)."""
        self.vtrace_clip_pg_rho_threshold = 1.0
        """Clip of the importance weight in the policy-gradient advantages."""
        self.vf_loss_coeff = 0.5
        self.entropy_coeff = 0.01
        """Weight of the entropy bonus: a number, or a schedule ``[[env_steps, coeff], ...]`` as ``lr``
        may be (``marl_arena.algorithms.schedules``)."""
        self.broadcast_interval = 1
        """Send the learner's weights to the runners after every this many updates."""
        self.circular_buffer_num_batches = 4
        """Train batches the learner side holds at most; a new batch evicts the oldest."""
        self.circular_buffer_iterations_per_batch = 1
        """How many updates may draw each train batch (1: every batch is learned from once)."""
        self.learner_queue_size = 3
        """Finished train batches that may wait for the learner; when it falls further behind, the
        oldest waiting batch is dropped (``num_batches_dropped``)."""
        self.min_time_s_per_iteration = 10.0
        self.min_sample_timesteps_per_iteration = 0
        """A ``train()`` call samples at least this many env steps."""

    def training(self, *, vtrace: bool = NotProvided, vtrace_clip_rho_threshold: float = NotProvided,
                 vtrace_clip_pg_rho_threshold: float = NotProvided, vf_loss_coeff: float = NotProvided,
                 entropy_coeff: float = NotProvided, broadcast_interval: int = NotProvided,
                 circular_buffer_num_batches: int = NotProvided,
                 circular_buffer_iterations_per_batch: int = NotProvided,
                 learner_queue_size: int = NotProvided, grad_clip_by: str = NotProvided,
                 **common) -> "IMPALAConfig":
        """IMPALA's fields; the common ones (lr, gamma, train_batch_size, grad_clip, ...) as in AlgorithmConfig."""
        super().training(**common)
        return self._set(vtrace=vtrace, vtrace_clip_rho_threshold=vtrace_clip_rho_threshold,
                         vtrace_clip_pg_rho_threshold=vtrace_clip_pg_rho_threshold, vf_loss_coeff=vf_loss_coeff,
                         entropy_coeff=entropy_coeff, broadcast_interval=broadcast_interval,
                         circular_buffer_num_batches=circular_buffer_num_batches,
                         circular_buffer_iterations_per_batch=circular_buffer_iterations_per_batch,
                         learner_queue_size=learner_queue_size, grad_clip_by=grad_clip_by)

    def reporting(self, *, min_sample_timesteps_per_iteration: int = NotProvided, **common) -> "IMPALAConfig":
        super().reporting(**common)
        return self._set(min_sample_timesteps_per_iteration=min_sample_timesteps_per_iteration)

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.vtrace, bool):
            raise ValueError(f"vtrace={self.vtrace!r} is not allowed: it must be True or False.")
        for name in ("vtrace_clip_rho_threshold", "vtrace_clip_pg_rho_threshold"):
            if getattr(self, name) is not None:
                _check_number(self, name, low=0.0, low_inclusive=False)
        _check_number(self, "vf_loss_coeff", low=0.0)
        check_schedule(self, "entropy_coeff", low=0.0)
        _check_number(self, "min_time_s_per_iteration", low=0.0)
        _check_int(self, "broadcast_interval", minimum=1)
        _check_int(self, "circular_buffer_num_batches", minimum=1)
        _check_int(self, "circular_buffer_iterations_per_batch", minimum=1)
        _check_int(self, "learner_queue_size", minimum=1)
        _check_int(self, "min_sample_timesteps_per_iteration", minimum=0)
        if self.grad_clip_by != "global_norm":
            raise ValueError(f"grad_clip_by={self.grad_clip_by!r} is not allowed: only 'global_norm' is supported.")
        if self.minibatch_size is not None and self.minibatch_size > self.total_train_batch_size:
            raise ValueError(
                f"minibatch_size={self.minibatch_size} is larger than the train batch "
                f"({self.total_train_batch_size} env steps); it must be at most that, or None."
            )
