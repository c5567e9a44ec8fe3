"""MARWILConfig: MARWIL's training fields, with RLlib's names and defaults."""

from __future__ import annotations

from marl_arena.algorithms.algorithm_config import AlgorithmConfig, NotProvided, _check_number


class MARWILConfig(AlgorithmConfig):
    """Monotonic advantage re-weighted imitation learning (Wang et al. 2018) from offline data."""

    reads_offline_data = True

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.marwil.marwil import MARWIL

            algo_class = MARWIL
        super().__init__(algo_class)
        self.lr = 1e-4
        self.train_batch_size_per_learner = 2000
        self.minibatch_size = None
        self.num_epochs = 1
        self.beta = 1.0
        """Inverse temperature of the advantage weights exp(beta * A / norm); 0 is behaviour cloning."""
        self.vf_coeff = 1.0
        """Weight of the value loss 0.5 * A^2 in the total loss."""
        self.moving_average_sqd_adv_norm_start = 100.0
        """Starting value of the moving average of A^2, whose square root normalises A."""
        self.moving_average_sqd_adv_norm_update_rate = 1e-8
        """How fast that moving average follows each minibatch's mean A^2."""

    def training(self, *, beta: float = NotProvided, vf_coeff: float = NotProvided,
                 moving_average_sqd_adv_norm_start: float = NotProvided,
                 moving_average_sqd_adv_norm_update_rate: float = NotProvided, **common) -> "MARWILConfig":
        """MARWIL's fields; the common ones (lr, gamma, batch sizes, ...) as in AlgorithmConfig."""
        super().training(**common)
        return self._set(beta=beta, vf_coeff=vf_coeff,
                         moving_average_sqd_adv_norm_start=moving_average_sqd_adv_norm_start,
                         moving_average_sqd_adv_norm_update_rate=moving_average_sqd_adv_norm_update_rate)

    def validate(self) -> None:
        super().validate()
        _check_number(self, "beta", low=0.0)
        _check_number(self, "vf_coeff", low=0.0)
        _check_number(self, "moving_average_sqd_adv_norm_start", low=0.0, low_inclusive=False)
        _check_number(self, "moving_average_sqd_adv_norm_update_rate", low=0.0, high=1.0)
