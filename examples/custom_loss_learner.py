"""A learner subclass that adds a loss term: PPO with an L2 penalty on the action logits.

A custom loss is a subclass of the algorithm's learner whose ``compute_loss_for_module``
calls the algorithm's loss and adds its own term, returned as a named diagnostic too, so
it shows up under ``learners/<module_id>/`` in ``algo.train()``'s result. The config
names the class and its settings with RLlib's fields:

    config.training(learner_class=LogitL2PPOLearner, learner_config_dict={"logits_l2_coeff": 0.01})

``learner_class`` must subclass the algorithm's learner (here ``PPOLearner``); it is used
wherever the algorithm learns, in the driver (``num_learners=0``) or in Ray learner actors.

Why this term: PPO's policy can push its logits far apart, after which the softmax is
saturated, the policy has stopped exploring and its gradient is tiny. A small penalty on
the logits' squares keeps them near zero unless the advantage says otherwise. Illegal
actions (masked to the lowest float) are left out of the penalty.

    python examples/custom_loss_learner.py            # CartPole, with and without the term
    python examples/custom_loss_learner.py --smoke    # two tiny iterations
"""

from __future__ import annotations

import argparse

import torch

from marl_arena.algorithms import PPOConfig
from marl_arena.algorithms.ppo.ppo_learner import PPOLearner
from marl_arena.core import Columns, RLModule

DEFAULT_LOGITS_L2_COEFF = 0.01


class LogitL2PPOLearner(PPOLearner):
    """PPO's loss plus ``logits_l2_coeff * mean(logits ** 2)`` over the legal actions."""

    def __init__(self, config, module_spec, device: str = "cpu"):
        super().__init__(config, module_spec, device)
        self.logits_l2_coeff = float(config.learner_config_dict.get("logits_l2_coeff", DEFAULT_LOGITS_L2_COEFF))
        if self.logits_l2_coeff < 0:
            raise ValueError(f"learner_config_dict['logits_l2_coeff']={self.logits_l2_coeff} is not allowed: "
                             "it must be >= 0.")

    def compute_loss_for_module(self, module_id: str, module: RLModule, batch, fwd_out):
        total, stats = super().compute_loss_for_module(module_id, module, batch, fwd_out)
        logits = fwd_out[Columns.ACTION_DIST_INPUTS]
        legal = batch.get(Columns.ACTION_MASK)
        legal = torch.ones_like(logits) if legal is None else (legal > 0).to(logits.dtype)
        logits_l2 = (logits.masked_fill(legal == 0, 0.0) ** 2).sum() / legal.sum().clamp(min=1.0)
        total = total + self.logits_l2_coeff * logits_l2
        stats["logits_l2"] = logits_l2.detach()
        stats["total_loss"] = total.detach()
        return total, stats


def make_config(coeff: float = DEFAULT_LOGITS_L2_COEFF, smoke: bool = False, seed: int = 0,
                num_learners: int = 0) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=4)
        .learners(num_learners=num_learners)
        .training(train_batch_size_per_learner=256 if smoke else 1000, minibatch_size=128, num_epochs=4,
                  lr=1e-3, learner_class=LogitL2PPOLearner, learner_config_dict={"logits_l2_coeff": coeff})
        .debugging(seed=seed)
    )


def main(smoke: bool = False, iterations: int | None = None, coeffs: tuple[float, ...] = (0.0, 0.1)) -> dict:
    """Train CartPole once per coefficient; the logits' mean square and the return for each."""
    out = {}
    for coeff in coeffs:
        algo = make_config(coeff, smoke).build_algo()
        try:
            for _ in range(iterations if iterations is not None else (2 if smoke else 15)):
                result = algo.train()
            metrics = result["learners"]["default_policy"]
            out[coeff] = {"logits_l2": metrics["logits_l2"],
                          "episode_return_mean": result["env_runners"]["episode_return_mean"],
                          "env_steps": result["num_env_steps_sampled_lifetime"]}
        finally:
            algo.stop()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="two tiny iterations")
    args = parser.parse_args()
    for coeff, row in main(smoke=args.smoke).items():
        print(f"logits_l2_coeff={coeff:g}: mean squared logit {row['logits_l2']:.3f}, "
              f"episode return {row['episode_return_mean']:.1f} after {row['env_steps']} env steps")
