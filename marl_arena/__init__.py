"""marl_arena: multi-agent reinforcement learning built around leagues and self-play."""

__version__ = "0.1.0"
