"""The wire protocol between an external simulator (client) and a server EnvRunner.

A frame is a 4-byte big-endian unsigned length, then that many bytes of one msgpack map.
Every map carries ``"type"`` (one of ``MESSAGE_FIELDS``) and ``"version"``
(``PROTOCOL_VERSION``). numpy arrays travel as ``{"__ndarray__": True, "dtype", "shape",
"data"}`` with a dtype from ``ALLOWED_DTYPES``; nothing is ever pickled, so a frame can only
ever decode to plain data. The length is checked against ``max_message_bytes`` before the
body is read, so a hostile header cannot make the reader allocate.

This module depends on numpy and msgpack only: the client imports it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
TOKEN_ENV_VAR = "MARL_ARENA_TOKEN"
NONCE_BYTES = 32
MAX_EPISODE_ID_CHARS = 128

_HEADER = struct.Struct(">I")
_ARRAY_MARK = "__ndarray__"

ALLOWED_DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
})

# Required fields of each message type and their Python types after decoding. Optional fields
# are listed in the README; unknown extra fields are ignored (a newer peer may send more).
MESSAGE_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {"client": str},
    "challenge": {"nonce": bytes},
    "auth": {"hmac": bytes},
    "auth_ok": {},
    "get_config": {},
    "config": {"observation_space": dict, "action_space": dict, "module_id": str, "weights_version": int},
    "get_weights": {"module_id": str, "format": str},
    "weights": {"module_id": str, "weights_version": int, "format": str},
    "get_action": {"module_id": str, "obs": np.ndarray, "explore": bool},
    "action": {"actions": np.ndarray, "action_logp": np.ndarray, "action_dist_inputs": np.ndarray,
               "weights_version": int},
    "start_episode": {"agents": list},
    "episode_plan": {"episode_id": str, "modules": list, "weights_version": int},
    "episodes": {"episodes": list},
    "ack": {"num_episodes": int, "weights_version": int},
    "ping": {},
    "pong": {"weights_version": int},
    "error": {"message": str},
}


class ProtocolError(ValueError):
    """A frame or message that breaks the protocol; the message says what was wrong."""


class ConnectionClosed(ConnectionError):
    """The peer closed the connection cleanly between two frames."""


# ---------------------------------------------------------------------- arrays
def encode_array(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    dtype = array.dtype.name
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"dtype {dtype!r} cannot be sent; allowed are {sorted(ALLOWED_DTYPES)}.")
    return {_ARRAY_MARK: True, "dtype": dtype, "shape": list(array.shape), "data": array.tobytes()}


def decode_array(value: dict[str, Any]) -> np.ndarray:
    dtype, shape, data = value.get("dtype"), value.get("shape"), value.get("data")
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"array dtype {dtype!r} is not allowed; allowed are {sorted(ALLOWED_DTYPES)}.")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ProtocolError(f"array shape {shape!r} is not a list of non-negative integers.")
    if not isinstance(data, bytes):
        raise ProtocolError(f"array data must be bytes, got {type(data).__name__}.")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if expected != len(data):
        raise ProtocolError(f"array of dtype {dtype} and shape {shape} needs {expected} bytes, got {len(data)}.")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot send a {type(value).__name__} over the marl_arena protocol")


def _object_hook(value: dict[str, Any]) -> Any:
    return decode_array(value) if value.get(_ARRAY_MARK) is True else value


def _reject_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"msgpack extension type {code} is not part of the protocol.")


# ---------------------------------------------------------------------- messages
def encode_message(message: dict[str, Any], max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """One frame (header and body) for ``message``; ``version`` is added."""
    body = msgpack.packb({**message, "version": PROTOCOL_VERSION}, default=_default, use_bin_type=True)
    if len(body) > max_message_bytes:
        raise ProtocolError(f"a {message.get('type')!r} message of {len(body)} bytes exceeds the "
                            f"{max_message_bytes}-byte limit.")
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode and check one frame body: a map with a known type, this version and its required fields."""
    try:
        message = msgpack.unpackb(body, raw=False, object_hook=_object_hook, ext_hook=_reject_ext,
                                  strict_map_key=True)
    except ProtocolError:
        raise
    except Exception as error:  # msgpack raises many kinds (ExtraData, FormatError, StackError, ValueError ...)
        raise ProtocolError(f"the body is not valid msgpack: {type(error).__name__}: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a msgpack map, got {type(message).__name__}.")
    kind = message.get("type")
    if kind not in MESSAGE_FIELDS:
        raise ProtocolError(f"unknown message type {kind!r}; known are {sorted(MESSAGE_FIELDS)}.")
    if message.get("version") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {message.get('version')!r} is not supported; this side speaks "
                            f"version {PROTOCOL_VERSION}.")
    for name, expected in MESSAGE_FIELDS[kind].items():
        value = message.get(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ProtocolError(f"{kind!r} message field {name!r} must be {_type_name(expected)}, "
                                f"got {type(value).__name__}.")
    return message


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


# ---------------------------------------------------------------------- sockets
def send_message(sock: socket.socket, message: dict[str, Any],
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
    sock.sendall(encode_message(message, max_message_bytes))


def recv_message(sock: socket.socket, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Read one frame; ``ConnectionClosed`` on a clean close between frames, ``ProtocolError`` otherwise."""
    header = _recv_exactly(sock, _HEADER.size, allow_clean_close=True)
    (length,) = _HEADER.unpack(header)
    if length > max_message_bytes:
        raise ProtocolError(f"the frame header announces {length} bytes, over the {max_message_bytes}-byte limit.")
    return decode_body(_recv_exactly(sock, length, allow_clean_close=False))


def _recv_exactly(sock: socket.socket, size: int, allow_clean_close: bool) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            if allow_clean_close and not chunks:
                raise ConnectionClosed("the peer closed the connection")
            raise ProtocolError(f"the connection closed inside a frame: {len(chunks)} of {size} bytes arrived.")
        chunks += chunk
    return bytes(chunks)


# ---------------------------------------------------------------------- authentication
def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def auth_digest(token: str, nonce: bytes) -> bytes:
    """HMAC-SHA256 of the server's nonce under the shared token: proves the token without sending it."""
    return hmac.new(token.encode("utf-8"), nonce, hashlib.sha256).digest()


def digest_matches(token: str, nonce: bytes, digest: bytes) -> bool:
    return hmac.compare_digest(auth_digest(token, nonce), digest)


def resolve_token(token: str | None = None, token_file: str | None = None) -> str:
    """The shared token: given directly, read from ``token_file``, or from ``$MARL_ARENA_TOKEN``."""
    if token is None and token_file is not None:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    if token is None:
        token = os.environ.get(TOKEN_ENV_VAR)
    if not token:
        raise ValueError(f"No auth token: pass token= or token_file=, or set ${TOKEN_ENV_VAR}. Clients and the "
                         "server must share it.")
    return token


# ---------------------------------------------------------------------- spaces as plain data
def describe_space(space: Any) -> dict[str, Any]:
    """A gymnasium Discrete or Box space as plain data (the client needs no gymnasium)."""
    name = type(space).__name__
    if name == "Discrete":
        return {"kind": "discrete", "n": int(space.n), "start": int(space.start)}
    if name == "Box":
        return {"kind": "box", "shape": list(space.shape), "dtype": np.dtype(space.dtype).name,
                "low": np.asarray(space.low), "high": np.asarray(space.high)}
    raise ProtocolError(f"space {space} cannot be described; external runners support Discrete and Box spaces.")
