"""marl_arena's first-party env plugins (installed as ``marl_arena_envs``).

Each sub-package exposes ``make(name, env_config)`` and is registered in the
``marl_arena.envs`` entry-point group under its scheme, so ``"pettingzoo:connect_four_v3"``,
``"open_spiel:kuhn_poker"`` and ``"games:rock_paper_scissors"`` resolve by name.
"""
