"""TcpServerEnvRunner: an EnvRunner whose episodes come from external simulators over TCP.

Clients step their own env (a game engine, a robot, a process in another language) and
speak the protocol of ``marl_arena.external.protocol``. The runner listens on
``env_config["host"]`` (loopback unless told) and ``env_config["port"]`` (0: an ephemeral
port, see ``port``), authenticates every connection with an HMAC challenge on the shared
token, and serves each client on its own thread. Finished episodes are checked and turned
into the segments a local EnvRunner makes (``EpisodeConverter``) as they arrive; ``sample``
takes whole episodes off that queue until it has enough env steps.

Clients keep acting while the learner learns, so episodes queue up. An episode played with
weights more than ``max_weights_lag`` versions older than the current ones is dropped
(``num_stale_episodes``): an on-policy learner gains nothing from it, and the queue stays
bounded however fast the clients are.

Only finished episodes travel, so a client that dies mid-episode loses that episode and
nothing else. A connection that breaks the protocol is closed and logged; the others go on.

Settings, from ``env_config`` (RLlib's external-env examples put the port there too):
``host``, ``port``, ``token`` or ``token_file`` (else ``$MARL_ARENA_TOKEN``),
``max_message_bytes``, ``auth_timeout_s``, ``max_weights_lag``.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.onnx_export import module_onnx_bytes
from marl_arena.core.rl_module import DEFAULT_MODULE_ID, MultiRLModuleSpec
from marl_arena.external import protocol
from marl_arena.external.episodes import ConvertedEpisode, EpisodeConverter, EpisodeError
from marl_arena.runners.env_runner import SampleResult, concat_segments

logger = logging.getLogger(__name__)

# Handshake frames are tiny; an unauthenticated peer may not make the server buffer more.
_HANDSHAKE_MAX_BYTES = 64 * 1024


@dataclasses.dataclass
class ServerSettings:
    """Where the server listens and how it checks clients, read from ``env_config``."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str = ""
    max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES
    auth_timeout_s: float = 10.0
    max_weights_lag: int = 1

    @classmethod
    def from_env_config(cls, env_config: dict) -> "ServerSettings":
        known = {"host", "port", "token", "token_file", "max_message_bytes", "auth_timeout_s", "max_weights_lag"}
        unknown = sorted(set(env_config) - known)
        if unknown:
            raise ValueError(f"env_config keys {unknown} mean nothing to TcpServerEnvRunner; it reads {sorted(known)}.")
        settings = cls(host=env_config.get("host", cls.host), port=env_config.get("port", cls.port),
                       token=protocol.resolve_token(env_config.get("token"), env_config.get("token_file")),
                       max_message_bytes=env_config.get("max_message_bytes", cls.max_message_bytes),
                       auth_timeout_s=env_config.get("auth_timeout_s", cls.auth_timeout_s),
                       max_weights_lag=env_config.get("max_weights_lag", cls.max_weights_lag))
        if not isinstance(settings.host, str):
            raise ValueError(f"env_config['host']={settings.host!r} is not allowed: it must be a host name or address.")
        if not isinstance(settings.port, int) or not 0 <= settings.port <= 65535:
            raise ValueError(f"env_config['port']={settings.port!r} is not allowed: it must be 0 (any free port) "
                             "to 65535.")
        if not isinstance(settings.max_message_bytes, int) or settings.max_message_bytes < 1024:
            raise ValueError(f"env_config['max_message_bytes']={settings.max_message_bytes!r} is not allowed: it "
                             "must be an integer >= 1024.")
        if not isinstance(settings.auth_timeout_s, (int, float)) or settings.auth_timeout_s <= 0:
            raise ValueError(f"env_config['auth_timeout_s']={settings.auth_timeout_s!r} is not allowed: it must "
                             "be a number > 0.")
        if not isinstance(settings.max_weights_lag, int) or settings.max_weights_lag < 0:
            raise ValueError(f"env_config['max_weights_lag']={settings.max_weights_lag!r} is not allowed: it "
                             "must be an integer >= 0.")
        return settings


class TcpServerEnvRunner:
    """Serves external clients and hands their finished episodes to the learner as samples."""

    def __init__(self, config, module_spec: MultiRLModuleSpec, worker_index: int = 0, num_workers: int = 0,
                 env_creator: Callable[[dict], Any] | None = None):
        self.config = config
        self.worker_index = worker_index
        self._settings = ServerSettings.from_env_config(dict(config.env_config))
        self.module = module_spec.build()
        self.module.eval()
        self._module_lock = threading.Lock()
        modules_to_train = {mid for mid in self.module.keys() if config.is_policy_to_train(mid)}
        self._converter = EpisodeConverter(config, self.module, self._module_lock, modules_to_train)
        self._weights_version = 0
        self._onnx_cache: dict[tuple[str, bool], tuple[int, bytes]] = {}
        self._queue: deque[ConvertedEpisode] = deque()
        self._queued_steps = 0
        self._arrived = threading.Condition()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        self._stopping = False
        self.num_refused = 0
        """Connections closed for a wrong token or a protocol error."""
        self.num_stale_episodes = 0
        """Episodes dropped for weights older than ``max_weights_lag`` versions."""
        self._listener = socket.create_server((self._settings.host, self._settings.port))
        self._listener.settimeout(0.5)
        self._accept_thread = threading.Thread(target=self._accept_loop, name="marl-arena-tcp-accept", daemon=True)
        self._accept_thread.start()
        logger.info("TcpServerEnvRunner listening on %s:%d", self._settings.host, self.port)

    @property
    def port(self) -> int:
        """The bound port (the OS's choice when ``env_config['port']`` is 0)."""
        return self._listener.getsockname()[1]

    @property
    def num_clients(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    # ------------------------------------------------------------------ connections
    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, address = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if not self._stopping:
                    logger.exception("the listening socket failed; no new clients can connect")
                return
            thread = threading.Thread(target=self._serve, args=(conn, address), daemon=True,
                                      name=f"marl-arena-tcp-{address[0]}:{address[1]}")
            with self._connections_lock:
                self._connections[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket, address: tuple) -> None:
        peer = f"{address[0]}:{address[1]}"
        limit = self._settings.max_message_bytes
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self._settings.auth_timeout_s)
            if not self._authenticate(conn, peer):
                return
            conn.settimeout(None)
            while not self._stopping:
                reply = self._handle(protocol.recv_message(conn, limit))
                protocol.send_message(conn, reply, limit)
        except protocol.ConnectionClosed:
            logger.debug("client %s disconnected", peer)
        except (protocol.ProtocolError, EpisodeError) as error:
            self.num_refused += 1
            logger.warning("closing the connection of client %s: %s", peer, error)
            self._try_send(conn, {"type": "error", "message": str(error)})
        except OSError as error:  # reset, timed out, or closed by stop()
            if not self._stopping:
                logger.info("client %s dropped: %s: %s", peer, type(error).__name__, error)
        finally:
            conn.close()
            with self._connections_lock:
                self._connections.pop(conn, None)

    def _authenticate(self, conn: socket.socket, peer: str) -> bool:
        limit = min(self._settings.max_message_bytes, _HANDSHAKE_MAX_BYTES)
        hello = protocol.recv_message(conn, limit)
        if hello["type"] != "hello":
            raise protocol.ProtocolError(f"expected 'hello' first, got {hello['type']!r}.")
        nonce = protocol.new_nonce()
        protocol.send_message(conn, {"type": "challenge", "nonce": nonce}, limit)
        answer = protocol.recv_message(conn, limit)
        if answer["type"] != "auth":
            raise protocol.ProtocolError(f"expected 'auth' after the challenge, got {answer['type']!r}.")
        if not protocol.digest_matches(self._settings.token, nonce, answer["hmac"]):
            self.num_refused += 1
            logger.warning("refused client %s (%r): wrong token", peer, hello["client"])
            self._try_send(conn, {"type": "error", "message": "authentication failed: wrong token"})
            return False
        protocol.send_message(conn, {"type": "auth_ok"}, limit)
        logger.info("client %s (%r) authenticated", peer, hello["client"])
        return True

    @staticmethod
    def _try_send(conn: socket.socket, message: dict) -> None:
        try:
            protocol.send_message(conn, message)
        except OSError:
            pass  # the peer is already gone; the reason was logged by the caller

    def _handle(self, message: dict) -> dict:
        kind = message["type"]
        if kind == "episodes":
            return self._receive_episodes(message["episodes"])
        if kind == "get_action":
            return self._act(message)
        if kind == "get_weights":
            return self._weights_message(message)
        if kind == "get_config":
            return self._config_message(message.get("module_id", DEFAULT_MODULE_ID))
        if kind == "ping":
            return {"type": "pong", "weights_version": self._weights_version}
        raise protocol.ProtocolError(f"a client may not send {kind!r} messages after authenticating.")

    # ------------------------------------------------------------------ requests
    def _rl_module(self, module_id: Any):
        if not isinstance(module_id, str) or module_id not in self.module:
            raise EpisodeError(f"unknown module_id {module_id!r}; this server holds {self.module.keys()}.")
        return self.module[module_id]

    def _config_message(self, module_id: Any) -> dict:
        module = self._rl_module(module_id)
        return {"type": "config", "module_id": module_id, "modules": self.module.keys(),
                "observation_space": protocol.describe_space(module.observation_space),
                "action_space": protocol.describe_space(module.action_space),
                "weights_version": self._weights_version, "max_message_bytes": self._settings.max_message_bytes}

    def _act(self, message: dict) -> dict:
        """Server-side inference for clients without a local model."""
        module = self._rl_module(message["module_id"])
        obs = message["obs"].astype(np.float32, copy=False)
        if obs.ndim != 2:
            raise EpisodeError(f"get_action 'obs' must be a 2-d batch of flat observations, got shape {obs.shape}.")
        batch = {Columns.OBS: torch.from_numpy(obs)}
        if message.get("action_mask") is not None:
            batch[Columns.ACTION_MASK] = torch.from_numpy(np.asarray(message["action_mask"], dtype=np.float32))
        try:
            with self._module_lock, torch.inference_mode():
                dist_inputs = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
                dist = module.action_distribution(dist_inputs)
                actions = dist.sample() if message["explore"] else dist.deterministic_sample()
                logp = dist.logp(actions)
                version = self._weights_version
        except (RuntimeError, IndexError) as error:  # shapes that do not fit the module
            raise EpisodeError(f"get_action failed on obs of shape {obs.shape}: {error}") from None
        return {"type": "action", "actions": actions.numpy(), "action_logp": logp.numpy(),
                "action_dist_inputs": dist_inputs.numpy(), "weights_version": version}

    def _weights_message(self, message: dict) -> dict:
        module_id, fmt = message["module_id"], message["format"]
        module = self._rl_module(module_id)
        if fmt == "numpy":
            with self._module_lock:
                arrays = {name: t.detach().numpy().copy() for name, t in module.state_dict().items()}
                version = self._weights_version
            return {"type": "weights", "module_id": module_id, "weights_version": version, "format": fmt,
                    "arrays": arrays}
        if fmt == "onnx":
            version, model = self._onnx(module_id, bool(message.get("with_mask", False)))
            return {"type": "weights", "module_id": module_id, "weights_version": version, "format": fmt,
                    "onnx": model}
        raise EpisodeError(f"get_weights format {fmt!r} is unknown; use 'onnx' or 'numpy'.")

    def _onnx(self, module_id: str, with_mask: bool) -> tuple[int, bytes]:
        """The module as ONNX, exported once per weights version."""
        with self._module_lock:
            cached = self._onnx_cache.get((module_id, with_mask))
            if cached is None or cached[0] != self._weights_version:
                cached = (self._weights_version, module_onnx_bytes(self.module[module_id], with_mask))
                self._onnx_cache[(module_id, with_mask)] = cached
        return cached

    def _receive_episodes(self, episodes: list) -> dict:
        converted = [self._converter.convert(episode) for episode in episodes]  # all or none
        with self._arrived:
            for episode in converted:
                if episode.weights_version is None:
                    episode.weights_version = self._weights_version
            self._queue.extend(converted)
            self._queued_steps += sum(c.env_steps for c in converted)
            self._drop_stale()
            self._arrived.notify_all()
        return {"type": "ack", "num_episodes": len(converted), "weights_version": self._weights_version}

    def _drop_stale(self) -> None:
        """Forget queued episodes played with weights more than ``max_weights_lag`` versions old."""
        oldest = self._weights_version - self._settings.max_weights_lag
        fresh = [e for e in self._queue if e.weights_version >= oldest]
        if len(fresh) < len(self._queue):
            self.num_stale_episodes += len(self._queue) - len(fresh)
            logger.debug("dropped %d episodes older than weights version %d", len(self._queue) - len(fresh), oldest)
            self._queue = deque(fresh)
            self._queued_steps = sum(e.env_steps for e in fresh)

    # ------------------------------------------------------------------ EnvRunner API
    def sample(self, num_timesteps: int | None = None, num_episodes: int | None = None,
               explore: bool | None = None) -> SampleResult:
        """Whole client episodes with at least ``num_timesteps`` env steps (or ``num_episodes`` episodes).

        Waits up to ``sample_timeout_s`` (None: no limit); then returns what has arrived, or
        raises ``TimeoutError`` if nothing has. ``explore`` is the clients' choice, not ours.
        """
        if (num_timesteps is None) == (num_episodes is None):
            raise ValueError("TcpServerEnvRunner.sample() needs exactly one of num_timesteps and num_episodes.")
        timeout = self.config.sample_timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout

        def enough() -> bool:
            return (self._queued_steps >= num_timesteps) if num_episodes is None else len(self._queue) >= num_episodes

        with self._arrived:
            while not enough():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._arrived.wait(left)
            if not self._queue:
                raise TimeoutError(
                    f"No external client sent a finished episode within sample_timeout_s={timeout}; "
                    f"{self.num_clients} client(s) connected to {self._settings.host}:{self.port}.")
            if not enough():
                logger.warning("only %d env steps arrived within sample_timeout_s=%s; returning them",
                               self._queued_steps, timeout)
            taken = self._take(num_timesteps, num_episodes)
        segments: dict[str, list[dict[str, np.ndarray]]] = {}
        for episode in taken:
            for module_id, parts in episode.segments.items():
                segments.setdefault(module_id, []).extend(parts)
        batches = {mid: concat_segments(parts) for mid, parts in segments.items()}
        return SampleResult(batches, [e.stats for e in taken], sum(e.env_steps for e in taken),
                            sum(e.agent_steps for e in taken), self._weights_version)

    def _take(self, num_timesteps: int | None, num_episodes: int | None) -> list[ConvertedEpisode]:
        taken: list[ConvertedEpisode] = []
        steps = 0
        while self._queue:
            if num_episodes is not None and len(taken) >= num_episodes:
                break
            if num_timesteps is not None and steps >= num_timesteps:
                break
            episode = self._queue.popleft()
            taken.append(episode)
            steps += episode.env_steps
        self._queued_steps -= steps
        return taken

    def set_weights(self, weights: dict[str, dict[str, Any]], version: int | None = None) -> None:
        """Load module weights; clients see ``version`` in every reply and fetch the new weights."""
        with self._module_lock:
            self.module.set_state(weights)
            if version is not None:
                self._weights_version = version
        with self._arrived:
            self._drop_stale()

    def get_weights(self, module_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        with self._module_lock:
            return self.module.get_state(module_ids)

    def set_policy_mapping_fn(self, policy_mapping_fn: Callable) -> None:
        """Agents of episodes that arrive from now on map with ``policy_mapping_fn``."""
        self.config.policy_mapping_fn = policy_mapping_fn

    def ping(self) -> str:
        return "ok"

    def stop(self) -> None:
        """Stop listening and close every client connection."""
        self._stopping = True
        self._listener.close()
        self._accept_thread.join(timeout=5)
        with self._connections_lock:
            connections = list(self._connections.items())
        for conn, _ in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its thread
        for _, thread in connections:
            thread.join(timeout=5)
