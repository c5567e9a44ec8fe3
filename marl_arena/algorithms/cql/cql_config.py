"""CQLConfig: conservative Q-learning's fields on top of SAC's, with RLlib's names and defaults."""

from __future__ import annotations

from marl_arena.algorithms.algorithm_config import NotProvided, _check_int, _check_number
from marl_arena.algorithms.sac.sac_config import SACConfig


class CQLConfig(SACConfig):
    """Conservative Q-learning (Kumar et al. 2020) from offline data: SAC whose critics also
    minimise the conservative penalty (``cql_losses.cql_penalty``), and whose actor starts by
    cloning the data's actions for ``bc_iters`` updates.

    Box actions as in the paper; Discrete actions take the penalty's log-sum-exp over every
    legal action exactly. The replay fields that SACConfig inherits (``replay_buffer_config``,
    ``num_steps_sampled_before_learning_starts``, ``training_intensity``, ...) are not used: the
    batches come from ``offline_data(input_=...)``, ``train_batch_size_per_learner`` rows each
    (``train_batch_size`` when that is None), ``dataset_num_iters_per_learner`` per iteration.
    """

    reads_offline_data = True

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.cql.cql import CQL

            algo_class = CQL
        super().__init__(algo_class)
        self.bc_iters = 20_000
        """Updates (per module) whose actor loss is alpha log pi(a~|s) - log pi(a_data|s), behaviour
        cloning with an entropy term, before it turns to SAC's actor loss."""
        self.temperature = 1.0
        """T of the penalty's T log sum exp(Q / T)."""
        self.num_actions = 10
        """Box actions: candidate actions per row and source in the penalty (uniform, pi(s), pi(s'))."""
        self.min_q_weight = 5.0
        """Weight of the conservative penalty in the critic loss."""
        self.lagrangian = False
        """Tune the penalty's weight alpha' (times min_q_weight) so that the penalty stays near
        ``lagrangian_thresh``: alpha' grows while it is above, shrinks while below."""
        self.lagrangian_thresh = 5.0
        """The penalty level that alpha' aims at (the paper's tau, "target action gap")."""
        self.deterministic_backup = True
        """Targets r + gamma min Q'(s', a') without the entropy term -alpha log pi(a'|s') (RLlib's default)."""
        self.actor_lr = 1e-4
        self.critic_lr = 1e-3
        self.alpha_lr = 1e-3

    def training(self, *, bc_iters: int = NotProvided, temperature: float = NotProvided,
                 num_actions: int = NotProvided, min_q_weight: float = NotProvided, lagrangian: bool = NotProvided,
                 lagrangian_thresh: float = NotProvided, deterministic_backup: bool = NotProvided,
                 **sac) -> "CQLConfig":
        """CQL's fields; SAC's (actor_lr, twin_q, tau, initial_alpha, ...) as in SACConfig."""
        super().training(**sac)
        return self._set(bc_iters=bc_iters, temperature=temperature, num_actions=num_actions,
                         min_q_weight=min_q_weight, lagrangian=lagrangian, lagrangian_thresh=lagrangian_thresh,
                         deterministic_backup=deterministic_backup)

    def validate(self) -> None:
        super().validate()
        _check_int(self, "bc_iters", minimum=0)
        _check_number(self, "temperature", low=0.0, low_inclusive=False)
        _check_int(self, "num_actions", minimum=1)
        _check_number(self, "min_q_weight", low=0.0)
        _check_number(self, "lagrangian_thresh")
        for name in ("lagrangian", "deterministic_backup"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: it must be True or False.")
        if self.tau is None:
            raise ValueError("tau=None is not allowed for CQLConfig: periodic target copies count sampled env "
                             "steps, and offline training samples none; set tau in (0, 1] (1: a copy every update).")
        if self.n_step != 1:
            raise ValueError(f"n_step={self.n_step!r} is not allowed for CQLConfig: offline batches are one-step "
                             "transitions; it must be 1.")
