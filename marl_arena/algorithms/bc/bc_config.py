"""BCConfig: MARWILConfig with beta fixed at 0, so the loss is the actions' log-likelihood alone."""

from __future__ import annotations

from marl_arena.algorithms.marwil.marwil_config import MARWILConfig


class BCConfig(MARWILConfig):
    """Behaviour cloning from offline data."""

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from marl_arena.algorithms.bc.bc import BC

            algo_class = BC
        super().__init__(algo_class)
        self.beta = 0.0

    def validate(self) -> None:
        super().validate()
        if self.beta != 0.0:
            raise ValueError(f"beta={self.beta!r} is not allowed for BC: it must be 0 (use MARWILConfig for beta > 0).")
