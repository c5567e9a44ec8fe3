"""RLlib peer runs for the marl_arena benchmarks.

Runs RLlib's own PPO (new API stack: RLModule + Learner + EnvRunner) so that the
benchmark scripts can put RLlib's numbers next to ours in the same run:

* :func:`rllib_ppo_to_target` - wall time and env steps until PPO reaches a
  target return, confirmed by a greedy evaluation.
* :func:`rllib_dqn_to_target`, :func:`rllib_sac_to_target` - the same for the
  replay-based algorithms, on one local runner.
* :func:`rllib_sampling_throughput` - pure sampling speed (env steps per second)
  of RLlib's EnvRunners.

The module imports without RLlib installed; ``ray.rllib`` is imported lazily
inside the functions. Check :func:`rllib_available` first.

Install the peer with ``pip install "ray[rllib]==<your ray version>"``.

Notes (checked on Ray 2.60.0, 2-CPU machine):

* Evaluation runs in the driver (``evaluation_num_env_runners=0``). A remote
  evaluation EnvRunner needs its own CPU and can wait forever when the training
  EnvRunners already hold all CPUs.
* ``evaluation_interval`` must be set (we use a huge value so that ``train()``
  never evaluates by itself). Without it RLlib builds no evaluation
  EnvRunnerGroup and ``algo.evaluate()`` samples on the *training* local
  EnvRunner. That runner explores (no greedy actions), is force-reset in the
  middle of its training episodes, and with ``num_env_runners > 0`` it has no
  env, so ``evaluate()`` raises ``ValueError: ... doesn't have an env!``.
* Every built Algorithm is stopped (``algo.stop()``) before returning, so its
  EnvRunner actors give their CPUs back. Ray itself is left running.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from typing import Any, Callable, Dict, Optional, Sequence

try:  # python -m benchmarks.rllib_peer, or imported as benchmarks.rllib_peer
    from benchmarks import common
except ImportError:  # python benchmarks/rllib_peer.py: benchmarks/ is sys.path[0]
    import common

logger = logging.getLogger(__name__)

# Large enough that `algo.train()` never runs an evaluation by itself, but
# non-zero so that RLlib builds a separate (greedy) evaluation EnvRunnerGroup.
_NEVER_AUTO_EVALUATE = 1_000_000_000


def rllib_available() -> bool:
    """Return True if ``ray.rllib`` (and its torch backend) can be imported."""
    if importlib.util.find_spec("ray") is None:
        return False
    try:
        import ray.rllib  # noqa: F401
        from ray.rllib.algorithms.ppo import PPOConfig  # noqa: F401
        import torch  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install.
        logger.debug("RLlib is not usable: %r", exc)
        return False
    return True


def _ensure_ray() -> None:
    """Start the benchmarks' local Ray (``common.start_ray``) unless one is already initialised."""
    if common.start_ray():
        logger.info("Started Ray for the RLlib peer")


def _warn_if_busy(threshold: float = 0.25) -> None:
    """Log a warning when other work already loads the machine's CPUs.

    On a small machine, concurrent jobs (e.g. another test suite's Ray actors)
    can slow RLlib's iterations by more than 10x and make timings meaningless.
    """
    busy = common.cpu_busy_fraction()
    if busy is not None and busy > threshold:
        logger.warning(
            "CPUs are %.0f%% busy before the RLlib run; timings may be "
            "inflated by other processes",
            100 * busy,
        )


def _torch_num_threads() -> Optional[int]:
    """Torch intra-op threads in this process (None if torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _ppo_config(
    env_id: str,
    num_env_runners: int,
    num_envs_per_env_runner: int,
    fcnet_hiddens: Sequence[int],
    fcnet_activation: str,
    seed: Optional[int],
    model_overrides: Optional[Dict[str, Any]] = None,
) -> Any:
    """Common part of the PPOConfig (env, runners, local learner, model)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    config = (
        PPOConfig()
        .environment(env_id)
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
        )
        .learners(num_learners=0)
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=list(fcnet_hiddens),
                fcnet_activation=fcnet_activation,
                **(model_overrides or {}),
            )
        )
    )
    if seed is not None:
        config = config.debugging(seed=seed)
    return config


def _build(config: Any) -> Any:
    """Build an Algorithm from a config (``build_algo`` on new Ray, else ``build``)."""
    if hasattr(config, "build_algo"):
        return config.build_algo()
    return config.build()


def _get(result: Dict[str, Any], *path: str, default: Any = None) -> Any:
    """Nested dict lookup that returns ``default`` when a key is missing."""
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _episode_return_mean(result: Dict[str, Any], evaluation: bool = False) -> float:
    """``env_runners/episode_return_mean`` of a train() or evaluate() result.

    NaN when no episode has finished yet. ``evaluation=True`` also accepts the
    result nested under ``"evaluation"`` (as some Ray versions return it); a
    train() result must not use that key, it holds the last, stale evaluation.
    """
    value = _get(result, "env_runners", "episode_return_mean")
    if value is None and evaluation:
        value = _get(result, "evaluation", "env_runners", "episode_return_mean")
    return float("nan") if value is None else float(value)


def _lifetime_env_steps(result: Dict[str, Any]) -> int:
    """Lifetime env steps sampled for training (evaluation steps not included)."""
    value = result.get("num_env_steps_sampled_lifetime")
    if value is None:
        value = _get(result, "env_runners", "num_env_steps_sampled_lifetime", default=0)
    return int(value)


def _train_until_target(algo: Any, name: str, env_id: str, t_start: float, build_s: float, target_return: float,
                        time_budget_s: float, evaluation_trigger_return: float, evaluation_episodes: int,
                        num_env_runners: int, max_env_steps: Optional[int] = None,
                        consecutive: int = 1,
                        eval_score: Optional[Callable[[Dict[str, Any]], float]] = None) -> Dict[str, Any]:
    """Train until a greedy evaluation reaches ``target_return`` (``consecutive`` times in a row)
    or the budget (from ``t_start``, and ``max_env_steps`` if given) is used.

    An evaluation runs after each iteration whose smoothed training return reaches
    ``evaluation_trigger_return`` (``-inf``: after every iteration), scored by ``eval_score``
    (default: its ``env_runners/episode_return_mean``). Stops ``algo``.
    """
    score = eval_score or (lambda evaluation: _episode_return_mean(evaluation, evaluation=True))
    reached = False
    iterations = env_steps = evaluations = 0
    eval_s = 0.0
    final_eval_return = last_train_return = float("nan")
    streak = common.Streak(consecutive)
    try:
        while time.perf_counter() - t_start < time_budget_s and (max_env_steps is None or env_steps < max_env_steps):
            result = algo.train()
            iterations += 1
            env_steps = _lifetime_env_steps(result)
            last_train_return = _episode_return_mean(result)
            timers = result.get("timers", {})
            logger.info(
                # RLlib's `timers` are smoothed over iterations (they barely move
                # while time_this_iter_s jumps), so they are labelled as such.
                "RLlib %s iter %d: env_steps=%d train_return=%.1f iter=%.2fs "
                "(smoothed timers: sample=%.2fs learn=%.2fs) elapsed=%.1fs",
                name, iterations, env_steps, last_train_return,
                float(result.get("time_this_iter_s", float("nan"))),
                float(timers.get("env_runner_sampling_timer", float("nan"))),
                float(timers.get("learner_update_timer", float("nan"))),
                time.perf_counter() - t_start,
            )
            if not last_train_return >= evaluation_trigger_return:  # False for NaN too.
                continue
            t_eval = time.perf_counter()
            final_eval_return = float(score(algo.evaluate()))
            eval_s += time.perf_counter() - t_eval
            evaluations += 1
            logger.info("RLlib %s iter %d: greedy eval over %d episodes = %.1f",
                        name, iterations, evaluation_episodes, final_eval_return)
            if streak.add(final_eval_return >= target_return):
                reached = True
                break
        wall_s = time.perf_counter() - t_start
    finally:
        algo.stop()
    if not reached:
        logger.warning("RLlib %s did not reach %.1f on %s within %.0fs (iterations=%d, env_steps=%d, "
                       "last train return=%.1f)", name, target_return, env_id, time_budget_s, iterations,
                       env_steps, last_train_return)
    return {
        "reached": reached, "consecutive": consecutive, "wall_s": wall_s, "train_s": wall_s - eval_s,
        "env_steps": env_steps,
        "iterations": iterations, "final_eval_return": final_eval_return,
        "env_steps_per_s": env_steps / wall_s if wall_s > 0 else 0.0, "build_s": build_s, "eval_s": eval_s,
        "evaluations": evaluations, "last_train_return": last_train_return, "num_env_runners": num_env_runners,
        "torch_num_threads": _torch_num_threads(),
    }


def rllib_ppo_to_target(
    env_id: str = "CartPole-v1",
    target_return: float = 450.0,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 1,
    train_batch_size: int = 4000,
    minibatch_size: int = 128,
    num_epochs: int = 10,
    lr: float = 3e-4,
    gamma: float = 0.99,
    lambda_: float = 0.95,
    clip_param: float = 0.2,
    vf_loss_coeff: float = 0.5,
    entropy_coeff: float = 0.0,
    fcnet_hiddens: Sequence[int] = (64, 64),
    fcnet_activation: str = "tanh",
    evaluation_episodes: int = 10,
    time_budget_s: float = 600,
    seed: int = 0,
    *,
    evaluation_trigger_return: Optional[float] = None,
    training_overrides: Optional[Dict[str, Any]] = None,
    model_overrides: Optional[Dict[str, Any]] = None,
    consecutive: int = 1,
    evaluation_overrides: Optional[Dict[str, Any]] = None,
    max_env_steps: Optional[int] = None,
    config_hook: Optional[Callable[[Any], Any]] = None,
    eval_score: Optional[Callable[[Dict[str, Any]], float]] = None,
) -> Dict[str, Any]:
    """Train RLlib PPO until a greedy evaluation reaches ``target_return`` (``consecutive`` times in a row).

    After every training iteration whose ``env_runners/episode_return_mean`` is
    at least ``evaluation_trigger_return`` (default: ``target_return``; pass
    ``-math.inf`` to evaluate after every iteration, which does not depend on how
    RLlib smooths its training return), runs ``algo.evaluate()`` for
    ``evaluation_episodes`` greedy episodes (``explore=False``, in the driver).
    Stops when that evaluation mean is at least ``target_return`` or when
    ``time_budget_s`` (counted from the start of the build) is used up; the
    budget is checked between iterations, so the last iteration and its
    evaluation may run a little past it.

    Returns a dict with:

    * ``reached``: whether the greedy evaluation reached the target.
    * ``wall_s``: seconds from the start of the build to reaching the target
      (build, training and evaluations included); if not reached, the seconds
      used until stopping.
    * ``train_s``: ``wall_s`` less the evaluations.
    * ``env_steps``: lifetime env steps sampled for training at that point
      (evaluation steps are not counted).
    * ``iterations``: training iterations run.
    * ``final_eval_return``: mean return of the last evaluation (NaN if none).
    * ``env_steps_per_s``: ``env_steps / wall_s`` (end-to-end, learning and
      evaluation included).
    * extras: ``build_s``, ``eval_s`` (total), ``evaluations``,
      ``last_train_return``, ``num_env_runners``, ``torch_num_threads`` (in the
      driver, where the local Learner runs; the caller sets it).

    ``training_overrides`` / ``model_overrides`` are extra keyword arguments
    for ``PPOConfig.training()`` / ``DefaultModelConfig`` (e.g. to align with
    our PPO: RLlib defaults to ``use_kl_loss=True, kl_coeff=0.2,
    vf_clip_param=10.0`` and to a shared policy/value trunk,
    ``vf_share_layers=True``). ``evaluation_overrides`` are extra ``evaluation_config``
    entries (e.g. ``{"num_envs_per_env_runner": 1}``, so that evaluation does not favour
    short episodes). ``max_env_steps`` also stops training once that many env steps
    were sampled (checked between iterations, as the time budget). ``config_hook`` takes the
    finished PPOConfig and returns the one to build, for settings outside those groups (RLlib
    connectors: ``config.env_runners(env_to_module_connector=...)``, ``config.learners(learner_connector=...)``).
    ``eval_score`` turns an ``evaluate()`` result into the figure compared with the target
    (default: ``env_runners/episode_return_mean``; a multi-agent task may divide it by its agents).

    Ray is initialised with 2 CPUs if it is not running yet and is left
    running; the Algorithm is stopped before returning.
    """
    _ensure_ray()
    _warn_if_busy()
    if evaluation_trigger_return is None:
        evaluation_trigger_return = target_return

    t_start = time.perf_counter()
    config = (
        _ppo_config(
            env_id,
            num_env_runners,
            num_envs_per_env_runner,
            fcnet_hiddens,
            fcnet_activation,
            seed,
            model_overrides,
        )
        .training(
            train_batch_size_per_learner=train_batch_size,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
            lr=lr,
            gamma=gamma,
            lambda_=lambda_,
            clip_param=clip_param,
            vf_loss_coeff=vf_loss_coeff,
            entropy_coeff=entropy_coeff,
            **(training_overrides or {}),
        )
        .evaluation(
            # See module docstring: needed to get a separate, greedy eval runner.
            evaluation_interval=_NEVER_AUTO_EVALUATE,
            # Evaluate in the driver: a remote eval runner can starve for CPUs.
            evaluation_num_env_runners=0,
            evaluation_duration=evaluation_episodes,
            evaluation_duration_unit="episodes",
            evaluation_config={"explore": False, **(evaluation_overrides or {})},
        )
    )
    if config_hook is not None:
        config = config_hook(config)
    algo = _build(config)
    build_s = time.perf_counter() - t_start
    logger.info(
        "RLlib PPO on %s built in %.2fs (num_env_runners=%d)",
        env_id,
        build_s,
        num_env_runners,
    )

    return _train_until_target(algo, "PPO", env_id, t_start, build_s, target_return, time_budget_s,
                               evaluation_trigger_return, evaluation_episodes, num_env_runners,
                               max_env_steps=max_env_steps, consecutive=consecutive, eval_score=eval_score)


def rllib_dqn_to_target(
    env_id: str = "CartPole-v1",
    target_return: float = 450.0,
    seed: int = 0,
    time_budget_s: float = 300,
    *,
    training: Dict[str, Any],
    fcnet_hiddens: Sequence[int] = (64, 64),
    fcnet_activation: str = "relu",
    rollout_fragment_length: int = 4,
    min_sample_timesteps_per_iteration: int = 1000,
    evaluation_episodes: int = 10,
    model_overrides: Optional[Dict[str, Any]] = None,
    consecutive: int = 1,
) -> Dict[str, Any]:
    """Train RLlib DQN (new API stack) until a greedy evaluation reaches ``target_return``.

    The same protocol as :func:`rllib_ppo_to_target` with ``evaluation_trigger_return=-inf``:
    ``algo.evaluate()`` (greedy, in the driver) after every training iteration; stop on the
    target in ``consecutive`` evaluations in a row or when ``time_budget_s`` (from the start
    of the build) is used up. ``training``
    goes to ``DQNConfig.training()`` as is (RLlib's names: ``replay_buffer_config``,
    ``n_step``, ``double_q``, ``dueling``, ``epsilon``, ...). Returns the same keys.
    """
    from ray.rllib.algorithms.dqn import DQNConfig

    return _rllib_replay_to_target(DQNConfig, "DQN", env_id, target_return, seed, time_budget_s, training,
                                   fcnet_hiddens, fcnet_activation, rollout_fragment_length,
                                   min_sample_timesteps_per_iteration, evaluation_episodes, model_overrides,
                                   consecutive=consecutive)


def rllib_sac_to_target(
    env_id: str = "Pendulum-v1",
    target_return: float = -250.0,
    seed: int = 0,
    time_budget_s: float = 300,
    *,
    training: Dict[str, Any],
    fcnet_hiddens: Sequence[int] = (256, 256),
    fcnet_activation: str = "relu",
    rollout_fragment_length: int = 1,
    min_sample_timesteps_per_iteration: int = 1000,
    evaluation_episodes: int = 10,
    model_overrides: Optional[Dict[str, Any]] = None,
    max_env_steps: Optional[int] = None,
    consecutive: int = 1,
) -> Dict[str, Any]:
    """Train RLlib SAC (new API stack) until a greedy evaluation reaches ``target_return``.

    The protocol of :func:`rllib_dqn_to_target`, optionally capped at ``max_env_steps`` and
    asking for the target in ``consecutive`` evaluations in a row;
    ``training`` goes to ``SACConfig.training()`` as is (``actor_lr``, ``critic_lr``,
    ``alpha_lr``, ``tau``, ``initial_alpha``, ...).
    """
    from ray.rllib.algorithms.sac import SACConfig

    return _rllib_replay_to_target(SACConfig, "SAC", env_id, target_return, seed, time_budget_s, training,
                                   fcnet_hiddens, fcnet_activation, rollout_fragment_length,
                                   min_sample_timesteps_per_iteration, evaluation_episodes, model_overrides,
                                   max_env_steps, consecutive)


def _rllib_replay_to_target(config_class: Any, name: str, env_id: str, target_return: float, seed: int,
                            time_budget_s: float, training: Dict[str, Any], fcnet_hiddens: Sequence[int],
                            fcnet_activation: str, rollout_fragment_length: int,
                            min_sample_timesteps_per_iteration: int, evaluation_episodes: int,
                            model_overrides: Optional[Dict[str, Any]],
                            max_env_steps: Optional[int] = None, consecutive: int = 1) -> Dict[str, Any]:
    """One replay-based RLlib algorithm on one local runner and a local learner, trained to a target."""
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    _ensure_ray()
    _warn_if_busy()
    t_start = time.perf_counter()
    config = (
        config_class()
        .environment(env_id)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, rollout_fragment_length=rollout_fragment_length)
        .learners(num_learners=0)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(fcnet_hiddens),
                                                   fcnet_activation=fcnet_activation, **(model_overrides or {})))
        .training(**training)
        .reporting(min_sample_timesteps_per_iteration=min_sample_timesteps_per_iteration)
        .evaluation(evaluation_interval=_NEVER_AUTO_EVALUATE, evaluation_num_env_runners=0,
                    evaluation_duration=evaluation_episodes, evaluation_duration_unit="episodes",
                    evaluation_config={"explore": False})
        .debugging(seed=seed)
    )
    algo = _build(config)
    build_s = time.perf_counter() - t_start
    return _train_until_target(algo, name, env_id, t_start, build_s, target_return, time_budget_s,
                               -math.inf, evaluation_episodes, 0, max_env_steps, consecutive)


def rllib_sampling_throughput(
    env_id: str = "CartPole-v1",
    num_env_runners: int = 2,
    num_envs_per_env_runner: int = 1,
    seconds: float = 20.0,
    fcnet_hiddens: Sequence[int] = (64, 64),
    steps_per_call: int = 1000,
    warmup_calls: int = 2,
    fetch_episodes: bool = True,
) -> Dict[str, Any]:
    """Measure RLlib's sampling speed (env steps per second) with PPO's EnvRunners.

    Builds a PPO Algorithm (build time excluded), runs ``warmup_calls``
    untimed sampling rounds, then repeats rounds for about ``seconds``. In each
    round every remote EnvRunner samples at least ``steps_per_call`` env steps
    (per runner, over all its vectorised envs), in parallel, via
    ``algo.env_runner_group.foreach_env_runner``; with ``num_env_runners=0``
    the local EnvRunner in the driver samples instead. Actions come from the
    exploring RLModule, as in training.

    ``fetch_episodes=True`` (default) ships the sampled episodes back to the
    driver, as PPO's training step does; ``False`` returns only step counts
    (pure rollout speed, no object transfer). The runners' metrics are reduced
    after every call (``get_metrics()``), as in training, so they stay bounded.

    Returns ``{"env_steps_per_s", "env_steps", "seconds", "num_env_runners",
    "torch_num_threads"}`` where ``seconds`` is the measured time. Ray is
    started if needed and left running; the Algorithm is stopped before
    returning.
    """
    _ensure_ray()
    _warn_if_busy()

    config = _ppo_config(
        env_id,
        num_env_runners,
        num_envs_per_env_runner,
        fcnet_hiddens,
        "tanh",
        seed=0,
    ).training(
        # Not used for sampling, but keep it consistent with the runner count.
        train_batch_size_per_learner=max(steps_per_call * max(num_env_runners, 1), 128),
        minibatch_size=128,
    )
    t_build = time.perf_counter()
    algo = _build(config)
    logger.info(
        "RLlib sampler on %s built in %.2fs (num_env_runners=%d)",
        env_id,
        time.perf_counter() - t_build,
        num_env_runners,
    )

    def _sample_on_runner(runner: Any) -> Any:
        episodes = runner.sample(num_timesteps=steps_per_call)
        runner.get_metrics()
        if fetch_episodes:
            return episodes
        return sum(e.env_steps() for e in episodes)

    def _count(out: Any) -> int:
        if isinstance(out, int):
            return out
        return sum(e.env_steps() for e in out)

    group = algo.env_runner_group
    use_local = group.num_remote_env_runners() == 0

    def _round() -> int:
        if use_local:
            return _count(_sample_on_runner(group.local_env_runner))
        outs = group.foreach_env_runner(_sample_on_runner, local_env_runner=False)
        if len(outs) != num_env_runners:
            logger.warning(
                "Only %d of %d EnvRunners returned samples", len(outs), num_env_runners
            )
        return sum(_count(o) for o in outs)

    try:
        for _ in range(warmup_calls):
            _round()
        env_steps = 0
        t0 = time.perf_counter()
        while True:
            env_steps += _round()
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
    finally:
        algo.stop()

    rate = env_steps / elapsed if elapsed > 0 else 0.0
    logger.info(
        "RLlib sampling: %d env steps in %.2fs = %.0f steps/s (num_env_runners=%d)",
        env_steps,
        elapsed,
        rate,
        num_env_runners,
    )
    return {
        "env_steps_per_s": rate,
        "env_steps": env_steps,
        "seconds": elapsed,
        "num_env_runners": num_env_runners,
        "torch_num_threads": _torch_num_threads(),
    }


if __name__ == "__main__":
    import json

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not rllib_available():
        raise SystemExit('RLlib is not installed: pip install "ray[rllib]"')

    import ray

    _ensure_ray()
    report: Dict[str, Any] = {}
    try:
        for n in (0, 2):
            report[f"sampling_runners_{n}"] = rllib_sampling_throughput(
                num_env_runners=n, seconds=10.0
            )
        for n in (0, 2):
            report[f"ppo_to_450_runners_{n}"] = rllib_ppo_to_target(
                num_env_runners=n, time_budget_s=300.0
            )
    finally:
        ray.shutdown()
    print(json.dumps(common.json_safe(report), indent=2))
