"""External simulators: clients that step their own env, a TCP server EnvRunner that learns from them.

``Client`` needs numpy and msgpack only; ``TcpServerEnvRunner`` (torch) is imported on first
use, so ``from marl_arena.external import Client`` stays free of torch.
``marl_arena.external.tic_tac_toe`` is a two-seat match server built on the client (a league
trains on its games); ``tic_tac_toe_env`` is the same game in-process.
"""

from marl_arena.external.client import Client, ServerError
from marl_arena.external.protocol import PROTOCOL_VERSION, ProtocolError

__all__ = ["Client", "PROTOCOL_VERSION", "ProtocolError", "ServerError", "TcpServerEnvRunner"]


def __getattr__(name: str):
    if name == "TcpServerEnvRunner":
        from marl_arena.external.server import TcpServerEnvRunner

        return TcpServerEnvRunner
    raise AttributeError(f"module 'marl_arena.external' has no attribute {name!r}")
