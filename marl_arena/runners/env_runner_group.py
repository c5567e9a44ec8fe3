"""EnvRunnerGroup: one EnvRunner in the driver, or N EnvRunner actors on Ray.

Weights travel once per sync through Ray's object store. A runner actor that dies is
started again with the current weights and its share of the sample is asked of it anew,
so training goes on (``restart_failed_env_runners``).

Two ways to sample: ``sample`` is a barrier (every runner's share, then return), what
synchronous algorithms use; ``sample_async`` keeps one sample call in flight on every
runner and returns whichever fragments have finished, what IMPALA and APPO use. In the
asynchronous mode a weight sync only puts the weights into the object store
(``blocking=False``); each runner loads them just before its next fragment, which is as
early as a runner busy sampling could anyway, and a dead runner's in-flight fragment is
dropped.

A fragment that takes longer than ``sample_timeout_s`` under ``sample_async`` means a
stalled env (a hung simulator, a deadlock): the runner is named in a warning, killed and
started again, its fragment dropped and the stall counted (``num_stalled_restarts``), while
the other runners' fragments keep the learner busy. A fragment's clock starts when its
runner is up, so a runner's own start is never taken for a stall. In the driver
(``num_env_runners=0``) nothing can be killed and a stall blocks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

from marl_arena.core.rl_module import MultiRLModuleSpec, RLModuleSpec
from marl_arena.env.registry import env_creator_for
from marl_arena.runners.env_runner import EnvRunner, SampleResult, WeightsRef, put_weights

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 120


class EnvRunnerGroup:
    """Sampling with ``num_env_runners`` Ray actors, or in the driver when it is 0."""

    def __init__(self, config, module_spec: MultiRLModuleSpec, num_env_runners: int,
                 cpus_per_runner: float = 1.0, name: str = "env runner"):
        self.config = config
        self.name = name
        # A copy: modules added later live in ``_added``, so a restarted actor builds only the
        # config's modules and receives the added ones as lazily built opponents.
        self._spec = MultiRLModuleSpec(dict(module_spec.rl_module_specs))
        self._cpus = cpus_per_runner
        self._num_runners = num_env_runners
        self.num_restarts = 0
        self._weights = None
        self._version = 0
        # The (weights, version) pair changes together: a learner thread may sync while the driver submits.
        self._weights_lock = threading.Lock()
        self._added: dict[str, tuple[RLModuleSpec, Any]] = {}  # modules added after start: spec, weights
        self._actor_versions = [0] * num_env_runners  # the weights version each actor was sent last
        self._in_flight: dict[Any, int] = {}  # sample_async: object ref -> actor position
        # sample_async: object ref -> when its fragment started (None: its actor is still starting)
        self._in_flight_since: dict[Any, float | None] = {}
        self._starting: dict[int, Any] = {}  # actor position -> ping ref of an actor started again
        self.num_stalled_restarts = 0
        self.num_dropped_samples = 0
        self.local_runner: EnvRunner | None = None
        self._actors: list = []
        # No env: its episodes come from external simulators (config.env_runner_cls is a server).
        self._env_creator = env_creator_for(config.env) if config.env is not None else None
        runner_cls = config.env_runner_cls or EnvRunner
        if num_env_runners == 0:
            self.local_runner = runner_cls(config, module_spec, 0, 0, self._env_creator)
        else:
            import ray

            self._remote_class = ray.remote(runner_cls)
            self._actors = [self._start_actor(index) for index in range(1, num_env_runners + 1)]
            self._wait_until_started()

    def _wait_until_started(self) -> None:
        """Fail loudly, not wait forever, when Ray cannot place the actors."""
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            ray.get([actor.ping.remote() for actor in self._actors], timeout=_START_TIMEOUT_S)
        except GetTimeoutError:
            raise RuntimeError(
                f"{len(self._actors)} {self.name}(s) asking for {self._cpus:g} CPU each did not start within "
                f"{_START_TIMEOUT_S} s; the Ray cluster has {ray.cluster_resources()} and "
                f"{ray.available_resources()} free. Lower num_cpus_per_env_runner or the number of runners."
            ) from None

    @property
    def num_remote_runners(self) -> int:
        return len(self._actors)

    @property
    def remote_runners(self) -> list:
        return list(self._actors)

    def _start_actor(self, index: int):
        actor = self._remote_class.options(num_cpus=self._cpus, max_restarts=0).remote(
            self.config, self._spec, index, self._num_runners, self._env_creator
        )
        with self._weights_lock:
            weights, version = self._weights, self._version
        if weights is not None:
            actor.set_weights.remote(weights, version)
            self._actor_versions[index - 1] = version
        for module_id, (spec, weights) in self._added.items():
            actor.add_module.remote(module_id, spec, weights)
        return actor

    def foreach_runner(self, method: str, *args: Any) -> list[Any]:
        """Call an EnvRunner method on every runner (the local one, or each actor)."""
        if self.local_runner is not None:
            return [getattr(self.local_runner, method)(*args)]
        import ray

        # Pending weights first, so a runner answers as if every sync had blocked.
        return ray.get([getattr(self._load_weights(i), method).remote(*args) for i in range(len(self._actors))])

    def add_module(self, module_id: str, spec: RLModuleSpec, weights: Any) -> None:
        """Add a frozen module to every runner, and to every runner started later.

        ``weights`` (a state dict or a ``WeightsRef``) go to Ray's object store once: a dict
        is put there here, and the runners get a reference they fetch from when they build
        the module (again after evicting it, see ``EnvRunner``).
        """
        if self._actors and weights is not None and not isinstance(weights, WeightsRef):
            weights = WeightsRef(put_weights(weights))
        self._added[module_id] = (spec, weights)
        self.foreach_runner("add_module", module_id, spec, weights)

    def set_policy_mapping_fn(self, policy_mapping_fn: Callable) -> None:
        self.config.policy_mapping_fn = policy_mapping_fn
        self.foreach_runner("set_policy_mapping_fn", policy_mapping_fn)

    def sync_weights(self, weights: dict, version: int, blocking: bool = True) -> None:
        """Send module weights to every runner (one object-store put for all actors).

        ``blocking=False`` returns at once: each actor loads the weights before its next
        ``sample`` call or ``sample_async`` fragment (a busy actor could not load them earlier).
        """
        if self.local_runner is not None:
            self._version = version
            self.local_runner.set_weights(weights, version)
            return
        import ray

        ref = put_weights(weights)
        with self._weights_lock:
            self._weights, self._version = ref, version
        if blocking:
            ray.get([actor.set_weights.remote(ref, version) for actor in self._actors])
            self._actor_versions = [version] * len(self._actors)

    def sample(self, num_timesteps: int | None = None, num_episodes: int | None = None,
               explore: bool | None = None) -> list[SampleResult]:
        """At least ``num_timesteps`` env steps (or ``num_episodes`` episodes) over all runners."""
        if self.local_runner is not None:
            return [self.local_runner.sample(num_timesteps=num_timesteps, num_episodes=num_episodes, explore=explore)]
        import ray
        from ray.exceptions import RayActorError

        n = len(self._actors)
        share = {
            "num_timesteps": None if num_timesteps is None else math.ceil(num_timesteps / n),
            "num_episodes": None if num_episodes is None else math.ceil(num_episodes / n),
            "explore": explore,
        }
        pending = {self._load_weights(index).sample.remote(**share): index for index in range(n)}
        results: list[SampleResult] = []
        waited = 0.0
        timeout = self.config.sample_timeout_s
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            if not ready:
                waited += timeout
                logger.warning("Still waiting for %d %s(s) to return a sample after %.0f s.", len(pending), self.name, waited)
                continue
            index = pending.pop(ready[0])
            try:
                results.append(ray.get(ready[0]))
            except RayActorError as error:
                self._restart(index, error)
                pending[self._actors[index].sample.remote(**share)] = index
        return results

    def _load_weights(self, index: int):
        """Actor ``index``, sent the latest weights first if it lacks them (a non-blocking sync).

        An actor runs its calls in the order they were made, so the sample that follows
        uses these weights without the driver waiting for them to load.
        """
        actor = self._actors[index]
        with self._weights_lock:
            weights, version = self._weights, self._version
        if weights is not None and self._actor_versions[index] != version:
            actor.set_weights.remote(weights, version)
            self._actor_versions[index] = version
        return actor

    def sample_async(self, num_timesteps: int, timeout_s: float | None = 0.0) -> list[SampleResult]:
        """The fragments that have finished since the last call; every runner always has one in flight.

        Each fragment is ``num_timesteps`` env steps with the weights the runner had when it
        started (``SampleResult.weights_version``). Waits up to ``timeout_s`` (None: no limit)
        for the first fragment, then takes all that are ready. A runner that died is restarted
        and its fragment dropped (``num_dropped_samples``). In the driver (no actors) this is
        one blocking ``sample`` call.
        """
        if self.local_runner is not None:
            return [self.local_runner.sample(num_timesteps=num_timesteps)]
        import ray
        from ray.exceptions import RayActorError

        busy = set(self._in_flight.values())
        for index in range(len(self._actors)):
            if index not in busy:
                self._submit_sample(index, num_timesteps)
        ready, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=timeout_s)
        if ready:
            ready, _ = ray.wait(list(self._in_flight), num_returns=len(self._in_flight), timeout=0)
        elif timeout_s:
            logger.warning("No %s returned a fragment within %.0f s.", self.name, timeout_s)
        results = []
        for ref in ready:
            index = self._in_flight.pop(ref)
            self._in_flight_since.pop(ref, None)
            try:
                results.append(ray.get(ref))
            except RayActorError as error:
                self._restart(index, error)
                self.num_dropped_samples += 1
            self._submit_sample(index, num_timesteps)
        self._replace_stalled(num_timesteps)
        return results

    def _replace_stalled(self, num_timesteps: int) -> None:
        """Kill and restart every runner whose fragment has run longer than ``sample_timeout_s``."""
        import ray

        limit = self.config.sample_timeout_s
        if limit is None:
            return
        now = time.perf_counter()
        for ref, since in list(self._in_flight_since.items()):
            index = self._in_flight[ref]
            if since is None:  # the clock starts once a restarted actor answers its ping
                ping = self._starting[index]
                if ray.wait([ping], timeout=0)[0]:
                    del self._starting[index]
                    self._in_flight_since[ref] = now
                continue
            if now - since <= limit:
                continue
            logger.warning("%s %d has not returned a %d-step fragment in %.1f s (sample_timeout_s=%g): its env "
                           "stalls; killing it, dropping the fragment and starting a new one.",
                           self.name, index + 1, num_timesteps, now - since, limit)
            del self._in_flight[ref], self._in_flight_since[ref]
            ray.kill(self._actors[index], no_restart=True)
            self.num_stalled_restarts += 1
            self.num_dropped_samples += 1
            self._restart(index, TimeoutError(f"no fragment within sample_timeout_s={limit:g}"))
            self._submit_sample(index, num_timesteps)

    def _submit_sample(self, index: int, num_timesteps: int) -> None:
        """Start a fragment on actor ``index``, loading the latest weights first if it lacks them."""
        ref = self._load_weights(index).sample.remote(num_timesteps=num_timesteps)
        self._in_flight[ref] = index
        self._in_flight_since[ref] = None if index in self._starting else time.perf_counter()

    def _restart(self, index: int, error: Exception) -> None:
        if not self.config.restart_failed_env_runners:
            raise RuntimeError(
                f"{self.name} {index + 1} died ({error}); set fault_tolerance(restart_failed_env_runners=True) "
                "to restart it and go on."
            ) from error
        if self.num_restarts >= self.config.max_num_env_runner_restarts:
            raise RuntimeError(
                f"{self.name} {index + 1} died and max_num_env_runner_restarts="
                f"{self.config.max_num_env_runner_restarts} restarts are used up."
            ) from error
        self.num_restarts += 1
        logger.warning("%s %d died (%s); starting a new one.", self.name, index + 1, type(error).__name__)
        self._actors[index] = self._start_actor(index + 1)
        self._starting[index] = self._actors[index].ping.remote()

    def stop(self) -> None:
        if self.local_runner is not None:
            self.local_runner.stop()
            return
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        self._in_flight = {}
        self._in_flight_since = {}
        self._starting = {}
