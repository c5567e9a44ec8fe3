"""Which module each agent plays, and the module specs that follow from the env's spaces."""

from __future__ import annotations

from typing import Any, Callable

from marl_arena.core.rl_module import MultiRLModuleSpec, RLModule, RLModuleSpec
from marl_arena.env.episode import MultiAgentEpisode
from marl_arena.env.multi_agent_env import MultiAgentEnv
from marl_arena.env.registry import EnvContext, make_env
from marl_arena.runners.critic_inputs import fill_critic_widths
from marl_arena.runners.observation_pipeline import ObservationPipeline, make_connector


def map_agent(config, agent_id: Any, episode: MultiAgentEpisode,
              policy_mapping_fn: Callable | None = None) -> str:
    """Call ``policy_mapping_fn`` (the config's by default) and check that the module id it returns exists."""
    module_id = (policy_mapping_fn or config.policy_mapping_fn)(agent_id, episode)
    if module_id not in config.policies:
        raise ValueError(
            f"policy_mapping_fn mapped agent {agent_id!r} to module {module_id!r}, which is not "
            f"in multi_agent(policies=...) {sorted(config.policies)}."
        )
    return module_id


def mapping_for_runner(policy_mapping_fn: Callable, worker_index: int) -> Callable:
    """The mapping function env runner ``worker_index`` calls: its own copy when the function draws at random.

    A mapping function travels to every runner actor by value, random generator included,
    so every runner would replay one sequence of draws. A function with a
    ``for_env_runner(worker_index)`` method (a league's opponent draw) gives each runner a
    copy with its own random stream instead.
    """
    bind = getattr(policy_mapping_fn, "for_env_runner", None)
    return bind(worker_index) if callable(bind) else policy_mapping_fn


def agent_pipelines(config, env: MultiAgentEnv) -> dict[Any, ObservationPipeline]:
    """One observation pipeline per possible agent, sharing one connector instance."""
    connector = make_connector(config.env_to_module_connector, env)
    return {aid: ObservationPipeline(env.get_observation_space(aid), connector) for aid in env.possible_agents}


def module_spec_from_env(config, env: MultiAgentEnv, default_module_class: type[RLModule]) -> MultiRLModuleSpec:
    """Specs for every module in ``config.policies``, with spaces taken from the agents mapped to it.

    The mapping function is probed once per possible agent. A module no agent maps to in
    the probe (a league opponent added later, say) takes the spaces all agents share, or
    must name its spaces in its RLModuleSpec.
    """
    pipelines = agent_pipelines(config, env)
    probe = MultiAgentEpisode()
    spaces: dict[str, tuple[Any, Any, Any]] = {}
    for aid, pipeline in pipelines.items():
        module_id = map_agent(config, aid, probe)
        pair = (pipeline.observation_space, env.get_action_space(aid))
        if module_id in spaces and spaces[module_id][:2] != pair:
            other = spaces[module_id][2]
            raise ValueError(
                f"Agents {other!r} and {aid!r} both map to module {module_id!r} but have different "
                f"spaces ({spaces[module_id][:2]} vs {pair}); map them to different modules."
            )
        spaces.setdefault(module_id, (*pair, aid))
    shared = []
    for obs_space, act_space, _ in spaces.values():
        if (obs_space, act_space) not in shared:
            shared.append((obs_space, act_space))
    specs = _specs_for_policies(config, spaces, shared, default_module_class)
    return fill_critic_widths(specs, env, {aid: pipeline.observation_space for aid, pipeline in pipelines.items()})


def module_spec_for_config(config, default_module_class: type[RLModule]) -> MultiRLModuleSpec:
    """Specs from a probe copy of ``config.env``; with no env (external simulators step it), every
    module takes ``config.observation_space``/``action_space`` unless its RLModuleSpec names its own."""
    if config.env is None:
        pipeline = ObservationPipeline(config.observation_space, None)
        return _specs_for_policies(config, {}, [(pipeline.observation_space, config.action_space)],
                                   default_module_class)
    probe = make_env(config.env, EnvContext(config.env_config))
    try:
        return module_spec_from_env(config, probe, default_module_class)
    finally:
        probe.close()


def _specs_for_policies(config, spaces: dict[str, tuple[Any, Any, Any]], shared: list[tuple[Any, Any]],
                        default_module_class: type[RLModule]) -> MultiRLModuleSpec:
    """A spec per module of ``config.policies``: the spaces of its agents, else the ones all agents share."""
    specs = {}
    for module_id, given in config.policies.items():
        given = given or config.rl_module_spec
        spec = RLModuleSpec() if given is None else RLModuleSpec(**vars(given))
        spec.module_class = spec.module_class or default_module_class
        if spec.observation_space is None or spec.action_space is None:
            if module_id in spaces:
                obs_space, act_space, _ = spaces[module_id]
            elif len(shared) == 1:
                obs_space, act_space = shared[0]
            else:
                raise ValueError(
                    f"No agent maps to module {module_id!r} and agents have different spaces; give "
                    f"it an RLModuleSpec(observation_space=..., action_space=...)."
                )
            spec.observation_space = spec.observation_space or obs_space
            spec.action_space = spec.action_space or act_space
        if spec.model_config is None:
            spec.model_config = config.model_config_for(module_id)
        specs[module_id] = spec
    return MultiRLModuleSpec(rl_module_specs=specs)
