"""Ready-to-run leagues (installed as ``marl_arena_leagues``), run with ``marl-arena league run NAME``.

Each module defines ``ITERATIONS`` (a sensible default length) and
``make_config(directory) -> LeagueConfig``; a script of one's own with the same two names
runs the same way (``marl-arena league run my_league.py``).
"""

NAMES = ("take_away", "rock_paper_scissors", "kuhn_poker", "leduc_poker", "connect_four", "tic_tac_toe")

TEAM_NAMES = ("simple_tag",)
"""Ready-made leagues whose players are teams of two sides (``LeagueConfig.sides``), run the same way."""
