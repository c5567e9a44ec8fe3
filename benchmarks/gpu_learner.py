"""GPU learner check: ``num_gpus_per_learner=1`` really trains on the GPU, and the CPU side by side.

Four checks, run on a machine with a CUDA device (the JSON says where each ran):

1. ``ppo_cartpole``: PPO on CartPole-v1 with the learner on ``cuda`` trains to a greedy
   return of 450; the learner's parameters and Adam moments live on the GPU, CUDA memory
   was allocated, and the runners (CPU) still receive CPU weights. A checkpoint written by
   the GPU learner restores into a CPU-only learner with the same greedy return.
2. ``learner_update``: seconds per PPO learner update on one large batch with a wide
   network, GPU and CPU in the same run (the ratio is the figure; small CartPole networks
   are faster on the CPU, which the JSON shows as well).
3. ``off_policy``: DQN with every Rainbow head (C51, noisy, dueling) on CartPole-v1 and SAC
   on Pendulum-v1 train with their learners on ``cuda`` (target networks, replay batches
   and SAC's three optimizers on the GPU), a few thousand env steps each: the losses stay
   finite and the returns are reported.
4. ``nccl_group``: the data-parallel learner (``_DistributedLearner``) on one GPU with the
   nccl backend initialises, all-reduces gradients and updates (Ray is not needed for a
   group of one; with Ray, ``num_learners=N`` starts N of these as actors).

    python benchmarks/gpu_learner.py --out        # writes results/gpu_learner.json
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any

import numpy as np
import torch

try:  # python -m benchmarks.gpu_learner, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/gpu_learner.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.algorithms import DQNConfig, PPOConfig, SACConfig
from marl_arena.core.columns import Columns
from marl_arena.learners.learner_group import _DistributedLearner, _free_port

logger = logging.getLogger("benchmarks.gpu_learner")

NAME = "gpu_learner"


def _ppo(num_gpus: float, seed: int = 0, model: dict | None = None, cpus: int = 1) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .learners(num_learners=0, num_gpus_per_learner=num_gpus, num_cpus_per_learner=cpus)
        .training(lr=3e-4, train_batch_size=2000, minibatch_size=500, num_epochs=10)
        .rl_module(model_config=model or {"fcnet_hiddens": [64, 64]})
        .evaluation(evaluation_duration=10, evaluation_duration_unit="episodes", evaluation_num_env_runners=0)
        .debugging(seed=seed)
    )


def _devices(learner) -> dict[str, list[str]]:
    params = sorted({str(p.device) for p in learner.module.parameters()})
    moments = sorted({str(v.device) for named in learner.optimizers.values() for opt in named.values()
                      for state in opt.state.values()
                      for v in state.values() if torch.is_tensor(v) and v.dim() > 0})
    return {"parameters": params, "optimizer_state": moments}


def ppo_cartpole(budget_s: float) -> dict[str, Any]:
    torch.cuda.reset_peak_memory_stats()
    algo = _ppo(1.0).build_algo()
    start, best, iterations = time.perf_counter(), float("-inf"), 0
    while time.perf_counter() - start < budget_s:
        algo.train()
        iterations += 1
        best = max(best, algo.evaluate()["env_runners"]["episode_return_mean"])
        if best >= 450:
            break
    learner = algo.learner_group.local_learner
    runner_weights = algo.learner_group.get_weights()
    report = {
        "learner_device": str(learner.device), "devices": _devices(learner), "iterations": iterations,
        "seconds": time.perf_counter() - start, "best_greedy_return": best,
        "cuda_peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20,
        "weights_sent_to_runners_device": sorted({str(v.device) for w in runner_weights.values() for v in w.values()}),
    }
    path = algo.save_to_path(tempfile.mkdtemp(prefix="gpu_ckpt_"))
    algo.stop()
    cpu_algo = _ppo(0.0).build_algo()
    cpu_algo.restore_from_path(path)
    restored = cpu_algo.learner_group.get_weights()
    report["restored_on_cpu"] = {
        "learner_device": str(cpu_algo.learner_group.local_learner.device),
        "weights_equal": all(torch.equal(runner_weights[mid][k].cpu(), restored[mid][k].cpu())
                             for mid in runner_weights for k in runner_weights[mid]),
        "greedy_return": cpu_algo.evaluate()["env_runners"]["episode_return_mean"],
    }
    cpu_algo.stop()
    return report


def _update_seconds(num_gpus: float, repeats: int) -> float:
    # The CPU side gets every core of the machine; the GPU side one (it only launches kernels).
    cpus = 1 if num_gpus else os.cpu_count() or 1
    algo = _ppo(num_gpus, model={"fcnet_hiddens": [1024, 1024]}, cpus=cpus).build_algo()
    batches, _ = algo.sample_batches(8000)
    learner_group = algo.learner_group
    learner_group.update(batches, 1, 2000)  # warm-up (kernels, allocator)
    if num_gpus:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        learner_group.update(batches, 1, 2000)
    if num_gpus:
        torch.cuda.synchronize()
    algo.stop()
    return (time.perf_counter() - start) / repeats


def learner_update(repeats: int) -> dict[str, Any]:
    gpu, cpu = _update_seconds(1.0, repeats), _update_seconds(0.0, repeats)
    return {"batch": 8000, "minibatch": 2000, "hidden": [1024, 1024], "gpu_s": gpu, "cpu_s": cpu,
            "cpu_over_gpu": common.ratio(cpu, gpu), "cpu_threads": os.cpu_count()}


def _off_policy_configs() -> dict[str, Any]:
    return {
        "dqn_rainbow_cartpole": DQNConfig().environment("CartPole-v1").training(
            num_atoms=51, v_min=0.0, v_max=100.0, noisy=True, epsilon=0.0, n_step=3, lr=1e-3,
            num_steps_sampled_before_learning_starts=1000).rl_module(model_config={"fcnet_hiddens": [64, 64]}),
        "sac_pendulum": SACConfig().environment("Pendulum-v1").training(
            num_steps_sampled_before_learning_starts=1000),
    }


def off_policy(env_steps: int) -> dict[str, Any]:
    report = {}
    for name, config in _off_policy_configs().items():
        config.learners(num_gpus_per_learner=1.0).env_runners(num_env_runners=0).debugging(seed=0)
        config.reporting(min_sample_timesteps_per_iteration=1000)
        algo = config.build_algo()
        start, result = time.perf_counter(), {}
        while not result or result["num_env_steps_sampled_lifetime"] < env_steps:
            result = algo.train()
        learner = algo.learner_group.local_learner
        metrics = result["learners"]["default_policy"]
        targets = getattr(learner, "target_modules", {})
        report[name] = {
            "devices": _devices(learner),
            "target_devices": sorted({str(p.device) for t in targets.values() for p in t.parameters()}),
            "env_steps": result["num_env_steps_sampled_lifetime"], "seconds": time.perf_counter() - start,
            "losses_finite": all(np.isfinite(v) for k, v in metrics.items() if "loss" in k),
            "losses": {k: v for k, v in metrics.items() if "loss" in k},
            "train_return": result["env_runners"]["episode_return_mean"],
        }
        algo.stop()
    return report


def nccl_group() -> dict[str, Any]:
    config = DQNConfig().environment("CartPole-v1").learners(num_gpus_per_learner=1.0)
    algo = config.build_algo()
    spec = algo.module_spec
    algo.stop()
    actor = _DistributedLearner(type(algo).learner_class, algo.config, spec, rank=0, world_size=1,
                                address="127.0.0.1", port=_free_port())
    rows = 64
    rng = np.random.default_rng(0)
    batch = {"default_policy": {
        Columns.OBS: rng.normal(size=(rows, 4)).astype(np.float32),
        Columns.NEXT_OBS: rng.normal(size=(rows, 4)).astype(np.float32),
        Columns.ACTIONS: rng.integers(0, 2, rows), Columns.REWARDS: np.ones(rows, np.float32),
        Columns.TERMINATEDS: np.zeros(rows, bool),
    }}
    before = {k: v.clone() for k, v in actor.learner.module.state_dict().items()}
    metrics = actor.update(batch, 1, None)
    changed = any(not torch.equal(before[k], v) for k, v in actor.learner.module.state_dict().items())
    out = {"backend": torch.distributed.get_backend(), "learner_device": str(actor.learner.device),
           "parameters_changed": changed, "qf_loss": float(metrics["default_policy"]["qf_loss"])}
    actor.shutdown()
    return out


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    common.configure_logging(args.verbose)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_learner.py needs a CUDA device; torch sees none.")
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": NAME, "machine": common.machine_info(),
                              "gpu": torch.cuda.get_device_name(0)}
    report["ppo_cartpole"] = ppo_cartpole(budget_s=30 if args.quick else 120)
    logger.info("ppo_cartpole: %s", report["ppo_cartpole"])
    report["learner_update"] = learner_update(repeats=2 if args.quick else 5)
    logger.info("learner_update: %s", report["learner_update"])
    report["off_policy"] = off_policy(env_steps=3000 if args.quick else 10_000)
    logger.info("off_policy: %s", report["off_policy"])
    report["nccl_group"] = nccl_group()
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
