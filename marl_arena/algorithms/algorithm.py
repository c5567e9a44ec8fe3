"""Algorithm: builds runners and learners from a config, and runs training iterations.

A subclass names its config and learner classes and implements ``training_step``; the
base class owns everything else: resources, weight sync, metrics, evaluation,
checkpoints and shutdown.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import logging
import tempfile
import time
from collections import defaultdict
from typing import Any, Callable, Iterator

import numpy as np
import torch

import marl_arena
from marl_arena.algorithms import checkpoints
from marl_arena.algorithms.algorithm_config import AlgorithmConfig
from marl_arena.algorithms.metrics import EpisodeWindow, summarize_episodes
from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.rl_module import DEFAULT_MODULE_ID, MultiRLModuleSpec, RLModule, RLModuleSpec
from marl_arena.learners.learner_group import LearnerGroup
from marl_arena.runners.env_runner import EpisodeStats, SampleResult, concat_segments
from marl_arena.runners.env_runner_group import EnvRunnerGroup
from marl_arena.runners.module_specs import module_spec_for_config
from marl_arena.runners.resources import check_gpus, cluster_resources, ensure_ray, fit_cpus

logger = logging.getLogger(__name__)


class Algorithm(abc.ABC):
    """Training loop shell; subclasses set ``config_class`` and ``learner_class``."""

    config_class: type[AlgorithmConfig] = AlgorithmConfig
    learner_class: type
    default_module_class: type[RLModule] = ActorCriticModule

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        """A fresh config of this algorithm with its defaults (RLlib's name)."""
        return cls.config_class()

    @classmethod
    def module_class_for(cls, config: AlgorithmConfig) -> type[RLModule]:
        """The module class of modules the config does not specify; algorithms whose
        config picks a variant (dueling heads, one critic) override this."""
        return cls.default_module_class

    def __init__(self, config: AlgorithmConfig):
        config.validate()
        self.config = config.copy()
        logging.getLogger("marl_arena").setLevel(self.config.log_level)
        if self.config.seed is not None:
            torch.manual_seed(self.config.seed)
            np.random.seed(self.config.seed)
        self.module_spec = module_spec_for_config(self.config, self.module_class_for(self.config))
        cpus = self._plan_resources()
        self.learner_group = LearnerGroup(self.config, self.learner_class, self.module_spec, cpus["learner"])
        self._initial_weights: dict[str, Any] = {}
        if self.config.initial_weights_from is not None:
            self._load_initial_weights(self.config.initial_weights_from)
        self.env_runner_group = EnvRunnerGroup(self.config, self.module_spec, self.config.num_env_runners,
                                               cpus["env runner"])
        self._evaluation_cpus = cpus["evaluation runner"]
        self.eval_env_runner_group: EnvRunnerGroup | None = None
        self.iteration = 0
        self._weights_version = 0
        self._counters = {"num_env_steps_sampled_lifetime": 0, "num_agent_steps_sampled_lifetime": 0,
                          "num_episodes_lifetime": 0, "time_total_s": 0.0}
        self._episodes = EpisodeWindow(self.config.metrics_num_episodes_for_smoothing)
        self._iteration_sampled: list[SampleResult] = []
        self._timers: dict[str, float] = {}
        self._added_modules: dict[str, tuple[RLModuleSpec, Any]] = {}  # add_module's, for groups built later
        self._sync_weights()

    def _plan_resources(self) -> dict[str, float]:
        config = self.config
        uses_ray = config.num_env_runners > 0 or config.evaluation_num_env_runners > 0 or config.num_learners > 0
        requests = {
            "env runner": (config.num_env_runners, config.num_cpus_per_env_runner),
            "evaluation runner": (config.evaluation_num_env_runners, config.num_cpus_per_env_runner),
            "learner": (config.num_learners, config.num_cpus_per_learner),
        }
        if not uses_ray:
            check_gpus(0, config.num_gpus_per_learner, float(torch.cuda.device_count()))
            return {name: cpus for name, (_, cpus) in requests.items()}
        ensure_ray()
        cluster_cpus, cluster_gpus = cluster_resources()
        if config.num_learners > 0:
            check_gpus(config.num_learners, config.num_gpus_per_learner, cluster_gpus)
        else:
            check_gpus(0, config.num_gpus_per_learner, float(torch.cuda.device_count()))
        return fit_cpus(requests, cluster_cpus)

    def _load_initial_weights(self, path: str) -> None:
        """Start this config's modules from a checkpoint's (``initial_weights_from``).

        Modules load from the checkpoint's module of the same id; a checkpoint of one module
        loads into a config that trains one module whatever the ids (a BC policy trained as
        ``default_policy`` starts league player ``main_0``). The weights are kept: a module
        reset as a new player (a league's exploiter after a snapshot) starts from them again.
        """
        weights = checkpoints.read_learner_state(path)["modules"]
        shared = {mid: w for mid, w in weights.items() if mid in self.module_spec.rl_module_specs}
        trained = self.learner_group.module_ids_to_train
        if not shared and len(weights) == 1 and len(trained) == 1:
            shared = {trained[0]: next(iter(weights.values()))}
        if not shared:
            raise checkpoints.CheckpointError(
                f"Checkpoint {path} holds modules {sorted(weights)}, none of this config's "
                f"{sorted(self.module_spec.rl_module_specs)}.")
        try:
            self.learner_group.set_weights(shared)
        except (KeyError, RuntimeError) as error:
            raise checkpoints.CheckpointError(f"Checkpoint {path}'s modules do not fit this config's: {error}") from error
        self._initial_weights = shared
        logger.info("modules %s start from the weights in %s", sorted(shared), path)

    # ------------------------------------------------------------------ training
    @abc.abstractmethod
    def training_step(self) -> dict[str, Any]:
        """Sample, learn and sync weights once; return learner metrics by module id."""

    def steps_until_sampled(self, step: Callable[[], list[dict[str, dict[str, float]]]]
                            ) -> tuple[dict[str, dict[str, float]], int]:
        """Call ``step`` until this iteration has sampled ``min_sample_timesteps_per_iteration`` env steps.

        ``step`` samples and makes the updates that sampling pays for (an off-policy
        algorithm's replay ratio), returning each update's metrics by module. Returned: each
        metric's mean over the updates that reported it, by module, and how many updates ran.
        """
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        start_steps = sum(r.env_steps for r in self._iteration_sampled)
        updates = 0
        while True:
            for metrics in step():
                updates += 1
                for mid, module_metrics in metrics.items():
                    for key, value in module_metrics.items():
                        sums[mid][key] += value
                        counts[mid][key] += 1
            sampled = sum(r.env_steps for r in self._iteration_sampled) - start_steps
            if sampled >= self.config.min_sample_timesteps_per_iteration:
                break
        means = {mid: {k: v / counts[mid][k] for k, v in module_sums.items()} for mid, module_sums in sums.items()}
        return means, updates

    def sample_batches(self, num_env_steps: int) -> tuple[dict[str, dict[str, np.ndarray]], list[SampleResult]]:
        """At least ``num_env_steps`` env steps from the runners, as one batch per module."""
        config = self.config
        per_round = config.get_rollout_fragment_length() * config.num_envs_per_env_runner * max(1, config.num_env_runners)
        results: list[SampleResult] = []
        sampled = 0
        while sampled < num_env_steps:
            round_results = self.env_runner_group.sample(num_timesteps=min(per_round, num_env_steps - sampled))
            sampled += sum(r.env_steps for r in round_results)
            results += round_results
        return self.batches_from(results), results

    def batches_from(self, results: list[SampleResult]) -> dict[str, dict[str, np.ndarray]]:
        """Record ``results`` as this iteration's samples and join their segments into one batch per module."""
        self._record_samples(results)
        parts: dict[str, list] = {}
        for result in results:
            for module_id, batch in result.batches.items():
                parts.setdefault(module_id, []).append(batch)
        return {mid: concat_segments(batches) for mid, batches in parts.items()}

    def _env_steps_lifetime(self) -> int:
        """Env steps sampled so far, this iteration's included (the lifetime counter moves at its end)."""
        return self._counters["num_env_steps_sampled_lifetime"] + sum(r.env_steps for r in self._iteration_sampled)

    def _advance_schedule_clock(self) -> None:
        """Before an update: the learners' schedules (``config.scheduled_fields``) read the env steps
        sampled so far, as RLlib's do."""
        if self.config.follows_schedules():
            self.learner_group.foreach_learner("set_env_steps", self._env_steps_lifetime())

    def _record_samples(self, results: list[SampleResult]) -> None:
        self._iteration_sampled += results
        for result in results:
            self._episodes.extend(result.episodes)

    def _sync_weights(self, blocking: bool = True) -> None:
        """Send the trained modules' weights to the runners as the next weights version
        (``blocking=False``: runners busy sampling load them before their next fragment)."""
        self._weights_version += 1
        weights = self.learner_group.get_weights(self.learner_group.module_ids_to_train)
        self.env_runner_group.sync_weights(weights, self._weights_version, blocking=blocking)

    def train(self) -> dict[str, Any]:
        """One training iteration; returns RLlib-style nested metrics."""
        start = time.perf_counter()
        self._iteration_sampled = []
        self._timers = {}
        learner_metrics: dict[str, Any] = {}
        while True:
            learner_metrics = self.training_step()
            if time.perf_counter() - start >= self.config.min_time_s_per_iteration:
                break
        interval = self.config.evaluation_interval
        evaluation = None
        if interval is not None and (self.iteration + 1) % interval == 0:
            with self.timed("evaluation"):
                evaluation = self.evaluate()
        sampled = self._iteration_sampled
        env_steps = sum(r.env_steps for r in sampled)
        agent_steps = sum(r.agent_steps for r in sampled)
        episodes = sum(len(r.episodes) for r in sampled)
        self.iteration += 1
        counters = self._counters
        counters["num_env_steps_sampled_lifetime"] += env_steps
        counters["num_agent_steps_sampled_lifetime"] += agent_steps
        counters["num_episodes_lifetime"] += episodes
        elapsed = time.perf_counter() - start
        counters["time_total_s"] += elapsed
        result = {
            "training_iteration": self.iteration,
            "env_runners": {
                **self._episodes.summary(),
                "num_episodes": episodes,
                "num_env_steps_sampled": env_steps,
                "num_agent_steps_sampled": agent_steps,
                "num_env_steps_sampled_lifetime": counters["num_env_steps_sampled_lifetime"],
                "num_env_runner_restarts": self.env_runner_group.num_restarts,
                "num_env_runner_stall_restarts": self.env_runner_group.num_stalled_restarts,
                "num_sub_env_restarts": sum(r.num_env_restarts for r in sampled),
            },
            "learners": learner_metrics,
            "num_env_steps_sampled_lifetime": counters["num_env_steps_sampled_lifetime"],
            "num_agent_steps_sampled_lifetime": counters["num_agent_steps_sampled_lifetime"],
            "num_episodes_lifetime": counters["num_episodes_lifetime"],
            "time_this_iter_s": elapsed,
            "time_total_s": counters["time_total_s"],
            "timers": dict(self._timers),
            "env_steps_per_s": _rate(env_steps, elapsed - self._timers.get("evaluation", 0.0)),
        }
        if evaluation is not None:
            result["evaluation"] = evaluation
        return result

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the wall time of a block to this iteration's ``timers/<name>``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._timers[name] = self._timers.get(name, 0.0) + time.perf_counter() - start

    # ------------------------------------------------------------------ evaluation
    def _evaluation_group(self) -> EnvRunnerGroup:
        if self.eval_env_runner_group is None:
            # Its own runners and envs, so evaluation never disturbs training episodes.
            evaluation_config = self.config.get_evaluation_config_object()
            if (getattr(evaluation_config.env_runner_cls, "serves_external_clients", False)
                    and "env_runner_cls" not in self.config.evaluation_config):
                evaluation_config = self._in_process_evaluation_config(evaluation_config)
            base = MultiRLModuleSpec({mid: spec for mid, spec in self.module_spec.rl_module_specs.items()
                                      if mid not in self._added_modules})
            self.eval_env_runner_group = EnvRunnerGroup(
                evaluation_config, base, self.config.evaluation_num_env_runners,
                self._evaluation_cpus, name="evaluation runner",
            )
            for module_id, (spec, weights) in self._added_modules.items():
                self.eval_env_runner_group.add_module(module_id, spec, weights)
        return self.eval_env_runner_group

    def _in_process_evaluation_config(self, evaluation_config: AlgorithmConfig) -> AlgorithmConfig:
        """Evaluation of a trainer whose runner serves external clients (``TcpServerEnvRunner``) steps
        an env of its own in this process: a second server would want the training port and wait
        for clients that never come."""
        if evaluation_config.env is None:
            raise ValueError(
                f"evaluate() has no env: env_runner_cls={evaluation_config.env_runner_cls.__name__} takes its "
                "episodes from external clients. Name an env to evaluate on with "
                ".evaluation(evaluation_config={'env': <env id, class or creator>}).")
        evaluation_config.env_runner_cls = None
        if "env_config" not in self.config.evaluation_config:
            evaluation_config.env_config = {}  # the server's host, port and token mean nothing to an env
        return evaluation_config

    def evaluate(self) -> dict[str, Any]:
        """Run ``evaluation_duration`` episodes (or env steps) with ``evaluation_config``."""
        start = time.perf_counter()
        group = self._evaluation_group()
        group.sync_weights(self.learner_group.get_weights(), self._weights_version)
        duration = self.config.evaluation_duration
        explore = group.config.explore
        if self.config.evaluation_duration_unit == "episodes":
            results = group.sample(num_episodes=duration, explore=explore)
        else:
            results = group.sample(num_timesteps=duration, explore=explore)
        episodes = [e for r in results for e in r.episodes]
        if self.config.evaluation_duration_unit == "episodes":
            episodes = episodes[:duration]
        return {
            "env_runners": {
                **summarize_episodes(episodes),
                "num_episodes": len(episodes),
                "num_env_steps_sampled": sum(r.env_steps for r in results),
            },
            "time_this_eval_s": time.perf_counter() - start,
        }

    # ------------------------------------------------------------------ modules and checkpoints
    def get_module(self, module_id: str = DEFAULT_MODULE_ID) -> RLModule:
        """The learner's copy of a module (on the driver when ``num_learners=0``)."""
        if self.learner_group.local_learner is None:
            raise ValueError("get_module() needs num_learners=0; with remote learners use learner_group.get_weights().")
        return self.learner_group.local_learner.module[module_id]

    def export_onnx(self, module_id: str, path: str, with_mask: bool = False) -> str:
        """Write the module's inference forward (``obs`` [, ``action_mask``] -> ``action_dist_inputs``)
        as ONNX, so a client acts with onnxruntime and no torch (see ``marl_arena.core.onnx_export``)."""
        from marl_arena.core.onnx_export import export_module_onnx

        export_module_onnx(self.get_module(module_id), path, with_mask)
        return path

    def add_module(self, module_id: str, weights: Any, spec: RLModuleSpec | None = None) -> None:
        """Add a frozen module (a league opponent) to every runner; it acts but never trains.

        ``weights``: a state dict, or a ``WeightsRef`` to weights already in Ray's object
        store (a league puts each snapshot there once for all its trainers). Runners keep at
        most ``max_opponents_per_runner`` added modules built (see ``EnvRunner``).
        ``spec`` defaults to the spec of the first module, the usual case of a snapshot of
        a trained player.
        """
        if module_id in self.config.policies:
            raise ValueError(f"Module id {module_id!r} already exists; modules: {sorted(self.config.policies)}.")
        spec = spec or dataclasses.replace(next(iter(self.module_spec.rl_module_specs.values())))
        self.config.policies[module_id] = spec
        for group in (self.env_runner_group, self.eval_env_runner_group):
            if group is not None:
                group.add_module(module_id, spec, weights)
        self.module_spec.rl_module_specs[module_id] = spec
        self._added_modules[module_id] = (spec, weights)

    def reset_module(self, module_id: str) -> None:
        """Restart a trained module as a new player, everywhere it lives.

        The learners rebuild its weights (the ``initial_weights_from`` ones where the config
        names a checkpoint), optimizers and learner state (``LearnerGroup.reset_module``); the runners act with the new weights from their next
        step. Off-policy algorithms also forget its replay.
        """
        if module_id not in self.learner_group.module_ids_to_train:
            raise ValueError(f"reset_module: {module_id!r} is not a trained module; "
                             f"trained modules: {sorted(self.learner_group.module_ids_to_train)}.")
        self.learner_group.reset_module(module_id)
        if module_id in self._initial_weights:
            self.learner_group.set_weights({module_id: self._initial_weights[module_id]})
        self._sync_weights()

    def set_policy_mapping_fn(self, policy_mapping_fn) -> None:
        """A new agent -> module mapping for every runner, from their next episodes on."""
        self.config.policy_mapping_fn = policy_mapping_fn
        for group in (self.env_runner_group, self.eval_env_runner_group):
            if group is not None:
                group.set_policy_mapping_fn(policy_mapping_fn)

    @property
    def last_episodes(self) -> list[EpisodeStats]:
        """The episodes that finished during the last ``train()`` call (a league scores them)."""
        return [e for r in self._iteration_sampled for e in r.episodes]

    def get_state(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "weights_version": self._weights_version, **self._counters}

    def get_extra_state(self) -> dict[str, Any]:
        """Algorithm state beyond the learners' and the counters, worth checkpointing (none here;
        off-policy algorithms keep their replay RNG and, if asked, their replay buffers)."""
        return {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_extra_state`` returned ({} from a checkpoint that has none)."""

    def save_to_path(self, path: str | None = None) -> str:
        """Write a checkpoint directory (a new temp dir when ``path`` is None); returns its path."""
        path = path or tempfile.mkdtemp(prefix="marl_arena_checkpoint_")
        return checkpoints.write_checkpoint(path, type(self), self.config, self.learner_group.get_state(),
                                            self.get_state(), marl_arena.__version__, self.get_extra_state())

    save = save_to_path

    def restore_from_path(self, path: str) -> None:
        """Load weights, optimizer states and counters from a checkpoint of this algorithm."""
        metadata = checkpoints.read_metadata(path)
        if checkpoints.read_algorithm_class(metadata) is not type(self):
            raise checkpoints.CheckpointError(
                f"Checkpoint {path} was written by {metadata['algorithm']}, not {type(self).__name__}."
            )
        learner_state = checkpoints.read_learner_state(path)
        state = checkpoints.read_algorithm_state(path)
        extra_state = checkpoints.read_extra_state(path)
        try:
            self.learner_group.set_state(learner_state)
        except (KeyError, RuntimeError) as error:
            raise checkpoints.CheckpointError(
                f"Checkpoint {path} does not fit this algorithm's modules: {error}"
            ) from error
        self.iteration = int(state["iteration"])
        self._weights_version = int(state["weights_version"])
        for key in self._counters:
            self._counters[key] = state[key]
        try:
            self.set_extra_state(extra_state)
        except (KeyError, ValueError) as error:
            raise checkpoints.CheckpointError(f"Checkpoint {path} has extra state that does not fit: {error}") from error
        self._sync_weights()

    @classmethod
    def from_checkpoint(cls, path: str) -> "Algorithm":
        """Build the algorithm a checkpoint was written by, with its config, and restore it."""
        metadata = checkpoints.read_metadata(path)
        algorithm_class = checkpoints.read_algorithm_class(metadata)
        config = checkpoints.read_config(path)
        algorithm = algorithm_class(config)
        algorithm.restore_from_path(path)
        return algorithm

    def stop(self) -> None:
        """Stop runner and learner actors and close envs (Ray itself keeps running)."""
        self.env_runner_group.stop()
        if self.eval_env_runner_group is not None:
            self.eval_env_runner_group.stop()
        self.learner_group.stop()


def _rate(count: int, seconds: float) -> float:
    """Per-second rate; NaN when no time passed."""
    return count / seconds if seconds > 0 else float("nan")
