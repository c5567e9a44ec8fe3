"""AlgorithmConfig: RLlib's builder-style configuration, validated when an algorithm is built.

Every builder method sets only the arguments it is given and returns the config, so
``PPOConfig().environment("CartPole-v1").training(lr=1e-3)`` reads like RLlib. Field names
and meanings follow RLlib's wherever RLlib has the field.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from typing import Any, Callable, Collection

from marl_arena.algorithms.bounds import describe, within
from marl_arena.algorithms.schedules import check_schedule, is_schedule
from marl_arena.core.models import DefaultModelConfig
from marl_arena.core.rl_module import DEFAULT_MODULE_ID, RLModuleSpec


class _NotProvided:
    """Marks a builder argument the caller did not pass (None is a legal value)."""

    def __repr__(self) -> str:
        return "NotProvided"


NotProvided: Any = _NotProvided()


def default_policy_mapping_fn(agent_id, episode=None, **kwargs) -> str:
    """Every agent plays the one default module."""
    return DEFAULT_MODULE_ID


class AlgorithmConfig:
    """Settings shared by all algorithms; subclasses add their ``training`` fields."""

    algo_class: type | None = None
    reads_offline_data = False
    """Whether the algorithm learns from ``offline_data(input_=...)`` (BC, MARWIL, CQL) rather than its
    runners; then ``input_`` must be set."""
    supports_recurrent_modules = False
    """Whether the algorithm's learner trains stateful modules on sequences (``use_lstm``)."""
    scheduled_fields: tuple[str, ...] = ()
    """Training fields that may also be a schedule ``[[env_steps, value], ...]``
    (``marl_arena.algorithms.schedules``), which the algorithm's learner follows: ``lr`` is
    followed by the learner's default optimizer, the others read by its loss."""

    def __init__(self, algo_class: type | None = None):
        if algo_class is not None:
            self.algo_class = algo_class
        # environment()
        self.env: Any = None
        self.env_config: dict = {}
        self.clip_actions = True
        self.observation_space: Any = None
        """An agent's observation space when no env runs here (external simulators); with ``action_space``."""
        self.action_space: Any = None
        """An agent's action space when no env runs here (external simulators)."""
        # env_runners()
        self.env_runner_cls: type | None = None
        """The sampler class (None: ``EnvRunner``), e.g. ``marl_arena.external.TcpServerEnvRunner``."""
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 1
        self.rollout_fragment_length: int | str = "auto"
        self.env_to_module_connector: Callable | None = None
        self.num_cpus_per_env_runner: float = 1.0
        self.explore = True
        self.sample_timeout_s: float | None = 60.0
        self.record_moves = False
        """Keep every episode's (agent, action) sequence in its EpisodeStats: a league stores them
        for replays; off by default, as it costs a little on every env step and transfer."""
        self.max_opponents_per_runner: int | None = None
        """Most modules added after the start (league opponents) a runner keeps built; the least
        recently drawn are dropped and rebuilt on demand. None: no limit."""
        # learners()
        self.num_learners = 0
        self.num_gpus_per_learner: float = 0.0
        self.num_cpus_per_learner: float = 1.0
        # training()
        self.gamma = 0.99
        self.lr = 3e-4
        self.train_batch_size_per_learner: int | None = None
        self.train_batch_size = 4000
        self.minibatch_size: int | None = 128
        self.num_epochs = 1
        self.grad_clip: float | None = None
        self.learner_class: type | None = None
        """A subclass of the algorithm's learner to learn with (None: the algorithm's own), e.g. one
        whose ``compute_loss_for_module`` adds a loss term (examples/custom_loss_learner.py)."""
        self.learner_config_dict: dict = {}
        """Settings a custom learner reads (RLlib's name): the algorithm's own learner ignores them."""
        self.learner_connector: Callable | None = None
        """A factory ``(observation_space, action_space) -> LearnerConnector`` (or a list of them), called
        once per learner as in RLlib, of transforms of each module's batch before ``prepare_batch``:
        intrinsic rewards such as ``marl_arena.connectors.CountBasedCuriosity``."""
        # rl_module()
        self.model_config: DefaultModelConfig | dict | None = None
        self.rl_module_spec: RLModuleSpec | None = None
        # multi_agent()
        self.policies: dict[str, RLModuleSpec | None] = {DEFAULT_MODULE_ID: None}
        self.policy_mapping_fn: Callable = default_policy_mapping_fn
        self.policies_to_train: Collection[str] | Callable | None = None
        self.initial_weights_from: str | None = None
        """A checkpoint whose trained modules' weights the modules start from (BC -> PPO)."""
        # offline_data()
        self.input_: Any = None
        """Offline algorithms: Parquet files, directories or globs (a path or a list) to learn from."""
        self.output: str | None = None
        """A directory where env runners write every finished episode as Parquet (None: none)."""
        self.dataset_num_iters_per_learner: int | None = None
        """Batches per training iteration; None: one pass over the whole dataset."""
        self.map_batches_kwargs: dict = {}
        """Passed to the Ray Data ``map_batches`` stage that casts columns to the learner's types."""
        self.iter_batches_kwargs: dict = {}
        """Passed to Ray Data's ``iter_batches`` (e.g. ``local_shuffle_buffer_size``; the batch size
        is ``train_batch_size_per_learner`` times the learners)."""
        self.materialize_data = False
        """Read the files once and keep the cast rows in Ray's object store, instead of reading them again
        on every pass: for datasets that fit in memory and are passed over many times (CQL's many updates)."""
        # evaluation()
        self.evaluation_interval: int | None = None
        self.evaluation_duration: int = 10
        self.evaluation_duration_unit = "episodes"
        self.evaluation_num_env_runners = 0
        self.evaluation_config: dict = {"explore": False}
        # fault_tolerance()
        self.restart_failed_env_runners = True
        self.restart_failed_sub_environments = False
        self.max_num_env_runner_restarts = 1000
        # debugging() / reporting()
        self.seed: int | None = None
        self.log_level = "WARN"
        self.metrics_num_episodes_for_smoothing = 100
        self.min_time_s_per_iteration: float = 0.0

    # ------------------------------------------------------------------ builder methods
    def _set(self, **values: Any) -> "AlgorithmConfig":
        for name, value in values.items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def environment(self, env: Any = NotProvided, *, env_config: dict | None = NotProvided,
                    clip_actions: bool = NotProvided, observation_space: Any = NotProvided,
                    action_space: Any = NotProvided) -> "AlgorithmConfig":
        """The env: an id (registered, plugin or gymnasium), a class or a creator; or, for external
        simulators that step their own env, no env and the spaces of its one agent."""
        if env_config is not NotProvided and env_config is None:
            env_config = {}
        return self._set(env=env, env_config=env_config, clip_actions=clip_actions,
                         observation_space=observation_space, action_space=action_space)

    def env_runners(self, *, num_env_runners: int = NotProvided, num_envs_per_env_runner: int = NotProvided,
                    rollout_fragment_length: int | str = NotProvided,
                    env_to_module_connector: Callable | None = NotProvided,
                    num_cpus_per_env_runner: float = NotProvided, explore: bool = NotProvided,
                    sample_timeout_s: float | None = NotProvided,
                    record_moves: bool = NotProvided,
                    max_opponents_per_runner: int | None = NotProvided,
                    env_runner_cls: type | None = NotProvided) -> "AlgorithmConfig":
        """Sampling: how many Ray runner actors (0 samples in the driver), envs per runner, ..."""
        return self._set(env_runner_cls=env_runner_cls, num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
                         rollout_fragment_length=rollout_fragment_length,
                         env_to_module_connector=env_to_module_connector,
                         num_cpus_per_env_runner=num_cpus_per_env_runner, explore=explore,
                         sample_timeout_s=sample_timeout_s, record_moves=record_moves,
                         max_opponents_per_runner=max_opponents_per_runner)

    def learners(self, *, num_learners: int = NotProvided, num_gpus_per_learner: float = NotProvided,
                 num_cpus_per_learner: float = NotProvided,
                 learner_connector: Callable | None = NotProvided) -> "AlgorithmConfig":
        """Learning: 0 learns in the driver; N > 0 starts N Ray learner actors. ``learner_connector`` as
        in ``training()`` (RLlib 2.60 moved it here; both places set the one field)."""
        return self._set(num_learners=num_learners, num_gpus_per_learner=num_gpus_per_learner,
                         num_cpus_per_learner=num_cpus_per_learner, learner_connector=learner_connector)

    def training(self, *, gamma: float = NotProvided, lr: float = NotProvided,
                 train_batch_size_per_learner: int = NotProvided, train_batch_size: int = NotProvided,
                 minibatch_size: int | None = NotProvided, num_epochs: int = NotProvided,
                 grad_clip: float | None = NotProvided, learner_class: type | None = NotProvided,
                 learner_config_dict: dict | None = NotProvided,
                 learner_connector: Callable | None = NotProvided) -> "AlgorithmConfig":
        """Optimisation settings common to all algorithms, and the learner's custom parts
        (``learner_class``, ``learner_config_dict``, ``learner_connector``: RLlib's names)."""
        if learner_config_dict is not NotProvided and learner_config_dict is None:
            learner_config_dict = {}
        return self._set(gamma=gamma, lr=lr, train_batch_size_per_learner=train_batch_size_per_learner,
                         train_batch_size=train_batch_size, minibatch_size=minibatch_size,
                         num_epochs=num_epochs, grad_clip=grad_clip, learner_class=learner_class,
                         learner_config_dict=learner_config_dict, learner_connector=learner_connector)

    def rl_module(self, *, model_config: DefaultModelConfig | dict | None = NotProvided,
                  rl_module_spec: RLModuleSpec | None = NotProvided,
                  initial_weights_from: str | None = NotProvided) -> "AlgorithmConfig":
        """Network shape (``DefaultModelConfig``) or a custom module class via a spec.

        ``initial_weights_from``: a checkpoint directory; every module of this config that the
        checkpoint trained starts from its weights (optimizers start fresh). A BC checkpoint
        so starts PPO from the cloned policy; its value head was never trained (BC's loss has
        no value term), so PPO's critic starts untrained.
        """
        return self._set(model_config=model_config, rl_module_spec=rl_module_spec,
                         initial_weights_from=initial_weights_from)

    def offline_data(self, *, input_: Any = NotProvided, output: str | None = NotProvided,
                     dataset_num_iters_per_learner: int | None = NotProvided,
                     map_batches_kwargs: dict | None = NotProvided,
                     iter_batches_kwargs: dict | None = NotProvided,
                     materialize_data: bool = NotProvided) -> "AlgorithmConfig":
        """Offline data: ``output`` records the runners' episodes; ``input_`` is what BC,
        MARWIL and CQL learn from (see ``marl_arena.offline`` for the file layout)."""
        if map_batches_kwargs is not NotProvided and map_batches_kwargs is None:
            map_batches_kwargs = {}
        if iter_batches_kwargs is not NotProvided and iter_batches_kwargs is None:
            iter_batches_kwargs = {}
        return self._set(input_=input_, output=output, dataset_num_iters_per_learner=dataset_num_iters_per_learner,
                         map_batches_kwargs=map_batches_kwargs, iter_batches_kwargs=iter_batches_kwargs,
                         materialize_data=materialize_data)

    def multi_agent(self, *, policies: Collection[str] | dict | None = NotProvided,
                    policy_mapping_fn: Callable = NotProvided,
                    policies_to_train: Collection[str] | Callable | None = NotProvided) -> "AlgorithmConfig":
        """Module ids, the agent -> module mapping, and which modules learn."""
        if policies is not NotProvided:
            policies = self._normalise_policies(policies)
        return self._set(policies=policies, policy_mapping_fn=policy_mapping_fn,
                         policies_to_train=policies_to_train)

    @staticmethod
    def _normalise_policies(policies: Collection[str] | dict | None) -> dict[str, RLModuleSpec | None]:
        if policies is None:
            return {DEFAULT_MODULE_ID: None}
        if isinstance(policies, dict):
            specs = dict(policies)
        elif isinstance(policies, (set, frozenset)):
            # Sorted: a set's order changes with PYTHONHASHSEED, and module build order
            # decides initial weights, so seeded runs would differ between processes.
            specs = {pid: None for pid in sorted(policies, key=str)}
        elif isinstance(policies, (list, tuple)):
            specs = {pid: None for pid in policies}
        else:
            raise ValueError(f"multi_agent(policies=...) must be a set, list or dict of module ids, got {policies!r}.")
        for pid, spec in specs.items():
            if not isinstance(pid, str):
                raise ValueError(f"multi_agent(policies=...): module ids must be strings, got {pid!r}.")
            if spec is not None and not isinstance(spec, RLModuleSpec):
                raise ValueError(f"multi_agent(policies=...): the value for {pid!r} must be an RLModuleSpec or None, got {spec!r}.")
        return specs

    def evaluation(self, *, evaluation_interval: int | None = NotProvided, evaluation_duration: int = NotProvided,
                   evaluation_duration_unit: str = NotProvided, evaluation_num_env_runners: int = NotProvided,
                   evaluation_config: dict | None = NotProvided) -> "AlgorithmConfig":
        """Greedy evaluation every ``evaluation_interval`` iterations (None: only on ``evaluate()``)."""
        if evaluation_config is not NotProvided:
            evaluation_config = {"explore": False, **(evaluation_config or {})}
        return self._set(evaluation_interval=evaluation_interval, evaluation_duration=evaluation_duration,
                         evaluation_duration_unit=evaluation_duration_unit,
                         evaluation_num_env_runners=evaluation_num_env_runners,
                         evaluation_config=evaluation_config)

    def fault_tolerance(self, *, restart_failed_env_runners: bool = NotProvided,
                        restart_failed_sub_environments: bool = NotProvided,
                        max_num_env_runner_restarts: int = NotProvided) -> "AlgorithmConfig":
        """Restart dead runner actors; recreate sub-envs that raise."""
        return self._set(restart_failed_env_runners=restart_failed_env_runners,
                         restart_failed_sub_environments=restart_failed_sub_environments,
                         max_num_env_runner_restarts=max_num_env_runner_restarts)

    def debugging(self, *, seed: int | None = NotProvided, log_level: str = NotProvided) -> "AlgorithmConfig":
        return self._set(seed=seed, log_level=log_level)

    def reporting(self, *, metrics_num_episodes_for_smoothing: int = NotProvided,
                  min_time_s_per_iteration: float = NotProvided) -> "AlgorithmConfig":
        return self._set(metrics_num_episodes_for_smoothing=metrics_num_episodes_for_smoothing,
                         min_time_s_per_iteration=min_time_s_per_iteration)

    def framework(self, framework: str = "torch") -> "AlgorithmConfig":
        """Only torch exists here; accepted so RLlib scripts run unchanged."""
        if framework != "torch":
            raise ValueError(f"framework={framework!r} is not supported; marl_arena runs on 'torch' only.")
        return self

    def api_stack(self, *, enable_rl_module_and_learner: bool = True,
                  enable_env_runner_and_connector_v2: bool = True) -> "AlgorithmConfig":
        """marl_arena has one API stack (RLlib's new one); accepted so RLlib scripts run unchanged."""
        if not (enable_rl_module_and_learner and enable_env_runner_and_connector_v2):
            raise ValueError("marl_arena only has the RLModule/Learner/EnvRunner API stack; it cannot be disabled.")
        return self

    # ------------------------------------------------------------------ derived values
    def follows_schedules(self) -> bool:
        """Whether any of ``scheduled_fields`` is a schedule: then the learners need the env-step clock."""
        return any(is_schedule(getattr(self, name)) for name in self.scheduled_fields)

    @property
    def total_train_batch_size(self) -> int:
        """Env steps per training iteration, over all learners."""
        if self.train_batch_size_per_learner is not None:
            return int(self.train_batch_size_per_learner) * max(1, int(self.num_learners))
        return int(self.train_batch_size)

    def get_rollout_fragment_length(self) -> int:
        """Env steps per sub-env per sample call ("auto" splits the batch evenly)."""
        if self.rollout_fragment_length != "auto":
            return int(self.rollout_fragment_length)
        parallel = max(1, self.num_env_runners) * self.num_envs_per_env_runner
        return max(1, math.ceil(self.total_train_batch_size / parallel))

    def is_policy_to_train(self, module_id: str) -> bool:
        if self.policies_to_train is None:
            return True
        if callable(self.policies_to_train):
            return bool(self.policies_to_train(module_id, None))
        return module_id in self.policies_to_train

    def model_config_for(self, module_id: str) -> DefaultModelConfig:
        spec = self.policies.get(module_id)
        if spec is not None and spec.model_config is not None:
            return DefaultModelConfig.from_any(spec.model_config)
        return DefaultModelConfig.from_any(self.model_config)

    def get_evaluation_config_object(self) -> "AlgorithmConfig":
        """A copy of this config with ``evaluation_config`` applied (greedy by default)."""
        evaluation = self.copy()
        # Greedy evaluation episodes are not the behaviour that offline_data(output=) records.
        evaluation.output = None
        for name, value in self.evaluation_config.items():
            if not hasattr(evaluation, name):
                raise ValueError(f"evaluation_config names unknown config field {name!r}.")
            setattr(evaluation, name, value)
        return evaluation

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling (checkpoints, copies): fields added since the config was pickled take
        their defaults, so a checkpoint from an older marl_arena still restores."""
        self.__dict__.update(type(self)().__dict__)
        self.__dict__.update(state)

    def copy(self) -> "AlgorithmConfig":
        """A deep copy; a value that cannot be copied (an open handle, a C++ bot) is named."""
        try:
            return copy.deepcopy(self)
        except (TypeError, copy.Error) as error:
            raise ValueError(f"The config cannot be copied: {_uncopyable(self)} {error}. Configs travel to Ray "
                             "actors and checkpoints, so pass a name, a dict or a factory instead of a live object.") from error

    def to_dict(self) -> dict[str, Any]:
        """Plain field values (callables shown by name), for logs and checkpoints' metadata."""
        out = {}
        for name, value in vars(self).items():
            out[name] = getattr(value, "__name__", repr(value)) if callable(value) else value
        return out

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError naming the field, its value and what is allowed."""
        if self.env is None and (self.observation_space is None or self.action_space is None):
            raise ValueError("No env set: call config.environment(env=...) with an env id, class or creator, or "
                             "give environment(observation_space=..., action_space=...) for external simulators.")
        if self.env_runner_cls is not None and not (isinstance(self.env_runner_cls, type)
                                                    and callable(getattr(self.env_runner_cls, "sample", None))):
            raise ValueError(f"env_runner_cls={self.env_runner_cls!r} is not allowed: it must be None or an "
                             "EnvRunner-like class (with sample, set_weights, stop).")
        _check_int(self, "num_env_runners", minimum=0)
        _check_int(self, "num_envs_per_env_runner", minimum=1)
        _check_int(self, "num_learners", minimum=0)
        _check_int(self, "num_epochs", minimum=1)
        _check_int(self, "evaluation_duration", minimum=1)
        _check_int(self, "evaluation_num_env_runners", minimum=0)
        _check_int(self, "metrics_num_episodes_for_smoothing", minimum=1)
        if not isinstance(self.record_moves, bool):
            raise ValueError(f"record_moves={self.record_moves!r} is not allowed: it must be True or False.")
        if self.train_batch_size_per_learner is not None:
            _check_int(self, "train_batch_size_per_learner", minimum=1)
        else:
            _check_int(self, "train_batch_size", minimum=1)
        if self.minibatch_size is not None:
            _check_int(self, "minibatch_size", minimum=1)
        if self.rollout_fragment_length != "auto":
            _check_int(self, "rollout_fragment_length", minimum=1, extra="or 'auto'")
        if "lr" in self.scheduled_fields:
            check_schedule(self, "lr", low=0.0, low_inclusive=False)
        else:
            _check_number(self, "lr", low=0.0, low_inclusive=False)
        _check_number(self, "gamma", low=0.0, high=1.0)
        _check_number(self, "num_cpus_per_env_runner", low=0.0)
        if self.max_opponents_per_runner is not None:
            _check_int(self, "max_opponents_per_runner", minimum=1, extra="or None")
        _check_number(self, "num_gpus_per_learner", low=0.0)
        _check_number(self, "num_cpus_per_learner", low=0.0)
        if self.grad_clip is not None:
            _check_number(self, "grad_clip", low=0.0, low_inclusive=False)
        if self.evaluation_interval is not None:
            _check_int(self, "evaluation_interval", minimum=1, extra="or None")
        if self.evaluation_duration_unit not in ("episodes", "timesteps"):
            raise ValueError(
                f"evaluation_duration_unit={self.evaluation_duration_unit!r} is not allowed; use 'episodes' or 'timesteps'."
            )
        if not callable(self.policy_mapping_fn):
            raise ValueError(f"policy_mapping_fn must be callable, got {self.policy_mapping_fn!r}.")
        if self.policies_to_train is not None and not callable(self.policies_to_train):
            unknown = sorted(set(self.policies_to_train) - set(self.policies))
            if unknown:
                raise ValueError(
                    f"policies_to_train names {unknown}, which are not in policies {sorted(self.policies)}."
                )
        if self.env_to_module_connector is not None and not callable(self.env_to_module_connector):
            raise ValueError("env_to_module_connector must be a callable env -> connector, e.g. lambda env: FlattenObservations().")
        DefaultModelConfig.from_any(self.model_config)
        self._validate_recurrent()
        self._validate_learner()
        self._validate_offline_data()

    def _validate_recurrent(self) -> None:
        if self.supports_recurrent_modules:
            return
        for module_id in [None, *self.policies]:
            model_config = self.model_config if module_id is None else self.model_config_for(module_id)
            if DefaultModelConfig.from_any(model_config).use_lstm:
                where = "model_config" if module_id is None else f"the model_config of module {module_id!r}"
                raise ValueError(f"{where} has use_lstm=True, which {type(self).__name__} does not support: its "
                                 "learner trains on single steps, not sequences. Use PPOConfig, APPOConfig or "
                                 "IMPALAConfig for recurrent modules, or set use_lstm=False.")

    def _validate_learner(self) -> None:
        from marl_arena.learners.learner_group import learner_class_for

        learner_class_for(self, getattr(self.algo_class, "learner_class", None))
        if not isinstance(self.learner_config_dict, dict):
            raise ValueError(f"learner_config_dict={self.learner_config_dict!r} is not allowed: it must be a dict.")
        if self.learner_connector is not None and not callable(self.learner_connector):
            raise ValueError(f"learner_connector={self.learner_connector!r} is not allowed: it must be None or a "
                             "callable that returns a LearnerConnector, e.g. lambda *args: CountBasedCuriosity().")

    def _validate_offline_data(self) -> None:
        if self.input_ is not None and not self.reads_offline_data:
            raise ValueError(f"offline_data(input_={self.input_!r}) is not allowed for {type(self).__name__}: it "
                             "learns from its env runners; use BCConfig, MARWILConfig or CQLConfig to learn from "
                             "offline data.")
        if self.input_ is None and self.reads_offline_data:
            raise ValueError(f"input_=None is not allowed: {type(self).__name__} learns from offline data; set "
                             "config.offline_data(input_=...) to Parquet files, a directory or a glob.")
        if self.output is not None and not (isinstance(self.output, (str, os.PathLike)) and os.fspath(self.output)):
            raise ValueError(f"output={self.output!r} is not allowed: it must be a directory path or None.")
        if self.dataset_num_iters_per_learner is not None:
            _check_int(self, "dataset_num_iters_per_learner", minimum=1, extra="or None")
        for name in ("map_batches_kwargs", "iter_batches_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: it must be a dict.")
        if not isinstance(self.materialize_data, bool):
            raise ValueError(f"materialize_data={self.materialize_data!r} is not allowed: it must be True or False.")
        fixed = sorted({"batch_size", "batch_format"} & set(self.iter_batches_kwargs))
        if fixed:
            raise ValueError(f"iter_batches_kwargs={self.iter_batches_kwargs!r} is not allowed to set {fixed}: the "
                             "batch size is train_batch_size_per_learner and the format is the reader's.")
        if self.initial_weights_from is not None and not os.path.isdir(os.fspath(self.initial_weights_from)):
            raise ValueError(f"initial_weights_from={self.initial_weights_from!r} is not allowed: it must be a "
                             "checkpoint directory.")

    def build_algo(self):
        """Validate this config and build its Algorithm."""
        if self.algo_class is None:
            raise ValueError(f"{type(self).__name__} has no algorithm class to build.")
        return self.algo_class(self)

    build = build_algo


def _uncopyable(config: AlgorithmConfig) -> str:
    """Name the first field (or env_config key) that ``copy.deepcopy`` rejects."""
    for key, value in config.env_config.items():
        try:
            copy.deepcopy(value)
        except Exception:
            return f"env_config[{key!r}] = {value!r} cannot be copied:"
    for name, value in vars(config).items():
        try:
            copy.deepcopy(value)
        except Exception:
            return f"field {name!r} = {value!r} cannot be copied:"
    return ""


def _check_int(config: AlgorithmConfig, name: str, minimum: int, extra: str = "") -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = f"an integer >= {minimum}" + (f" {extra}" if extra else "")
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}.")


def _check_number(config: AlgorithmConfig, name: str, low: float | None = None, high: float | None = None,
                  low_inclusive: bool = True) -> None:
    value = getattr(config, name)
    if not within(value, low, high, low_inclusive):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a number {describe(low, high, low_inclusive)}.")
