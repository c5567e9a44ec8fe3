"""PPO speed against RLlib under RLlib's own tuned settings, side by side.

Protocol 1 (``--tasks``, default ``cartpole``): both libraries run the same settings, a
``Task``: one of RLlib's tuned examples with everything else at RLlib 2.60's ``PPOConfig``
and ``DefaultModelConfig`` defaults, which marl_arena's defaults do not all share, so every
field is set explicitly on both sides.

* ``cartpole``: the tuned CartPole example (lr 3e-4, 6 epochs, vf_loss_coeff 0.01), one
  remote env runner; target 450.
* ``ma_cartpole``: the tuned multi-agent CartPole example with 4 agents and one module per
  agent (a [32] linear trunk), one remote env runner, each library's own MultiAgentCartPole;
  target a mean return of 400 per agent (the example's stop: 400 x 4 summed over the agents).
* ``pendulum``: the tuned Pendulum example (batch 1024, lr 2e-4, gamma 0.95, lambda 0.5,
  relu, 2 remote runners of 20 envs) without its MeanStdFilter, which marl_arena has no
  counterpart of; target -300.

The protocol is the same on both sides (``common.train_to_target`` and
``rllib_peer.rllib_ppo_to_target``): after every training iteration, ``algo.evaluate()``
runs 10 greedy episodes in the driver; reached when their mean is at the target in
``common.CONSECUTIVE`` evaluations in a row, counted at the last. A greedy evaluation is
used rather than RLlib's stop criterion (the training ``episode_return_mean``) because the
two libraries smooth their training return differently (see ``ppo_learning.py``), so the
same threshold would not mean the same thing on both sides.

Each run (``--runs``) trains ours, then RLlib's, on one seed; the report gives, per task,
medians over the runs with min-max spreads of wall seconds (build, training and evaluations
to the target), train seconds (the same less evaluations), env steps, and seconds per training
iteration. ``breakdown_s`` splits our median iteration into sampling (the runners' rollout
and its transfer), weight sync, GAE (the value forward over the batch and the advantage
recursion), minibatch updates, and the rest (batch tensors, metrics, result building).
CartPole writes ``results/ppo_speed.json``; other task lists write ``ppo_speed_<tasks>.json``.

With ``--selfplay`` it also measures self-play throughput on OpenSpiel connect_four
(``SELFPLAY``): one module plays both seats, train batch 4000, one remote env runner;
env steps per second over ``SELFPLAY_TIMED_ITERATIONS`` iterations after the first (which
builds and warms up), ours and RLlib's PPO through RLlib's ``OpenSpielEnv`` wrapper with the
same settings, ``SELFPLAY_REPS`` times a side, alternating; the figure is each side's median.
Only throughput: no learning target. (RLlib's wrapper has no action mask: an
illegal move raises in OpenSpiel, and the wrapper logs it and plays a random legal move.)

With ``--overlap`` our side runs once more with ``overlap_sampling=True`` (the runner samples
the next batch during the update): not RLlib's algorithm, since each batch then comes from
the weights before the previous update, so it is reported beside the comparison, not in it
(``<task>_overlapped``, and with ``--selfplay`` the self-play throughput as ``ours_overlapped``).

    python benchmarks/ppo_speed.py --quick                                     # one run, smoke check
    python benchmarks/ppo_speed.py --runs 5 --selfplay --overlap --out         # protocols 1 and 2
    python benchmarks/ppo_speed.py --runs 5 --tasks ma_cartpole pendulum --out  # protocol 3

Seeds 100-104 by default; settings and semantics were compared on seeds 0-4.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

try:  # python -m benchmarks.ppo_speed, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/ppo_speed.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import PPOConfig
from marl_arena.env import MultiAgentCartPole, register_env

logger = logging.getLogger("benchmarks.ppo_speed")

NAME = "ppo_speed"
EVAL_EPISODES = 10

# RLlib 2.60's PPOConfig defaults, which marl_arena's defaults do not all share: every task
# starts from these and sets what its tuned example sets.
RLLIB_DEFAULTS: dict[str, Any] = {
    "lr": 5e-5, "num_epochs": 30, "vf_loss_coeff": 1.0,
    "train_batch_size_per_learner": 4000, "minibatch_size": 128, "gamma": 0.99, "lambda_": 1.0,
    "clip_param": 0.3, "vf_clip_param": 10.0, "entropy_coeff": 0.0, "use_kl_loss": True, "kl_coeff": 0.2,
    "kl_target": 0.01, "grad_clip": None,
}
RLLIB_MODEL_DEFAULTS: dict[str, Any] = {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh",
                                        "vf_share_layers": True}
# Kept by name: the CartPole settings are also the other scripts' reference point.
TRAINING: dict[str, Any] = {**RLLIB_DEFAULTS, "lr": 3e-4, "num_epochs": 6, "vf_loss_coeff": 0.01}
MODEL: dict[str, Any] = dict(RLLIB_MODEL_DEFAULTS)
RUNNERS: dict[str, Any] = {"num_env_runners": 1, "num_envs_per_env_runner": 1}
MA_ENV = "ppo_speed_ma_cartpole"


@dataclass(frozen=True)
class Task:
    """One side-by-side task: the env, the greedy target, and the settings both libraries run."""

    env: str
    target: float
    training: dict[str, Any]
    model: dict[str, Any]
    runners: dict[str, Any]
    settings_from: str  # which RLlib tuned example the settings are, and what differs
    budget_s: dict[str, dict[str, float]]  # per run: {"full"|"quick": {"ours": s, "rllib": s}}
    env_config: dict[str, Any] = field(default_factory=dict)
    num_agents: int = 0  # > 0: one module per agent ("p<agent id>"), scored per agent
    eval_envs: int = 1  # sub-envs of the greedy evaluation: more only where every episode has one length
    max_time_ratio: float = 1.0  # the bound on our wall time over RLlib's (protocol 3: not slower)
    steps_at_most_rllib: bool = False  # the issue also asks for no more env steps than RLlib's median

    def policies(self) -> list[str]:
        return [f"p{i}" for i in range(self.num_agents)]

    def score(self, result: dict) -> float:
        """An ``evaluate()`` result's figure: the mean episode return, per agent where there are several
        (``episode_return_mean`` sums the agents' returns, on both sides)."""
        return rllib_peer._episode_return_mean(result, evaluation=True) / max(1, self.num_agents)


TASKS: dict[str, Task] = {
    "cartpole": Task(
        env="CartPole-v1", target=450.0, training=TRAINING, model=MODEL, runners=RUNNERS,
        settings_from="RLlib's tuned CartPole example (lr 3e-4, 6 epochs, vf_loss_coeff 0.01), one remote runner",
        max_time_ratio=0.25, steps_at_most_rllib=True,
        budget_s={"full": {"ours": 180, "rllib": 480}, "quick": {"ours": 60, "rllib": 120}}),
    "ma_cartpole": Task(
        env=MA_ENV, env_config={"num_agents": 4}, num_agents=4, target=400.0, training=TRAINING,
        model={"fcnet_hiddens": [32], "fcnet_activation": "linear", "vf_share_layers": True}, runners=RUNNERS,
        settings_from="RLlib's tuned multi_agent_cartpole_ppo example with 4 agents, one module per agent "
                      "(lr 3e-4, 6 epochs, vf_loss_coeff 0.01, a [32] linear trunk shared with the value head; "
                      "its stop is a return of 400 per agent), one remote runner; each library's own "
                      "MultiAgentCartPole",
        budget_s={"full": {"ours": 300, "rllib": 600}, "quick": {"ours": 90, "rllib": 120}}),
    "pendulum": Task(
        env="Pendulum-v1", target=-300.0, eval_envs=EVAL_EPISODES,
        training={**RLLIB_DEFAULTS, "train_batch_size_per_learner": 1024, "minibatch_size": 128, "lr": 2e-4,
                  "gamma": 0.95, "lambda_": 0.5},
        model={**RLLIB_MODEL_DEFAULTS, "fcnet_activation": "relu"},
        runners={"num_env_runners": 2, "num_envs_per_env_runner": 20},
        settings_from="RLlib's tuned pendulum_ppo example (batch 1024, minibatch 128, lr 2e-4, gamma 0.95, "
                      "lambda 0.5, relu, 2 remote runners of 20 envs; its stop is -300) without its MeanStdFilter "
                      "observation connector, which marl_arena lacks",
        budget_s={"full": {"ours": 300, "rllib": 600}, "quick": {"ours": 90, "rllib": 120}}),
}
FIRST_SEED = 100  # fresh: the semantics were compared on seeds 0-4

GAME = "connect_four"
SELFPLAY: dict[str, Any] = {"train_batch_size_per_learner": 4000, "minibatch_size": 128, "num_epochs": 5,
                            "lr": 3e-4}
SELFPLAY_TIMED_ITERATIONS = 3
SELFPLAY_REPS = 3  # one measurement swings with the machine (RLlib's side gave 321 and 439 env steps/s in two runs)


def ours_config(task: Task, seed: int, training: dict[str, Any] | None = None) -> PPOConfig:
    """Our PPO with the task's settings (``training`` overrides fields)."""
    config = (
        PPOConfig()
        .environment(task.env, env_config=task.env_config)
        .env_runners(**task.runners)
        .learners(num_learners=0)
        .training(**{**task.training, **(training or {})})
        .rl_module(model_config=dict(task.model))
        .evaluation(evaluation_duration=EVAL_EPISODES, evaluation_duration_unit="episodes",
                    evaluation_num_env_runners=0,
                    evaluation_config={"explore": False, "num_envs_per_env_runner": task.eval_envs})
        .debugging(seed=seed)
    )
    if task.num_agents:
        config = config.multi_agent(policies=task.policies(), policy_mapping_fn=_module_of_agent)
    return config


def _module_of_agent(agent_id: Any, *args: Any, **kwargs: Any) -> str:
    return f"p{agent_id}"


def run_ours(task_name: str, seed: int, mode: str, training: dict[str, Any] | None = None) -> dict[str, Any]:
    task = TASKS[task_name]
    load = common.log_load(f"ours {task_name} seed {seed}")
    run = common.train_to_target(ours_config(task, seed, training), target=task.target,
                                 time_budget_s=task.budget_s[mode]["ours"], label=f"ours {task_name} seed {seed}",
                                 eval_score=task.score, consecutive=common.CONSECUTIVE)
    return {"seed": seed, **run, "s_per_iteration": _s_per_iteration(run), "breakdown_s": breakdown(run),
            "load_before": load}


def run_rllib(task_name: str, seed: int, mode: str) -> dict[str, Any]:
    task = TASKS[task_name]
    load = common.log_load(f"rllib {task_name} seed {seed}")
    t, model = task.training, task.model
    run = rllib_peer.rllib_ppo_to_target(
        env_id=task.env, target_return=task.target, seed=seed, time_budget_s=task.budget_s[mode]["rllib"],
        num_env_runners=task.runners["num_env_runners"], num_envs_per_env_runner=task.runners["num_envs_per_env_runner"],
        train_batch_size=t["train_batch_size_per_learner"], minibatch_size=t["minibatch_size"],
        num_epochs=t["num_epochs"], lr=t["lr"], gamma=t["gamma"], lambda_=t["lambda_"], clip_param=t["clip_param"],
        vf_loss_coeff=t["vf_loss_coeff"], entropy_coeff=t["entropy_coeff"],
        fcnet_hiddens=model["fcnet_hiddens"], fcnet_activation=model["fcnet_activation"],
        evaluation_episodes=EVAL_EPISODES, evaluation_trigger_return=-float("inf"),
        training_overrides={k: t[k] for k in ("vf_clip_param", "use_kl_loss", "kl_coeff", "kl_target", "grad_clip")},
        model_overrides={"vf_share_layers": model["vf_share_layers"]}, consecutive=common.CONSECUTIVE,
        evaluation_overrides={"num_envs_per_env_runner": task.eval_envs},
        config_hook=_rllib_multi_agent(task) if task.num_agents else None, eval_score=task.score,
    )
    return {"seed": seed, **run, "s_per_iteration": _s_per_iteration(run), "load_before": load}


def _rllib_multi_agent(task: Task) -> Callable[[Any], Any]:
    """RLlib's side of a multi-agent task: its own MultiAgentCartPole, one module per agent."""
    from ray.rllib.examples.envs.classes.multi_agent import MultiAgentCartPole as RLlibMultiAgentCartPole
    from ray.tune.registry import register_env as rllib_register_env

    rllib_register_env(task.env, lambda config: RLlibMultiAgentCartPole(config=config))
    return lambda config: (config.environment(task.env, env_config=task.env_config)
                           .multi_agent(policies=set(task.policies()), policy_mapping_fn=_module_of_agent))


def _throughput(train: Any, lifetime_steps: Any) -> dict[str, Any]:
    """Env steps per second of ``SELFPLAY_TIMED_ITERATIONS`` ``train()`` calls after a first, untimed one."""
    first = lifetime_steps(train())
    start = time.perf_counter()
    for _ in range(SELFPLAY_TIMED_ITERATIONS):
        last = lifetime_steps(train())
    seconds = time.perf_counter() - start
    return {"env_steps": last - first, "seconds": seconds, "iterations": SELFPLAY_TIMED_ITERATIONS,
            "env_steps_per_s": (last - first) / seconds}


def selfplay_ours(seed: int, training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Our PPO, one module on both seats of connect_four, ``SELFPLAY`` settings (``training`` overrides fields)."""
    load = common.log_load("ours self-play" + (f" {training}" if training else ""))
    config = (PPOConfig().environment(f"open_spiel:{GAME}").env_runners(**RUNNERS).learners(num_learners=0)
              .training(**{**SELFPLAY, **(training or {})})
              .rl_module(model_config={k: MODEL[k] for k in ("fcnet_hiddens", "vf_share_layers")})
              .multi_agent(policies=["main"], policy_mapping_fn=lambda agent_id, *args, **kwargs: "main")
              .debugging(seed=seed))
    algo = config.build_algo()
    try:
        return {**_throughput(algo.train, lambda r: int(r["num_env_steps_sampled_lifetime"])), "load_before": load}
    finally:
        algo.stop()


def selfplay_rllib(seed: int) -> dict[str, Any]:
    """RLlib's PPO through its OpenSpielEnv wrapper, one module on both seats, the same settings."""
    import pyspiel
    from ray.rllib.algorithms.ppo import PPOConfig as RLlibPPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.env.wrappers.open_spiel import OpenSpielEnv
    from ray.tune.registry import register_env

    load = common.log_load("rllib self-play")
    register_env("rllib_connect_four", lambda _: OpenSpielEnv(pyspiel.load_game(GAME)))
    # A long sample timeout: on a loaded machine RLlib would otherwise drop a slow batch and count no steps for it.
    config = (RLlibPPOConfig().environment("rllib_connect_four").env_runners(**RUNNERS, sample_timeout_s=600)
              .learners(num_learners=0)
              .multi_agent(policies={"main"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "main")
              .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=MODEL["fcnet_hiddens"],
                                                         vf_share_layers=MODEL["vf_share_layers"]))
              .training(**SELFPLAY).debugging(seed=seed))
    algo = config.build_algo()
    try:
        return {**_throughput(algo.train, rllib_peer._lifetime_env_steps), "load_before": load}
    finally:
        algo.stop()


def throughput_summary(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's self-play throughput: the median over its measurements, their spread, and each."""
    rates = [rep["env_steps_per_s"] for rep in reps]
    return {"env_steps_per_s": common.median(rates), "env_steps_per_s_spread": common.spread(rates), "reps": reps}


def _s_per_iteration(run: dict[str, Any]) -> float:
    """Training seconds per iteration, build and evaluations left out."""
    return (run["train_s"] - run["build_s"]) / run["iterations"] if run["iterations"] else float("nan")


def breakdown(run: dict[str, Any]) -> dict[str, float]:
    """Our median iteration split into its phases (medians of each timer over the iterations)."""
    timers = run["median_iteration_timers_s"]
    parts = {
        "sampling": timers.get("env_runner_sampling_timer", 0.0),
        "weight_sync": timers.get("synch_weights", 0.0),
        "gae": timers.get("learner_prepare_batch", 0.0),
        "minibatch_updates": timers.get("learner_minibatch_updates", 0.0),
    }
    parts["learner_other"] = max(0.0, timers.get("learner_update_timer", 0.0) - parts["gae"] - parts["minibatch_updates"])
    iteration = timers.get("time_this_iter_s", float("nan"))
    parts["metrics_and_other"] = max(0.0, iteration - sum(parts.values()))
    parts["iteration"] = iteration
    return parts


def summary(task: Task, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its runs; ours also the median of each phase of an iteration."""
    figures = {"target": task.target, **common.summarize_runs(runs),
               "s_per_iteration": common.spread([r["s_per_iteration"] for r in runs])}
    if "breakdown_s" in runs[0]:
        figures["breakdown_s"] = {key: common.median([r["breakdown_s"][key] for r in runs])
                                  for key in runs[0]["breakdown_s"]}
    return figures


def ratios(task: Task, ours: dict[str, Any], rllib: dict[str, Any], ours_runs: list[dict[str, Any]],
           rllib_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ours against RLlib on one task: time and env-step ratios, and whether the task's goal held."""
    wall = common.ratio(ours["wall_s"], rllib["wall_s"])
    steps_ok = ours["env_steps"] <= rllib["env_steps"] or not task.steps_at_most_rllib
    return {
        **common.peer_ratios(ours, rllib),
        "train_s_ours_over_rllib": common.ratio(ours["train_s"], rllib["train_s"]),
        "s_per_iteration_ours_over_rllib": common.ratio(ours["s_per_iteration"]["median"],
                                                        rllib["s_per_iteration"]["median"]),
        "wall_s_ours_over_rllib_per_run": [common.ratio(o["wall_s"], r["wall_s"]) for o, r in zip(ours_runs, rllib_runs)],
        "goal": f"wall_s_ours_over_rllib <= {task.max_time_ratio:g}"
                + (" and env steps <= RLlib's median" if task.steps_at_most_rllib else "")
                + ", ours reaching the target (a peer that misses counts the budget it used)",
        "goal_met": bool(ours["reached"] and wall <= task.max_time_ratio and steps_ok),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs, one seed each (default 5, quick 1)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=["cartpole"],
                        help="protocol-1 tasks (default: cartpole)")
    parser.add_argument("--selfplay", action="store_true",
                        help="also measure connect_four self-play throughput (protocol 2)")
    parser.add_argument("--overlap", action="store_true",
                        help="also run ours with overlap_sampling=True (after the side-by-side runs)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED, help="seeds first-seed .. first-seed+runs-1")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    runs = args.runs or (1 if args.quick else 5)
    if runs < 1:
        parser.error(f"--runs must be at least 1, got {runs}")
    seeds = list(range(args.first_seed, args.first_seed + runs))
    use_rllib = not args.no_rllib and rllib_peer.rllib_available()
    started = time.perf_counter()
    register_env(MA_ENV, lambda config: MultiAgentCartPole(config))
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "settings": {name: {"env": TASKS[name].env, "env_config": TASKS[name].env_config,
                            "settings_from": TASKS[name].settings_from, "training": TASKS[name].training,
                            "model": TASKS[name].model, "runners": TASKS[name].runners,
                            "evaluation_num_envs": TASKS[name].eval_envs, "time_budget_s": TASKS[name].budget_s[mode]}
                     for name in args.tasks},
        "protocol": f"after every training iteration algo.evaluate() runs {EVAL_EPISODES} greedy episodes in the "
                    f"driver; reached when their mean (multi-agent: per agent) is at the task's target in "
                    f"{common.CONSECUTIVE} evaluations in a row, counted at the last; each run trains ours then "
                    "RLlib's on one seed; medians over runs",
    }
    ray_started = common.start_ray()  # both sides use remote runners
    side_by_side: dict[str, dict[str, list]] = {name: {"ours": [], "rllib": [], "overlapped": []} for name in args.tasks}
    try:
        for name in args.tasks:
            for seed in seeds:
                side_by_side[name]["ours"].append(run_ours(name, seed, mode))
                if use_rllib:
                    side_by_side[name]["rllib"].append(run_rllib(name, seed, mode))
        if args.selfplay:
            selfplay = report["selfplay"] = {
                "game": GAME, "settings": {**SELFPLAY, "model": MODEL["fcnet_hiddens"],
                                           "vf_share_layers": MODEL["vf_share_layers"], **RUNNERS,
                                           "modules": "one module on both seats"},
                "protocol": f"{SELFPLAY_REPS} measurements a side, alternating ours and RLlib's, on seeds "
                            f"{seeds[0]}..{seeds[0] + SELFPLAY_REPS - 1}; the figure is the median"}
            ours_reps, rllib_reps = [], []
            for rep in range(SELFPLAY_REPS):
                ours_reps.append(selfplay_ours(seeds[0] + rep))
                if use_rllib:
                    rllib_reps.append(selfplay_rllib(seeds[0] + rep))
            selfplay["ours"] = throughput_summary(ours_reps)
            if use_rllib:
                selfplay["rllib"] = throughput_summary(rllib_reps)
                selfplay["env_steps_per_s_ours_over_rllib"] = common.ratio(
                    selfplay["ours"]["env_steps_per_s"], selfplay["rllib"]["env_steps_per_s"])
        if args.overlap:  # ours with overlapped sampling: not RLlib's algorithm (one iteration of policy lag)
            for name in args.tasks:
                side_by_side[name]["overlapped"] = [run_ours(name, seed, mode, {"overlap_sampling": True})
                                                    for seed in seeds]
            if args.selfplay:
                report["selfplay"]["ours_overlapped"] = throughput_summary(
                    [selfplay_ours(seeds[0] + rep, {"overlap_sampling": True}) for rep in range(SELFPLAY_REPS)])
    finally:
        common.stop_ray(ray_started)
    tasks = report["tasks"] = {}
    report["ratios"] = {}
    for name, sides in side_by_side.items():
        task = TASKS[name]
        tasks[name] = summary(task, sides["ours"])
        if sides["rllib"]:
            tasks[f"{name}_rllib"] = summary(task, sides["rllib"])
            report["ratios"][name] = ratios(task, tasks[name], tasks[f"{name}_rllib"], sides["ours"], sides["rllib"])
        if sides["overlapped"]:
            tasks[f"{name}_overlapped"] = summary(task, sides["overlapped"])
    common.finish(report, _result_name(args.tasks), args.out, started)
    return report


def _result_name(task_names: list[str]) -> str:
    """``ppo_speed`` for protocol 1's CartPole, ``ppo_speed_<tasks>`` for the others."""
    return NAME if task_names == ["cartpole"] else "_".join([NAME, *task_names])


if __name__ == "__main__":
    main()
