"""RLlib's packed arrays: the encoding its tabular recording uses for ``output_compress_columns``.

RLlib (``offline_data(output=..., output_write_episodes=False)``) stores each observation of
the columns it compresses (``obs`` and ``new_obs`` by default) as one ASCII string per row:
base64 of an LZ4 frame of a pickled NumPy array. This module turns such a column back into
one float32 vector per row, so marl_arena learns from what RLlib recorded.

A pickle can run arbitrary code when loaded, and a data set may come from anywhere, so the
unpickler admits only what a pickled NumPy array needs (its reconstruct functions and
dtypes); anything else is refused with the file and column named.
"""

from __future__ import annotations

import base64
import binascii
import io
import pickle

import numpy as np
import pyarrow as pa

from marl_arena.offline.errors import OfflineDataError

# What pickle.dumps(np.ndarray) references, under NumPy 1's and NumPy 2's module names.
_ALLOWED = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
}


def is_packed(type_: pa.DataType) -> bool:
    """Whether a vector column of this type holds packed arrays (one string or binary value per row)."""
    return any(kind(type_) for kind in (pa.types.is_string, pa.types.is_large_string,
                                        pa.types.is_binary, pa.types.is_large_binary))


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a pickled NumPy array")
        return super().find_class(module, name)


def unpack(value: str | bytes) -> np.ndarray:
    """One packed value as a flat float32 array."""
    import lz4.frame

    array = _ArrayUnpickler(io.BytesIO(lz4.frame.decompress(base64.b64decode(value, validate=True)))).load()
    return np.asarray(array, dtype=np.float32).reshape(-1)


def unpack_column(column: pa.ChunkedArray, name: str, paths: np.ndarray) -> pa.Array:
    """A packed column as ``list<float32>``; a value that does not unpack names its file, column and row."""
    try:
        import lz4.frame  # noqa: F401 - RLlib's compression; installed with ray[rllib]
    except ImportError as error:
        raise ImportError(f"{paths[0]}: column {name!r} holds RLlib's packed arrays (its output_compress_columns); "
                          "reading them needs the lz4 package: pip install lz4.") from error
    values = column.to_pylist()
    rows = []
    for row, value in enumerate(values):
        if value is None:
            raise OfflineDataError(f"{paths[row]}: column {name!r} has empty (null) values.")
        try:
            rows.append(unpack(value))
        except (binascii.Error, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, TypeError) as error:
            raise OfflineDataError(f"{paths[row]}: column {name!r} row {row} is a string that is not one of "
                                   "RLlib's packed arrays (base64 of an LZ4-compressed pickled NumPy array): "
                                   f"{error}") from error
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int32, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.concatenate(rows) if rows else np.zeros(0, np.float32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32()))
