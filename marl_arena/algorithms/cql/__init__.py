from marl_arena.algorithms.cql.cql import CQL
from marl_arena.algorithms.cql.cql_config import CQLConfig

__all__ = ["CQL", "CQLConfig"]
