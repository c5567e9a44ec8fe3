"""Offline streaming benchmark: BC trains on a generated 5M-row data set with bounded memory.

A child process writes the data set to a temporary directory as ``FILES`` Parquet files in
the offline schema (``schema.to_table``): ``OBS_DIM``-wide float32 observations and next
observations, so in memory it is several times larger than the memory goal. Each row's action is the
argmax of a fixed random linear map of its observation, a rule BC can learn, so the run
shows learning, not just reading: the greedy policy's accuracy on fresh rows is reported
before and after.

BC (``BCConfig``, ``offline_data(input_=dir)``, streaming: ``materialize_data`` off) then
makes ``PASSES`` passes over the data (``dataset_num_iters_per_learner=None``: one pass per
training iteration). A sampler thread reads, every ``SAMPLE_S``, the memory of this process
and of every process under it (Ray's GCS, raylet with its object store, and the workers that
run Ray Data's read and map tasks) from /proc:

* ``pss_total``: the sum of their proportional set sizes (shared pages, such as the object
  store's, counted once over all of them): the headline, goal under ``GOAL_MIB``;
* ``driver_rss``: the driver's own resident set (its VmHWM at the end is its peak);
* ``rss_total``: the sum of resident sets, which counts shared pages once per process that maps
  them, an upper bound.

Ray is started as BC starts it when none runs (``start_streaming_ray``: its workers inherit the
read workers' allocator settings, so Ray Data's tasks all run in them), with ``RAY_CPUS`` CPUs.
The baseline (Ray started, nothing read yet) is reported beside the peaks, and each process's
share at the peak.

    python benchmarks/offline_streaming.py --quick    # 200k rows
    python benchmarks/offline_streaming.py --out      # 5M rows, writes results/offline_streaming.json
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq

try:  # python -m benchmarks.offline_streaming, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/offline_streaming.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.algorithms import BCConfig
from marl_arena.core.columns import Columns
from marl_arena.offline import start_streaming_ray
from marl_arena.offline.block_cast import WORKER_ENV
from marl_arena.offline.schema import to_table

logger = logging.getLogger("benchmarks.offline_streaming")

NAME = "offline_streaming"
ROWS = {"full": 5_000_000, "quick": 200_000}
FILES = {"full": 100, "quick": 8}
OBS_DIM = 64
NUM_ACTIONS = 4
EPISODE_LEN = 500
PASSES = 1
GOAL_MIB = 1536.0
SAMPLE_S = 0.25
DATA_SEED = 0
TRAIN_SEED = 100
HPARAMS: dict[str, Any] = {"lr": 1e-3, "train_batch_size_per_learner": 2000}
MAP_BATCHES: dict[str, Any] = {"concurrency": 1}
"""One worker reads and casts: one keeps this learner fed, and each more holds its own blocks."""
MODEL: dict[str, Any] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
RAY_CPUS = 1
"""Ray's CPUs (``start_streaming_ray(num_cpus=...)``), one worker process each: the learner trains in the
driver, outside Ray's count, and one worker reading and casting keeps it fed."""


# ---------------------------------------------------------------------- data
def _rule(rng: np.random.Generator) -> np.ndarray:
    """The fixed linear map whose argmax is each row's action."""
    return rng.standard_normal((OBS_DIM, NUM_ACTIONS)).astype(np.float32)


def _rows(rng: np.random.Generator, weights: np.ndarray, n: int, first_episode: int) -> dict[str, np.ndarray]:
    obs = rng.standard_normal((n + 1, OBS_DIM)).astype(np.float32)
    step = np.arange(n) % EPISODE_LEN
    episode = first_episode + np.arange(n) // EPISODE_LEN
    return {
        Columns.EPS_ID: np.array([f"e{k}" for k in episode], dtype=object),
        Columns.AGENT_ID: np.full(n, "0", dtype=object),
        Columns.MODULE_ID: np.full(n, "default_policy", dtype=object),
        Columns.T: step.astype(np.int64),
        Columns.OBS: obs[:-1], Columns.NEXT_OBS: obs[1:],
        Columns.ACTIONS: np.argmax(obs[:-1] @ weights, axis=1).astype(np.int64),
        Columns.REWARDS: np.ones(n, np.float32),
        Columns.TERMINATEDS: step == EPISODE_LEN - 1, Columns.TRUNCATEDS: np.zeros(n, bool),
    }


def generate(directory: Path, rows: int, files: int) -> dict[str, Any]:
    """``rows`` rows in ``files`` Parquet files, written one file at a time (never all in memory)."""
    rng = np.random.default_rng(DATA_SEED)
    weights = _rule(rng)
    started = time.perf_counter()
    per_file = rows // files
    for k in range(files):
        pq.write_table(to_table(_rows(rng, weights, per_file, k * per_file // EPISODE_LEN)),
                       directory / f"part-{k:04d}.parquet")
    on_disk = sum(p.stat().st_size for p in directory.glob("*.parquet"))
    in_memory = per_file * files * (2 * OBS_DIM * 4 + 8 + 4 + 2 + 8)  # the numeric columns alone, float32
    return {"rows": per_file * files, "files": files, "obs_dim": OBS_DIM, "num_actions": NUM_ACTIONS,
            "bytes_on_disk": on_disk, "numeric_bytes_in_memory": in_memory,
            "generate_s": time.perf_counter() - started}


def generate_apart(directory: Path, rows: int, files: int) -> dict[str, Any]:
    """``generate`` in a child process: what the generator's heap keeps after it is not the training
    process's memory, and a user's training process has generated nothing."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(generate, directory, rows, files).result()


class RuleEnv(gym.Env):
    """The data's task as an env (the algorithm's runners need one): reward 1 for the rule's action."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = gym.spaces.Discrete(NUM_ACTIONS)

    def __init__(self, config: dict | None = None):
        self._weights = _rule(np.random.default_rng(DATA_SEED))
        self._rng = np.random.default_rng()
        self._obs, self._t = None, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self._obs = self._rng.standard_normal(OBS_DIM).astype(np.float32)
        return self._obs, {}

    def step(self, action: int):
        reward = float(action == int(np.argmax(self._obs @ self._weights)))
        self._t += 1
        self._obs = self._rng.standard_normal(OBS_DIM).astype(np.float32)
        return self._obs, reward, False, self._t >= EPISODE_LEN, {}


# ---------------------------------------------------------------------- memory
def _tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc's parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def _kib(path: str, field: str) -> int:
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # the process ended between listing and reading
        pass
    return 0


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return "?"
    return os.path.basename(words[0].decode(errors="replace"))[:40] if words and words[0] else "?"


def memory_snapshot(by_process: bool = False) -> dict[str, Any]:
    """MiB: PSS and RSS summed over this process tree, and the driver's RSS (and each process's PSS)."""
    pids = _tree(os.getpid())
    pss = {pid: _kib(f"/proc/{pid}/smaps_rollup", "Pss") / 1024 for pid in pids}
    snapshot: dict[str, Any] = {
        "pss_total": sum(pss.values()), "rss_total": sum(_kib(f"/proc/{p}/status", "VmRSS") for p in pids) / 1024,
        "driver_rss": _kib(f"/proc/{os.getpid()}/status", "VmRSS") / 1024, "processes": len(pids)}
    if by_process:
        snapshot["pss_by_process"] = sorted(([_name(pid), round(value, 1)] for pid, value in pss.items()),
                                            key=lambda item: -item[1])
    return snapshot


class PeakSampler(threading.Thread):
    """Keeps the largest value of each ``memory_snapshot`` figure until stopped, and the processes'
    shares at the peak of the PSS total."""

    def __init__(self, interval_s: float):
        super().__init__(daemon=True)
        self.interval_s, self.peak, self.samples = interval_s, {}, 0
        self.at_peak: list = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            snapshot = memory_snapshot(by_process=True)
            if snapshot["pss_total"] > self.peak.get("pss_total", 0.0):
                self.at_peak = snapshot["pss_by_process"]
            for key, value in snapshot.items():
                if key != "pss_by_process":
                    self.peak[key] = max(self.peak.get(key, 0.0), value)
            self.samples += 1
            self._done.wait(self.interval_s)

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        return dict(self.peak)


# ---------------------------------------------------------------------- training
def _accuracy(algo: Any, weights: np.ndarray, rows: int = 20_000) -> float:
    """How often the greedy policy picks the rule's action on fresh rows."""
    import torch

    obs = np.random.default_rng(DATA_SEED + 1).standard_normal((rows, OBS_DIM)).astype(np.float32)
    with torch.no_grad():
        logits = algo.get_module().forward_inference({Columns.OBS: torch.from_numpy(obs)})[Columns.ACTION_DIST_INPUTS]
    return float((logits.argmax(-1).numpy() == np.argmax(obs @ weights, axis=1)).mean())


def train(directory: Path, passes: int) -> dict[str, Any]:
    config = (BCConfig()
              .environment(RuleEnv)
              .offline_data(input_=str(directory), dataset_num_iters_per_learner=None,
                            map_batches_kwargs=dict(MAP_BATCHES))
              .training(**HPARAMS)
              .rl_module(model_config=dict(MODEL))
              .debugging(seed=TRAIN_SEED))
    weights = _rule(np.random.default_rng(DATA_SEED))
    baseline = memory_snapshot(by_process=True)
    sampler = PeakSampler(SAMPLE_S)
    sampler.start()
    started = time.perf_counter()
    algo = config.build_algo()
    try:
        built = memory_snapshot(by_process=True)
        accuracy_before = _accuracy(algo, weights)
        rows, passes_s = 0, []
        for _ in range(passes):
            began = time.perf_counter()
            result = algo.train()
            passes_s.append(time.perf_counter() - began)
            rows += int(sum(m["num_module_steps_trained"] for m in result["learners"].values()))
        accuracy_after = _accuracy(algo, weights)
        epochs = algo.reader.epochs
    finally:
        algo.stop()
        peak = sampler.stop()
    return {"rows_trained": rows, "passes": passes, "reader_epochs": epochs, "pass_s": passes_s,
            "rows_per_s": rows / sum(passes_s), "wall_s": time.perf_counter() - started,
            "accuracy_before": accuracy_before, "accuracy_after": accuracy_after,
            "memory_mib": {"baseline": baseline, "after_build": built, "peak": peak,
                           "pss_by_process_at_peak": sampler.at_peak, "driver_peak_rss_vmhwm":
                           _kib(f"/proc/{os.getpid()}/status", "VmHWM") / 1024,
                           "samples": sampler.samples, "interval_s": SAMPLE_S}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    ray_started = start_streaming_ray(num_cpus=RAY_CPUS)  # what BC itself starts when no Ray runs, but RAY_CPUS
    common.wait_until_quiet()  # Ray keeps a CPU busy for a few seconds after it starts
    workdir = Path(tempfile.mkdtemp(prefix="offline_streaming_"))
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": {"data": DATA_SEED, "train": TRAIN_SEED},
        "machine": common.machine_info(),
        "protocol": f"BC streams {PASSES} pass(es) over the generated data (materialize_data off); memory is "
                    f"sampled every {SAMPLE_S} s over this process and every process under it (Ray's included); "
                    f"goal: peak PSS total under {GOAL_MIB:.0f} MiB.",
        "hyperparameters": {**HPARAMS, "model": MODEL, "dataset_num_iters_per_learner": None,
                            "map_batches_kwargs": MAP_BATCHES},
        "ray": {"start": f"start_streaming_ray(num_cpus={RAY_CPUS})", "started_here": ray_started,
                "num_cpus": RAY_CPUS, "worker_env": WORKER_ENV},
    }
    started = time.perf_counter()
    try:
        report["load_before_generate"] = common.log_load("generating")
        report["data"] = generate_apart(workdir, ROWS[mode], FILES[mode])
        logger.info("data: %s", report["data"])
        report["load_before_train"] = common.log_load("training")
        report["bc"] = train(workdir, PASSES)
        peak = report["bc"]["memory_mib"]["peak"]["pss_total"]
        report["goal_mib"] = GOAL_MIB
        report["peak_pss_total_mib"] = peak
        report["goal_met"] = peak < GOAL_MIB
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
