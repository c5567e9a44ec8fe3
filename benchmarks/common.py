"""Shared helpers for the benchmark scripts (``ppo_learning.py``, ``sampling_throughput.py``, ...).

* machine facts and CPU load, recorded in every JSON report: other jobs on a small
  machine distort wall-clock times, so a report says how busy the CPUs were, and the
  scripts compare only ratios measured in the same run;
* :func:`train_to_target`: train one of our algorithms until a greedy evaluation
  reaches a target, within a time budget (the RLlib side is ``rllib_peer``);
* :class:`Streak`: a target counts only once it held for ``CONSECUTIVE`` checks in a row;
* :func:`summarize_runs` and :func:`spread`: medians over seeds with their min-max;
* :func:`emit` and :func:`finish`: the one JSON object out, with :func:`command_line`.

Run the scripts from the repository root, ``python benchmarks/<name>.py --help``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

logger = logging.getLogger("benchmarks")

RESULTS_DIR = Path(__file__).resolve().parent / "results"

TORCH_THREADS = 1
"""Torch intra-op threads in the driver, for our side and RLlib's alike (see set_torch_threads)."""

CONSECUTIVE = 3
"""Checks in a row at the target before a learning figure counts it as reached (see Streak)."""


# ---------------------------------------------------------------------- command line and output
def base_parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark script has: --quick, --no-rllib, --out, --verbose."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="small budgets (about 1-2 min in all), to smoke-check the script")
    parser.add_argument("--no-rllib", action="store_true", help="skip the RLlib peer runs")
    parser.add_argument("--out", nargs="?", const="", default=None, metavar="PATH",
                        help="also write the JSON report to PATH (default benchmarks/results/<name>.json)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def configure_logging(verbose: bool = False) -> None:
    """Progress goes to stderr through logging; stdout carries only the final JSON."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Ray and RLlib are chatty at INFO; their warnings still show.
    for name in ("ray", "ray.rllib", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)


def set_torch_threads(threads: int = TORCH_THREADS) -> None:
    """Fix torch's intra-op threads in this process for both libraries.

    The setting is process-wide, and marl_arena's local learner sets it too
    (``num_cpus_per_learner``), so without this the RLlib run would get whatever the
    previous run left. Small MLPs on more threads than free cores lose badly to OpenMP
    spinning: RLlib's iteration on CartPole took 2-18 s with 2 threads on a loaded
    2-core machine, about 2.2 s with 1. Ray sets OMP_NUM_THREADS=1 in its 1-CPU actors.
    """
    torch.set_num_threads(threads)


def map_runs(run: Callable[[Any], Any], items: Sequence[Any], jobs: int = 1) -> list[Any]:
    """``run(item)`` for every item (a seed, a model ...), in order: in this process, or ``jobs`` at
    once in fresh (spawned) processes, each with ``set_torch_threads``. Runs at once share the
    machine, so their wall times are inflated; their env-step counts are not."""
    if jobs <= 1:
        return [run(item) for item in items]
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_start_run_process, initargs=(os.getpid(),)) as pool:
        return list(pool.map(run, items))


def _start_run_process(parent: int) -> None:
    """A ``map_runs`` process: ``set_torch_threads``, and an exit as soon as its parent is gone, so that a
    benchmark stopped by hand leaves no run training on (a pool's processes outlive a killed parent)."""
    set_torch_threads()

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


def json_safe(value: Any) -> Any:
    """NaN and inf become None, tuples lists and non-string keys strings: strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(report: dict[str, Any], name: str, out: str | None) -> None:
    """Print ``report`` as one JSON object on stdout; with ``out`` also write it to a file."""
    text = json.dumps(json_safe(report), indent=2, sort_keys=False)
    if out is not None:
        path = Path(out) if out else RESULTS_DIR / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        logger.info("Wrote %s", path)
    print(text)


def stop_ray(started_here: bool) -> None:
    """Shut down the Ray that ``start_ray`` started in this run (leave anyone else's running)."""
    if started_here:
        import ray

        ray.shutdown()


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that produced a report, recorded in it so that anyone can rerun it as printed."""
    script = Path(sys.argv[0])
    if script.is_absolute():
        script = script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd()) else script
    args = list(argv) if argv is not None else sys.argv[1:]
    return shlex.join(["python", str(script), *args])


def finish(report: dict[str, Any], name: str, out: str | None, started: float) -> None:
    """Stamp the command line, total wall time and the load at the end, and emit the report."""
    report.setdefault("command", command_line())
    report["total_wall_s"] = time.perf_counter() - started
    report["machine"]["load_at_end"] = load_snapshot()
    emit(report, name, out)


def start_ray() -> bool:
    """Start a local Ray (all CPUs, no dashboard) unless one runs; True if this call started it.

    Start it before the first timed run, so that both libraries run beside Ray's idle
    processes, not only the one that happens to need Ray. Its workers run at the driver's
    priority (``ensure_ray``: Ray's default lowers theirs to nice 15): a timed runner must not
    yield its core to any other niced job on the machine while the driver's learner does not.
    """
    import ray

    from marl_arena.runners.resources import ensure_ray

    if ray.is_initialized():
        return False
    ensure_ray()
    wait_until_quiet()  # Ray keeps a CPU busy for a few seconds after init (its worker pool starts)
    return True


def wait_until_quiet(max_wait_s: float = 10.0, threshold: float = 0.25) -> float | None:
    """Wait (at most ``max_wait_s``) until the CPUs are less than ``threshold`` busy; return the last reading."""
    deadline = time.perf_counter() + max_wait_s
    busy = cpu_busy_fraction()
    while busy is not None and busy >= threshold and time.perf_counter() < deadline:
        busy = cpu_busy_fraction()
    return busy


# ---------------------------------------------------------------------- machine and load
def cpu_busy_fraction(interval_s: float = 0.5) -> float | None:
    """Fraction of all CPU time spent busy over ``interval_s`` (Linux /proc/stat; else None)."""

    def read() -> list[int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = f.readline().split()
        except OSError:
            return None
        return [int(x) for x in fields[1:]] if fields and fields[0] == "cpu" else None

    first = read()
    time.sleep(interval_s)
    second = read()
    if first is None or second is None:
        return None
    delta = [b - a for a, b in zip(first, second)]
    total = sum(delta)
    idle = delta[3] + (delta[4] if len(delta) > 4 else 0)  # idle + iowait
    return (total - idle) / total if total > 0 else None


def load_snapshot() -> dict[str, Any]:
    """Load average (1, 5, 15 min) and how busy the CPUs are right now, before a timed phase."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    busy = cpu_busy_fraction()
    return {"loadavg": load, "cpu_busy": None if busy is None else round(busy, 3)}


def log_load(label: str, threshold: float = 0.25) -> dict[str, Any]:
    """Take a :func:`load_snapshot`, log it, and warn when other work loads the CPUs."""
    snap = load_snapshot()
    busy = snap["cpu_busy"]
    if busy is not None and busy > threshold:
        logger.warning("%s: CPUs %.0f%% busy before starting (load %s); timings may be inflated",
                       label, 100 * busy, snap["loadavg"])
    else:
        logger.info("%s: CPU busy %s, load %s", label, busy, snap["loadavg"])
    return snap


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What ran the benchmark: CPUs, load at start, library versions, torch threads."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "ray": _version("ray"),
        "gymnasium": _version("gymnasium"),
        "marl_arena": _version("marl-arena"),
        "load_at_start": load_snapshot(),
    }


# ---------------------------------------------------------------------- runs and summaries
class Streak:
    """Checks in a row that met a target.

    A learning figure is taken at the first point where the target held ``needed`` checks
    in a row, never at the first or the best single check: a noisy policy (a greedy
    CartPole policy, a self-play iterate) passes one check by luck long before it holds.
    """

    def __init__(self, needed: int = CONSECUTIVE):
        self.needed = needed
        self.count = 0

    def add(self, passed: bool) -> bool:
        """Record one check; True once the target has held ``needed`` checks in a row."""
        self.count = self.count + 1 if passed else 0
        return self.count >= self.needed


def median(values: Sequence[float]) -> float:
    return spread(values)["median"]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of one figure over seeds or repeats (None and NaN left out): the
    README prints all three, so a lucky or unlucky run is visible instead of standing in for the rest."""
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not kept:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": float(statistics.median(kept)), "min": min(kept), "max": max(kept)}


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One task's figures over its seeds: ``reached`` only if every seed reached the target;
    env steps, wall seconds, iterations and final return as medians (all seeds in ``runs``),
    and the spread of env steps and wall seconds."""
    return {
        "reached": bool(runs) and all(r["reached"] for r in runs),
        "reached_seeds": sum(bool(r["reached"]) for r in runs),
        "seeds": len(runs),
        "seed_list": [r["seed"] for r in runs],
        "env_steps": median([r["env_steps"] for r in runs]),
        "env_steps_spread": spread([r["env_steps"] for r in runs]),
        "wall_s": median([r["wall_s"] for r in runs]),
        "wall_s_spread": spread([r["wall_s"] for r in runs]),
        "train_s": median([r.get("train_s", float("nan")) for r in runs]),
        "iterations": median([r["iterations"] for r in runs]),
        "final_eval_return": median([r["final_eval_return"] for r in runs]),
        "runs": runs,
    }


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is missing or the denominator is 0."""
    if not numerator or not denominator or math.isnan(numerator) or math.isnan(denominator):
        return float("nan")
    return numerator / denominator


def peer_ratios(ours: dict[str, Any], rllib: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Our wall time and env steps over RLlib's (``summarize_runs`` medians of one task), with a
    note when a side missed the target, since its wall time is then the budget used."""
    return {
        f"{prefix}wall_s_ours_over_rllib": ratio(ours["wall_s"], rllib["wall_s"]),
        f"{prefix}env_steps_ours_over_rllib": ratio(ours["env_steps"], rllib["env_steps"]),
        "note": None if ours["reached"] and rllib["reached"] else
        "a side did not reach the target on every seed: its wall_s is the time used, not a time to target",
    }


def train_to_target(
    config: Any,
    *,
    target: float,
    time_budget_s: float,
    label: str,
    eval_trigger: float = -math.inf,
    train_score: Callable[[dict], float] | None = None,
    eval_score: Callable[[dict], float] | None = None,
    eval_details: Callable[[dict], dict] | None = None,
    max_env_steps: int | None = None,
    consecutive: int = 1,
) -> dict[str, Any]:
    """Train ``config.build_algo()`` until a greedy ``algo.evaluate()`` scores ``target``.

    After each ``train()`` whose ``train_score`` (default: ``env_runners/episode_return_mean``)
    is at least ``eval_trigger``, run ``algo.evaluate()`` and score it with ``eval_score``
    (default: its ``env_runners/episode_return_mean``). Stops on reaching ``target`` (in
    ``consecutive`` evaluations in a row, so that one lucky evaluation of an early policy
    does not count) or when ``time_budget_s`` (counted from the start of the build) is used
    up, or once ``max_env_steps`` were sampled (if given); the budgets are checked between
    iterations. This is the same protocol as ``rllib_peer.rllib_ppo_to_target``.

    Returns ``reached``, ``consecutive``, ``env_steps`` (sampled for training, evaluation excluded),
    ``wall_s`` (build + training + evaluations, to the target or the stop), ``train_s``
    (``wall_s`` less evaluations), ``iterations``, ``final_eval_return``, ``build_s``,
    ``eval_s``, ``evaluations``, ``last_train_score``, the last evaluation's ``eval_details``,
    and the median per-iteration timers.
    """
    train_score = train_score or (lambda r: r["env_runners"]["episode_return_mean"])
    eval_score = eval_score or (lambda r: r["env_runners"]["episode_return_mean"])
    t_start = time.perf_counter()
    algo = config.build_algo()
    build_s = time.perf_counter() - t_start
    reached = False
    iterations = env_steps = evaluations = 0
    eval_s = 0.0
    final_eval = last_train = float("nan")
    details: dict[str, Any] = {}
    timers: dict[str, list[float]] = {}
    streak = Streak(consecutive)
    try:
        while time.perf_counter() - t_start < time_budget_s and (max_env_steps is None or env_steps < max_env_steps):
            result = algo.train()
            iterations += 1
            env_steps = int(result["num_env_steps_sampled_lifetime"])
            last_train = float(train_score(result))
            for name, value in result.get("timers", {}).items():
                timers.setdefault(name, []).append(value)
            timers.setdefault("time_this_iter_s", []).append(result["time_this_iter_s"])
            logger.debug("%s iter %d: env_steps=%d train=%.1f iter=%.3fs timers=%s", label, iterations,
                         env_steps, last_train, result["time_this_iter_s"], result.get("timers"))
            if not last_train >= eval_trigger:  # False for NaN (no finished episode) too.
                continue
            t_eval = time.perf_counter()
            evaluation = algo.evaluate()
            eval_s += time.perf_counter() - t_eval
            evaluations += 1
            final_eval = float(eval_score(evaluation))
            details = eval_details(evaluation) if eval_details else {}
            if streak.add(final_eval >= target):
                reached = True
                break
        wall_s = time.perf_counter() - t_start
    finally:
        algo.stop()
    log = logger.info if reached else logger.warning
    log("%s: %s %.1f after %d iterations, %d env steps, %.1fs (eval %.1f, last train %.1f)", label,
        "reached" if reached else "did NOT reach", target, iterations, env_steps, wall_s, final_eval, last_train)
    return {
        "reached": reached,
        "consecutive": consecutive,
        "env_steps": env_steps,
        "wall_s": wall_s,
        "train_s": wall_s - eval_s,
        "iterations": iterations,
        "final_eval_return": final_eval,
        "build_s": build_s,
        "eval_s": eval_s,
        "evaluations": evaluations,
        "last_train_score": last_train,
        **({"final_eval_details": details} if details else {}),
        "median_iteration_timers_s": {k: median(v) for k, v in timers.items()},
    }
