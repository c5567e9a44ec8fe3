"""EnvRunner: steps a vector of envs with one batched forward pass per module per step.

The runner keeps its episodes across ``sample`` calls, so a rollout fragment may end in
the middle of an episode; the completed transitions so far leave as a segment whose last
step is marked truncated (the learner bootstraps there) and the episode goes on next call.
Only modules that train have their transitions kept. With ``offline_data(output=)`` every
agent's transitions also go to an ``EpisodeWriter``, which writes each finished episode as
Parquet at the end of the ``sample`` call it finished in.

Modules added after the start (a league's opponents: snapshots, bots, other trainers) are
a cache of at most ``max_opponents_per_runner`` built modules: the least recently drawn one
that no running episode uses is dropped, and rebuilt from its weights (by value, or a
``WeightsRef`` into Ray's object store) when the policy mapping draws it again, into an
evicted module of the same spec where there is one. Building one never moves torch's
random stream, so sampling draws the same actions either way.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import logging
import math
from collections import OrderedDict, defaultdict, deque
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import Categorical
from marl_arena.core.rl_module import (MultiRLModuleSpec, RLModule, RLModuleSpec, weights_as_arrays,
                                      weights_as_tensors)
from marl_arena.env.episode import AgentTrajectory, MultiAgentEpisode, StepOutcome
from marl_arena.env.registry import EnvContext, env_creator_for
from marl_arena.offline.writer import EpisodeWriter
from marl_arena.runners.critic_inputs import CriticInputs
from marl_arena.runners.module_specs import agent_pipelines, map_agent, mapping_for_runner
from marl_arena.runners.observation_pipeline import ObservationPipeline

logger = logging.getLogger(__name__)

_SPARE_MODULES = 2
"""Evicted opponent modules a runner keeps to load the next one's weights into (one eviction per build)."""

_MAX_CONSECUTIVE_ENV_FAILURES = 10
_ABSENT = object()


class EnvError(RuntimeError):
    """An env raised while sampling; the message names the env, where it ran and the call."""


@dataclasses.dataclass
class EpisodeStats:
    """What one finished episode adds to the metrics."""

    episode_return: float
    length: int
    agent_returns: dict[Any, float]
    module_returns: dict[str, float]
    agent_modules: dict[Any, str]
    """Which module played each agent (seat): what a league needs to score a match."""
    moves: list[tuple[Any, Any]] = dataclasses.field(default_factory=list)
    """``(agent, env action)`` in the order played (with ``config.record_moves``): what a league
    stores for replays."""


@dataclasses.dataclass
class SampleResult:
    """One ``EnvRunner.sample`` call's data and finished episodes."""

    batches: dict[str, dict[str, np.ndarray]]
    episodes: list[EpisodeStats]
    env_steps: int
    agent_steps: int
    weights_version: int
    num_env_restarts: int = 0


class WeightsRef:
    """A module's weights in Ray's object store, held by reference.

    Ray resolves an object reference passed straight to an actor method into its value;
    wrapped, it travels as a reference, so a runner fetches the weights only when it builds
    the module, and again after it evicted it.
    """

    def __init__(self, ref: Any):
        self.ref = ref

    def load(self) -> dict[str, Any]:
        import ray

        return ray.get(self.ref)


def put_weights(weights: dict[str, Any]) -> Any:
    """Put weights into Ray's object store once, as NumPy arrays (``weights_as_arrays``); returns the
    object reference. ``load_weights`` and ``MultiRLModule.set_state`` read them back as tensors."""
    import ray

    return ray.put(weights_as_arrays(weights))


def load_weights(source: Any) -> dict[str, Any] | None:
    """One module's weights as tensors, from weights given by value (tensors or the arrays that
    travel through Ray's object store), ``None``, or fetched through a ``WeightsRef``."""
    weights = source.load() if isinstance(source, WeightsRef) else source
    return None if weights is None else weights_as_tensors(weights)


def sample_categorical(logits: np.ndarray, rng: np.random.Generator, explore: bool) -> tuple[np.ndarray, np.ndarray]:
    """Actions and their log-probabilities for a batch of Categorical logits, in numpy.

    What ``Categorical(logits).sample()`` / ``.deterministic_sample()`` and ``.logp`` give,
    without torch's per-call overhead, which for the few rows of a sampling step costs
    more than the arithmetic. Masked logits (the dtype's minimum) get probability 0 and
    are never drawn: a row takes the first action whose cumulative probability exceeds
    its uniform draw.
    """
    if len(logits) == 1:
        return _sample_one_categorical(logits, rng, explore)
    return _sample_categorical_rows(logits, rng, explore)


def _sample_categorical_rows(logits: np.ndarray, rng: np.random.Generator,
                             explore: bool) -> tuple[np.ndarray, np.ndarray]:
    """``sample_categorical`` vectorised over the rows."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    cumulative = np.cumsum(probs, axis=-1)
    total = cumulative[:, -1]
    if not np.isfinite(total).all():
        _raise_not_finite(logits, total)
    if explore:
        draws = rng.random(len(logits)) * total
        actions = np.minimum((cumulative <= draws[:, None]).sum(axis=-1), logits.shape[-1] - 1)
    else:
        actions = logits.argmax(axis=-1)
    logp = shifted[np.arange(len(logits)), actions] - np.log(total)
    return actions, logp.astype(np.float32)


def _sample_one_categorical(logits: np.ndarray, rng: np.random.Generator, explore: bool) -> tuple[np.ndarray, np.ndarray]:
    """``sample_categorical`` for one row (one agent acting in one sub-env: turn-based games).

    The same arithmetic with Python scalars where numpy's per-call cost dominates: the
    exponent and logarithm stay numpy's (``math``'s differ in the last bit), the cumulative
    sum is the same left-to-right addition, ``rng.random()`` is the draw ``rng.random(1)``
    gives, and ``bisect_right`` counts the cumulative probabilities at or below it.
    """
    row = logits[0]
    shifted = row.astype(np.float64)
    shifted -= np.maximum.reduce(shifted)  # ndarray.max() without its Python wrapper
    cumulative = list(itertools.accumulate(np.exp(shifted).tolist()))
    total = cumulative[-1]
    if not math.isfinite(total):
        _raise_not_finite(logits, np.array([total]))
    action = min(bisect.bisect_right(cumulative, rng.random() * total), len(cumulative) - 1) if explore \
        else int(row.argmax())
    return np.array([action], dtype=np.intp), np.array([shifted[action] - np.log(total)], dtype=np.float32)


def _raise_not_finite(logits: np.ndarray, total: np.ndarray) -> None:
    raise ValueError(f"Categorical logits are not finite: {logits[~np.isfinite(total)][:3]} (a diverged policy?).")


@dataclasses.dataclass
class _ActingModule:
    """A module that acts in a runner, and what sampling asks of it once instead of every step."""

    module: Any
    initial_state: np.ndarray | None
    """Its initial recurrent state as numpy; None without memory."""
    categorical: bool | None = None
    """Whether it acts through a plain Categorical (sampled in numpy); None until its first output."""


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """``np.stack(rows)``; one row (one agent acting: turn-based games, one sub-env) as a view, since
    the forward pass only reads it and ``np.stack``'s own overhead is a good part of a step."""
    return rows[0][None] if len(rows) == 1 else np.stack(rows)


def concat_segments(segments: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate same-keyed segments along the time axis."""
    return {key: np.concatenate([s[key] for s in segments], axis=0) for key in segments[0]}


class EnvRunner:
    """Samples episodes from ``num_envs_per_env_runner`` env copies with the current weights."""

    def __init__(self, config, module_spec: MultiRLModuleSpec, worker_index: int = 0, num_workers: int = 0,
                 env_creator: Callable[[dict], Any] | None = None):
        self.config = config
        self._env_creator = env_creator or env_creator_for(config.env)
        self.worker_index = worker_index
        self.num_workers = num_workers
        if worker_index > 0:
            torch.set_num_threads(1)
        if config.seed is not None:
            torch.manual_seed(config.seed + 7919 * worker_index)
        # Draws the actions of categorical policies (see sample_categorical).
        self._action_rng = np.random.default_rng(None if config.seed is None else config.seed + 7919 * worker_index)
        self._acting_modules: dict[str, _ActingModule] = {}  # see _acting_module
        self._action_converters: dict[Any, Callable[[np.ndarray], Any]] = {}  # see _env_action
        self._envs = [self._make_env(i) for i in range(config.num_envs_per_env_runner)]
        self._pipelines: dict[Any, ObservationPipeline] = agent_pipelines(config, self._envs[0])
        self.module = module_spec.build()
        self.module.eval()
        self._modules_to_train = {mid for mid in self.module.keys() if config.is_policy_to_train(mid)}
        # Centralized critics' inputs (Columns.CRITIC_OBS), None when no trained module has one.
        self._critic_inputs = CriticInputs.for_modules(
            self.module, self._modules_to_train, self._envs[0],
            {aid: pipeline.observation_space for aid, pipeline in self._pipelines.items()})
        # n-step learners (an off-policy config's n_step) need n-1 steps of look-ahead past a sample's end.
        self._lookahead = max(0, int(getattr(config, "n_step", 1)) - 1)
        self._record_moves = config.record_moves
        # getattr: a config restored from a checkpoint written before this field has none.
        output = getattr(config, "output", None)
        self._writer = EpisodeWriter(output, worker_index) if output is not None else None
        self._policy_mapping_fn = mapping_for_runner(config.policy_mapping_fn, worker_index)
        self._weights_version = 0
        # Added modules: id -> (spec, weights source); those built now, least recently drawn first.
        self._added: dict[str, tuple[RLModuleSpec, Any]] = {}
        self._built: OrderedDict[str, None] = OrderedDict()
        # getattr: a config restored from a checkpoint written before this field has none.
        self._max_added = getattr(config, "max_opponents_per_runner", None)
        self.num_module_builds = 0
        """How often an added module was built (first use, and again after an eviction)."""
        self._spares: deque[tuple[RLModuleSpec, RLModule]] = deque(maxlen=_SPARE_MODULES)  # evicted, newest last
        self.num_modules_reused = 0
        """How many of those builds loaded weights into an evicted module (``_take_spare``)."""
        self._episodes: list[MultiAgentEpisode] = [MultiAgentEpisode() for _ in self._envs]
        self._acting: list[list[Any]] = [[] for _ in self._envs]
        self._needs_reset = [True] * len(self._envs)
        self._failures = [0] * len(self._envs)
        self._seeded = [False] * len(self._envs)
        self._num_env_restarts = 0
        # In episode mode (evaluation) at most this many more episodes may start, so that
        # many sub-envs do not favour short episodes; None means no limit.
        self._episodes_left_to_start: int | None = None

    # ------------------------------------------------------------------ envs
    def _make_env(self, vector_index: int):
        context = EnvContext(self.config.env_config, self.worker_index, vector_index, self.num_workers)
        return self._env_creator(context)

    def _env_seed(self, vector_index: int) -> int | None:
        """A distinct seed for each sub-env's first reset; later resets continue its RNG."""
        if self.config.seed is None or self._seeded[vector_index]:
            return None
        self._seeded[vector_index] = True
        return self.config.seed + 10_000 * self.worker_index + vector_index

    def _describe(self, vector_index: int) -> str:
        return f"env {self.config.env!r} (env runner {self.worker_index}, sub-env {vector_index})"

    def _env_failed(self, i: int, call: str, error: Exception) -> None:
        """Recreate sub-env ``i`` (its episode is dropped) or raise an EnvError naming it."""
        self._failures[i] += 1
        message = f"{self._describe(i)} raised in {call}: {type(error).__name__}: {error}"
        if not self.config.restart_failed_sub_environments:
            raise EnvError(
                message + ". Set config.fault_tolerance(restart_failed_sub_environments=True) to "
                "recreate failing envs and keep sampling."
            ) from error
        if self._failures[i] > _MAX_CONSECUTIVE_ENV_FAILURES:
            raise EnvError(f"{message}; gave up after {_MAX_CONSECUTIVE_ENV_FAILURES} consecutive failures.") from error
        logger.warning("%s; recreating the sub-env and dropping its episode.", message)
        self._num_env_restarts += 1
        if self._episodes_left_to_start is not None and not self._needs_reset[i]:
            self._episodes_left_to_start += 1  # the dropped episode will not finish: start another
        try:
            self._envs[i].close()
        except Exception:  # a broken env may also fail to close; it is being replaced anyway
            logger.debug("closing the failed env raised too", exc_info=True)
        self._envs[i] = self._make_env(i)
        self._needs_reset[i] = True

    def _reset(self, i: int, seed: int | None) -> dict | None:
        """Reset sub-env ``i`` into a new episode; returns its first observations."""
        if self._writer is not None and not self._episodes[i].is_done:
            self._writer.discard_episode(self._episodes[i].id_)
        self._episodes[i] = MultiAgentEpisode()
        try:
            obs, _ = self._envs[i].reset(seed=seed)
        except Exception as error:
            self._env_failed(i, "reset()", error)
            return None
        self._needs_reset[i] = False
        return obs

    # ------------------------------------------------------------------ sampling
    def sample(self, num_timesteps: int | None = None, num_episodes: int | None = None,
               explore: bool | None = None) -> SampleResult:
        """Step all sub-envs until ``num_timesteps`` env steps or ``num_episodes`` episodes.

        ``num_episodes`` starts fresh episodes (evaluation semantics) and exactly that many:
        once they have all started no sub-env starts another, so the result is not biased
        towards short episodes however many sub-envs run.
        """
        if (num_timesteps is None) == (num_episodes is None):
            raise ValueError("EnvRunner.sample() needs exactly one of num_timesteps and num_episodes.")
        explore = self.config.explore if explore is None else explore
        if num_episodes is not None:
            self._needs_reset = [True] * len(self._envs)
            self._acting = [[] for _ in self._envs]
        self._episodes_left_to_start = num_episodes
        self._num_env_restarts = 0
        segments: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
        finished: list[EpisodeStats] = []
        env_steps = agent_steps = 0
        self._start_pending_episodes()
        with torch.inference_mode():
            while True:
                if num_timesteps is not None and env_steps >= num_timesteps:
                    break
                if num_episodes is not None and len(finished) >= num_episodes:
                    break
                actions, acted = self._compute_actions(explore)
                if not acted:
                    raise EnvError(
                        f"No agent must act in any sub-env of {self.config.env!r}, yet the episodes are not "
                        "over: an env step returned no observations without setting '__all__' done."
                    )
                agent_steps += acted
                env_steps += self._step_envs(actions, finished, segments)
        self._episodes_left_to_start = None
        for episode in self._episodes:
            self._keep_segments(episode, segments)
        if self._writer is not None:
            self._writer.flush()
        batches = {mid: concat_segments(parts) for mid, parts in segments.items()}
        return SampleResult(batches, finished, env_steps, agent_steps, self._weights_version, self._num_env_restarts)

    def _start_pending_episodes(self) -> None:
        started = {}
        for i in range(len(self._envs)):
            while self._needs_reset[i] and self._episodes_left_to_start != 0:
                obs = self._reset(i, self._env_seed(i))  # None: the env failed and was recreated
                if obs is not None:
                    started[i] = (self._episodes[i].add_env_reset(obs), obs)
                    if self._episodes_left_to_start is not None:
                        self._episodes_left_to_start -= 1
        if started:
            self._observe(started)

    def _compute_actions(self, explore: bool) -> tuple[list[dict], int]:
        """One forward pass per module over every acting agent of every sub-env."""
        members_by_module: dict[str, list[tuple[int, Any, AgentTrajectory]]] = {}
        for i, acting in enumerate(self._acting):
            if acting:
                agents = self._episodes[i].agents
                for agent_id in acting:
                    trajectory = agents[agent_id]
                    members_by_module.setdefault(trajectory.module_id, []).append((i, agent_id, trajectory))
        actions: list[dict] = [{} for _ in self._envs]
        acted = 0
        for module_id, members in members_by_module.items():
            observed = [trajectory.last_obs for _, _, trajectory in members]
            batch = {Columns.OBS: torch.from_numpy(_stack([o for o, _ in observed]))}
            if observed[0][1] is not None:
                batch[Columns.ACTION_MASK] = torch.from_numpy(_stack([m for _, m in observed]))
            acting = self._acting_module(module_id)
            module, initial_state = acting.module, acting.initial_state
            if initial_state is not None:  # each agent's own state, this episode's
                states = np.stack([initial_state if t.state is None else t.state for _, _, t in members])
                batch[Columns.STATE_IN] = torch.from_numpy(states)
            out = module.forward_exploration(batch) if explore else module.forward_inference(batch)
            if initial_state is not None:
                states_out = out[Columns.STATE_OUT].numpy()
            dist_inputs = out[Columns.ACTION_DIST_INPUTS]
            dist_inputs_np = dist_inputs.numpy()
            if acting.categorical is None:  # asked once per module object, on its first output
                acting.categorical = type(module.action_distribution(dist_inputs)) is Categorical
            if acting.categorical:
                chosen_np, logp = sample_categorical(dist_inputs_np, self._action_rng, explore)
            else:
                dist = module.action_distribution(dist_inputs)
                chosen = dist.sample() if explore else dist.deterministic_sample()
                logp = dist.logp(chosen).numpy()
                chosen_np = chosen.numpy()
            keep = module_id in self._modules_to_train or self._writer is not None
            for k, (i, agent_id, trajectory) in enumerate(members):
                action = chosen_np[k]
                actions[i][agent_id] = self._env_action(agent_id)(action)
                extras = {Columns.ACTION_LOGP: logp[k], Columns.ACTION_DIST_INPUTS: dist_inputs_np[k]} if keep else {}
                if initial_state is not None:
                    trajectory.state = states_out[k]
                    if keep:  # the state the action was taken from: a training sequence may start at any step
                        extras[Columns.STATE_IN] = states[k]
                trajectory.act(action, extras)
            acted += len(members)
        return actions, acted

    def _acting_module(self, module_id: str) -> _ActingModule:
        """The module acting as ``module_id`` now, with what sampling asks of it once per module object
        (a module evicted and rebuilt, or replaced, is a new object and is asked again)."""
        module = self.module[module_id]
        acting = self._acting_modules.get(module_id)
        if acting is None or acting.module is not module:
            initial = module.get_initial_state()
            acting = self._acting_modules[module_id] = _ActingModule(
                module, None if initial is None else initial.numpy())
        return acting

    def _env_action(self, agent_id: Any) -> Callable[[np.ndarray], Any]:
        """What turns a module's action for ``agent_id`` into the env's (made once per agent id)."""
        convert = self._action_converters.get(agent_id)
        if convert is None:
            space = self._envs[0].get_action_space(agent_id)
            if isinstance(space, gym.spaces.Discrete):
                convert = int
            elif isinstance(space, gym.spaces.Box):
                shape, low, high = space.shape, space.low, space.high
                if self.config.clip_actions:
                    def convert(action: np.ndarray) -> np.ndarray:
                        return np.clip(action.reshape(shape), low, high)
                else:
                    def convert(action: np.ndarray) -> np.ndarray:
                        return action.reshape(shape)
            else:
                def convert(action: Any) -> Any:
                    return action
            self._action_converters[agent_id] = convert
        return convert

    def _step_envs(self, actions: list[dict], finished: list[EpisodeStats], segments) -> int:
        stepped = {}
        for i, env in enumerate(self._envs):
            if not actions[i]:
                continue
            try:
                obs, rewards, terminateds, truncateds, _ = env.step(actions[i])
            except Exception as error:
                self._env_failed(i, f"step(actions={actions[i]!r})", error)
                continue
            episode = self._episodes[i]
            if self._record_moves:
                episode.add_moves(actions[i])
            self._add_new_agents(episode, obs, rewards)
            stepped[i] = (episode.add_env_step(obs, rewards, terminateds, truncateds), obs)
            self._failures[i] = 0
        self._observe(stepped)
        for i in stepped:
            episode = self._episodes[i]
            if episode.is_done:
                finished.append(EpisodeStats(episode.episode_return, episode.env_steps, episode.agent_returns,
                                             episode.module_returns, episode.agent_modules, episode.moves))
                self._keep_segments(episode, segments)
                if self._writer is not None:
                    self._writer.finish_episode(episode.id_)
                self._needs_reset[i] = True
        self._start_pending_episodes()
        return len(stepped)

    def _add_new_agents(self, episode: MultiAgentEpisode, obs: dict, rewards: dict) -> None:
        for agent_id in (*obs, *rewards):
            if agent_id not in episode.agents:
                module_id = map_agent(self.config, agent_id, episode, self._policy_mapping_fn)
                episode.add_agent(agent_id, module_id)
                self._use_module(module_id)

    def _observe(self, outcomes: dict[int, tuple[StepOutcome, dict]]) -> None:
        """Run each agent's observation pipeline once over all sub-envs, then record."""
        raw_by_agent: dict[Any, list[tuple[int, Any]]] = {}
        for i, (outcome, obs) in outcomes.items():
            episode = self._episodes[i]
            if not episode.agents:
                self._add_new_agents(episode, obs, {})
            for agents in (outcome.acting, outcome.ending):
                for agent_id in agents:
                    raw = obs.get(agent_id, _ABSENT)
                    if raw is not _ABSENT:
                        raw_by_agent.setdefault(agent_id, []).append((i, raw))
        processed: dict[int, dict] = {i: {} for i in outcomes}
        for agent_id, entries in raw_by_agent.items():
            rows, masks = self._pipeline(agent_id).process([o for _, o in entries])
            for k, (i, _) in enumerate(entries):
                processed[i][agent_id] = (rows[k], None if masks is None else masks[k])
        for i, (outcome, _) in outcomes.items():
            episode = self._episodes[i]
            critic = None if self._critic_inputs is None else self._critic_inputs.rows(
                self._envs[i], episode.agent_modules, processed[i])
            episode.add_observations(outcome, processed[i], critic)
            self._acting[i] = outcome.acting

    def _pipeline(self, agent_id: Any) -> ObservationPipeline:
        pipeline = self._pipelines.get(agent_id)
        if pipeline is None:
            connector = next(iter(self._pipelines.values())).connector if self._pipelines else None
            space = self._envs[0].get_observation_space(agent_id)
            pipeline = self._pipelines[agent_id] = ObservationPipeline(space, connector)
        return pipeline

    def _keep_segments(self, episode: MultiAgentEpisode, segments) -> None:
        for agent_id, segment in episode.take_completed(self._lookahead).items():
            module_id = episode.agents[agent_id].module_id
            if self._writer is not None:  # every module's, frozen opponents' too
                self._writer.add_segment(episode.id_, agent_id, module_id, segment)
            if module_id in self._modules_to_train:
                segments[module_id].append(segment)

    # ------------------------------------------------------------------ weights and lifecycle
    def set_weights(self, weights: dict[str, dict[str, Any]], version: int | None = None) -> None:
        """Load module weights (only the modules named); ``version`` counts the trained modules' updates.

        An added module that is not built keeps the weights as its source for its next build.
        """
        built = {}
        for module_id, state in weights.items():
            if module_id in self._added:
                self._added[module_id] = (self._added[module_id][0], state)
            if module_id in self.module:
                built[module_id] = state
        self.module.set_state(built)
        if version is not None:
            self._weights_version = version

    def get_weights(self, module_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Weights of the named modules (added ones are built if evicted); all built ones by default."""
        if module_ids is None:
            return self.module.get_state()
        weights = {}
        for module_id in module_ids:  # one at a time: building one may evict another named here
            self._use_module(module_id)
            weights |= self.module.get_state([module_id])
        return weights

    def add_module(self, module_id: str, spec: RLModuleSpec, weights: Any = None) -> None:
        """Add a module that acts here but never trains here (a league opponent, a scripted bot).

        ``weights``: a state dict, a ``WeightsRef`` or None (the spec's initial weights).
        It is built when the policy mapping first draws it (so weights of opponents never
        drawn here are never fetched), and kept while it is among the
        ``max_opponents_per_runner`` most recently drawn added modules.
        """
        if module_id in self.module and module_id not in self._added:
            self.config.policies[module_id] = spec  # a module of the config: it is not an added one
            return
        self._added[module_id] = (spec, weights)
        self.config.policies[module_id] = spec
        if module_id in self._built and weights is not None:
            self.module.set_state({module_id: load_weights(weights)})

    def built_added_modules(self) -> list[str]:
        """The added modules built in this runner now, least recently drawn first."""
        return list(self._built)

    def _use_module(self, module_id: str) -> None:
        """Mark an added module as just drawn: build it if it is not, then evict beyond the limit."""
        if module_id not in self._added:
            return
        if module_id in self._built:
            self._built.move_to_end(module_id)
            return
        spec, source = self._added[module_id]
        weights = load_weights(source)
        module = self._take_spare(spec) if weights is not None else None
        if module is None:
            with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep sampling's stream
                module = spec.build()
            module.eval()
        if weights is not None:
            module.load_state_dict(weights)  # strict: every parameter and buffer is overwritten
        self.module.add_module_by_id(module_id, module)
        self._built[module_id] = None
        self.num_module_builds += 1
        self._evict(keep=module_id)

    def _take_spare(self, spec: RLModuleSpec) -> RLModule | None:
        """An evicted module of the same spec, to load other weights into instead of building anew.

        Building a module costs more than loading its weights (it draws every initial
        weight), and a league's runner with more running episodes than cached opponents
        builds one every few steps.
        """
        for index, (spare_spec, module) in enumerate(self._spares):
            if spare_spec == spec:
                del self._spares[index]
                self.num_modules_reused += 1
                return module
        return None

    def _evict(self, keep: str) -> None:
        """Drop least recently drawn added modules beyond ``max_opponents_per_runner``.

        A module that an unfinished episode plays stays (so the limit may be passed while
        more episodes run than the limit allows).
        """
        if self._max_added is None or len(self._built) <= self._max_added:
            return
        in_use = {agent.module_id for episode in self._episodes for agent in episode.agents.values()}
        for module_id in list(self._built):
            if len(self._built) <= self._max_added:
                break
            if module_id != keep and module_id not in in_use:
                self._spares.append((self._added[module_id][0], self.module[module_id]))
                self.module.remove_module_by_id(module_id)
                self._acting_modules.pop(module_id, None)
                del self._built[module_id]

    def set_policy_mapping_fn(self, policy_mapping_fn: Callable) -> None:
        """Use a new agent -> module mapping from the next episode on (a league's opponent draw)."""
        self.config.policy_mapping_fn = policy_mapping_fn
        self._policy_mapping_fn = mapping_for_runner(policy_mapping_fn, self.worker_index)

    def ping(self) -> str:
        return "ok"

    def stop(self) -> None:
        for env in self._envs:
            env.close()
