"""IMPALA, and the asynchronous actor-learner loop it shares with APPO.

With runner actors (``num_env_runners > 0``) two loops run at once during ``train()``:

* the driver collects the fragments the runners have finished (``EnvRunnerGroup.sample_async``:
  every runner actor always has one sample call in flight, with the weights it last loaded),
  and once they make a train batch of ``train_batch_size`` env steps queues it for the learner
  (at most ``learner_queue_size`` wait; older ones are dropped);
* a learner thread (:class:`LearnerThread`) moves the oldest waiting batch into the circular
  buffer, updates once on a batch drawn from it (``circular_buffer_num_batches`` /
  ``circular_buffer_iterations_per_batch``), and every ``broadcast_interval`` updates puts the
  new weights in the object store as the next weights version; each runner loads them before
  its next fragment.

The learner thread runs only inside ``train()``: it is paused (its update in progress
finished) before ``train()`` returns, so evaluation, checkpoints, a league's resets and
weight reads never meet an update half done. With ``num_env_runners=0`` the driver samples
one fragment only when the learner has nothing left to draw, and sampling and learning take
turns in one thread: every batch is learned from ``circular_buffer_iterations_per_batch``
times, and seeded runs repeat exactly.

Every fragment carries the weights version it was drawn with; a batch's staleness is the
learner's current weights version minus the (env-step weighted) version of its fragments,
reported as ``learners/__all_modules__/sample_staleness_mean`` and ``..._max``. A
``train()`` call runs rounds until it has sampled ``min_sample_timesteps_per_iteration``
env steps (in one process: and learned from all of them) and ``min_time_s_per_iteration``
seconds have passed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any, Callable

import numpy as np

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.impala.circular_buffer import CircularBuffer, TrainBatch
from marl_arena.algorithms.impala.impala_config import IMPALAConfig
from marl_arena.algorithms.impala.impala_learner import IMPALALearner
from marl_arena.runners.env_runner import SampleResult, concat_segments

ALL_MODULES = "__all_modules__"
"""Key of the learner metrics that belong to no one module (RLlib's name)."""


class LearnerThread:
    """Calls ``update`` over and over on a thread of its own while resumed.

    ``update`` returns False when there was nothing to learn from; the thread then waits for
    ``notify`` (or 10 ms). ``pause`` returns once no update runs, and raises what an update
    raised.
    """

    def __init__(self, update: Callable[[], bool]):
        self._update = update
        self._running = threading.Event()
        self._wake = threading.Event()
        self._busy = threading.Lock()  # held for every update; pause waits on it
        self._stopped = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="impala-learner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped:
            if not self._running.wait(0.1):
                continue
            with self._busy:
                # Checked again under the lock: a pause that returned must not be followed by an update.
                if self._stopped or not self._running.is_set():
                    continue
                try:
                    learned = self._update()
                except BaseException as error:  # handed to the driver by pause() / check()
                    self.error = error
                    self._running.clear()
                    continue
            if not learned:
                self._wake.wait(0.01)
                self._wake.clear()

    def resume(self) -> None:
        self.check()
        self._running.set()

    def notify(self) -> None:
        """New work is queued."""
        self._wake.set()

    def check(self) -> None:
        """Raise, in the caller's thread, what an update raised."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def pause(self) -> None:
        self._running.clear()
        with self._busy:
            pass
        self.check()

    def stop(self) -> None:
        self._stopped = True
        self._running.set()
        self._thread.join(timeout=10)


class IMPALA(Algorithm):
    config_class = IMPALAConfig
    learner_class = IMPALALearner

    def __init__(self, config: IMPALAConfig):
        super().__init__(config)
        seed = self.config.seed
        self.circular_buffer = CircularBuffer(self.config.circular_buffer_num_batches,
                                              self.config.circular_buffer_iterations_per_batch,
                                              None if seed is None else seed + 15485863)
        self._learner_queue: deque[TrainBatch] = deque()
        self._fragments: list[SampleResult] = []  # finished fragments not yet in a train batch
        self._updates_since_broadcast = 0
        # A module restarted as a new player (a league's reset) learns nothing drawn by the old one.
        self._reset_at_version: dict[str, int] = {}
        self._async_counters = {"num_updates_lifetime": 0, "num_weight_broadcasts_lifetime": 0,
                                "num_batches_dropped_lifetime": 0}
        self._queue_lock = threading.Lock()  # the learner queue, between the driver and the learner thread
        self._learner_thread: LearnerThread | None = None
        self._stats = _UpdateStats()

    def training_step(self) -> dict[str, Any]:
        # The whole iteration is one training step, so its metrics cover every update in it.
        self._stats = stats = _UpdateStats()
        deadline = time.perf_counter() + self.config.min_time_s_per_iteration
        if self.env_runner_group.local_runner is None:
            self._sample_while_learning(deadline)
        else:
            self._sample_and_learn_in_turn(deadline)
        out: dict[str, Any] = {mid: {k: v / stats.updates[mid] for k, v in module_sums.items()}
                               for mid, module_sums in stats.sums.items()}
        staleness = stats.staleness
        with self._queue_lock:
            queued = len(self._learner_queue)
        out[ALL_MODULES] = {
            **{key: float(value) for key, value in self._async_counters.items()},
            "num_updates": float(len(staleness)),
            "sample_staleness_mean": float(np.mean(staleness)) if staleness else float("nan"),
            "sample_staleness_max": float(np.max(staleness)) if staleness else float("nan"),
            "learner_queue_size": float(queued),
            "circular_buffer_size": float(len(self.circular_buffer)),
            "num_batches_evicted_lifetime": float(self.circular_buffer.num_evicted),
            "num_samples_dropped_lifetime": float(self.env_runner_group.num_dropped_samples),
        }
        return out

    def _fragment_steps(self) -> int:
        return self.config.get_rollout_fragment_length() * self.config.num_envs_per_env_runner

    def _sampled_this_iteration(self) -> int:
        return sum(r.env_steps for r in self._iteration_sampled)

    def _sample_and_learn_in_turn(self, deadline: float) -> None:
        """One process: sample only when the learner has nothing left, then learn all of it."""
        start_steps = self._sampled_this_iteration()
        while True:
            if not self._has_learner_work():
                with self.timed("env_runner_sampling_timer"):
                    self._add_fragments(self.env_runner_group.sample_async(
                        self._fragment_steps(), timeout_s=self.config.sample_timeout_s))
            self._learn_once()
            sampled = self._sampled_this_iteration() - start_steps
            if (sampled >= self.config.min_sample_timesteps_per_iteration and not self._has_learner_work()
                    and time.perf_counter() >= deadline):
                return

    def _sample_while_learning(self, deadline: float) -> None:
        """Runner actors: the driver collects fragments while the learner thread updates."""
        if self._learner_thread is None:
            self._learner_thread = LearnerThread(self._learn_once)
        start_steps = self._sampled_this_iteration()
        self._learner_thread.resume()
        try:
            while True:
                with self.timed("env_runner_sampling_timer"):
                    results = self.env_runner_group.sample_async(self._fragment_steps(),
                                                                 timeout_s=self.config.sample_timeout_s)
                self._add_fragments(results)
                self._learner_thread.notify()
                self._learner_thread.check()
                sampled = self._sampled_this_iteration() - start_steps
                if sampled >= self.config.min_sample_timesteps_per_iteration and time.perf_counter() >= deadline:
                    return
        finally:
            self._learner_thread.pause()

    def _learn_once(self) -> bool:
        """One update, recorded in this iteration's stats; False when there was nothing to draw."""
        metrics = self._update_once(self._stats.staleness)
        if metrics is None:
            return False
        for module_id, module_metrics in metrics.items():
            self._stats.updates[module_id] += 1
            for key, value in module_metrics.items():
                self._stats.sums[module_id][key] += value
        return True

    def _has_learner_work(self) -> bool:
        """Whether a batch waits or can still be drawn: then runners are not waited for."""
        return bool(self._learner_queue) or len(self.circular_buffer) > 0

    def _add_fragments(self, results: list[SampleResult]) -> None:
        """Record finished fragments; once they hold a train batch's env steps, queue it for the learner."""
        self._record_samples(results)
        for result in results:
            for module_id, version in self._reset_at_version.items():
                if result.weights_version < version:
                    result.batches.pop(module_id, None)
        self._fragments += [r for r in results if r.batches]
        steps = sum(r.env_steps for r in self._fragments)
        if not self._fragments or steps < self.config.total_train_batch_size:
            return
        parts: dict[str, list] = defaultdict(list)
        for result in self._fragments:
            for module_id, batch in result.batches.items():
                parts[module_id].append(batch)
        version = sum(r.weights_version * r.env_steps for r in self._fragments) / max(steps, 1)
        batch = TrainBatch({mid: concat_segments(b) for mid, b in parts.items()}, version, steps)
        self._fragments = []
        with self._queue_lock:
            self._learner_queue.append(batch)
            if len(self._learner_queue) > self.config.learner_queue_size:
                self._learner_queue.popleft()
                self._async_counters["num_batches_dropped_lifetime"] += 1

    def _update_once(self, staleness: list[float]) -> dict[str, dict[str, float]] | None:
        """One learner update on a batch from the circular buffer (None if it is empty); broadcast when due."""
        with self._queue_lock:
            waiting = self._learner_queue.popleft() if self._learner_queue else None
        if waiting is not None:
            self.circular_buffer.add(waiting)
        batch = self.circular_buffer.sample()
        if batch is None:
            return None
        staleness.append(self._weights_version - batch.weights_version)
        self._advance_schedule_clock()
        with self.timed("learner_update_timer"):
            metrics = self.learner_group.update(batch.batches, self.config.num_epochs, self.config.minibatch_size)
        self._async_counters["num_updates_lifetime"] += 1
        self._updates_since_broadcast += 1
        if self._updates_since_broadcast >= self.config.broadcast_interval:
            with self.timed("synch_weights"):
                self._sync_weights(blocking=False)
            self._updates_since_broadcast = 0
            self._async_counters["num_weight_broadcasts_lifetime"] += 1
        return metrics

    def stop(self) -> None:
        if self._learner_thread is not None:
            self._learner_thread.stop()
        super().stop()

    def reset_module(self, module_id: str) -> None:
        """Restart the module, and drop the batches drawn by the old player (they are not the new one's)."""
        super().reset_module(module_id)
        self._reset_at_version[module_id] = self._weights_version
        self.circular_buffer.drop_module(module_id)
        for batch in self._learner_queue:
            batch.batches.pop(module_id, None)
        for result in self._fragments:
            result.batches.pop(module_id, None)


class _UpdateStats:
    """One training step's learner metrics: per-module sums and update counts, and each update's staleness."""

    def __init__(self):
        self.sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.updates: dict[str, int] = defaultdict(int)
        self.staleness: list[float] = []
