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
(``num_stale_episodes``): an on-policy learner gains nothing from it. Once the queue holds
the whole next sample (the env steps ``sample`` last asked for), acks wait (backpressure, up
to ``_MAX_HOLD_S``) until ``sample`` takes it or new weights arrive: a client then idles
instead of playing episodes that would go stale, and its CPU goes to the learner.

Only finished episodes travel, so a client that dies mid-episode loses that episode and
nothing else. A connection that breaks the protocol is closed and logged; the others go on.
At most ``max_num_clients`` connections are open at once (authenticated or not, so a flood
of half-open connections cannot pile up threads); one more is answered with an error that
says so, and logged. Every episode carries an id; an id seen before (a client that sent an
episode, lost the connection before the ack, and sends it again) is acknowledged and not
queued twice (``num_duplicate_episodes``).

Multi-agent games whose seats need their modules before the game starts (a league's
opponent draw) ask with ``start_episode``: the policy mapping is called then, once per
agent, and the episode that comes back under that plan's id is attributed by the plan.

Settings, from ``env_config`` (RLlib's external-env examples put the port there too):
``host``, ``port``, ``token`` or ``token_file`` (else ``$MARL_ARENA_TOKEN``),
``max_message_bytes``, ``auth_timeout_s``, ``max_weights_lag``, ``max_num_clients``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import socket
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable

import numpy as np
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.onnx_export import module_onnx_bytes
from marl_arena.core.rl_module import DEFAULT_MODULE_ID, MultiRLModuleSpec, RLModuleSpec
from marl_arena.env.episode import MultiAgentEpisode
from marl_arena.external import protocol
from marl_arena.external.episodes import ConvertedEpisode, EpisodeConverter, EpisodeError
from marl_arena.runners.env_runner import SampleResult, concat_segments, load_weights
from marl_arena.runners.module_specs import map_agent

logger = logging.getLogger(__name__)

# Handshake frames are tiny; an unauthenticated peer may not make the server buffer more.
_HANDSHAKE_MAX_BYTES = 64 * 1024
# Episode ids remembered for de-duplication, and plans of started episodes kept open: both
# bounded, oldest forgotten first (a resend comes within seconds; a plan whose client died stays).
_EPISODE_ID_MEMORY = 100_000
_MAX_OPEN_PLANS = 10_000
# Longest an ack waits while a full sample is queued (see _hold_while_full): well under a client's timeout.
_MAX_HOLD_S = 10.0
# Refusals of connections over max_num_clients answer on short-lived threads; beyond this many
# at once, extra connections are closed without a word.
_MAX_REFUSING = 16


@dataclasses.dataclass
class ServerSettings:
    """Where the server listens and how it checks clients, read from ``env_config``."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str = ""
    max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES
    auth_timeout_s: float = 10.0
    max_weights_lag: int = 1
    max_num_clients: int = 64

    @classmethod
    def from_env_config(cls, env_config: dict) -> "ServerSettings":
        known = {"host", "port", "token", "token_file", "max_message_bytes", "auth_timeout_s", "max_weights_lag",
                 "max_num_clients"}
        unknown = sorted(set(env_config) - known)
        if unknown:
            raise ValueError(f"env_config keys {unknown} mean nothing to TcpServerEnvRunner; it reads {sorted(known)}.")
        settings = cls(host=env_config.get("host", cls.host), port=env_config.get("port", cls.port),
                       token=protocol.resolve_token(env_config.get("token"), env_config.get("token_file")),
                       max_message_bytes=env_config.get("max_message_bytes", cls.max_message_bytes),
                       auth_timeout_s=env_config.get("auth_timeout_s", cls.auth_timeout_s),
                       max_weights_lag=env_config.get("max_weights_lag", cls.max_weights_lag),
                       max_num_clients=env_config.get("max_num_clients", cls.max_num_clients))
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
        if (not isinstance(settings.max_num_clients, int) or isinstance(settings.max_num_clients, bool)
                or settings.max_num_clients < 1):
            raise ValueError(f"env_config['max_num_clients']={settings.max_num_clients!r} is not allowed: it "
                             "must be an integer >= 1.")
        return settings


class TcpServerEnvRunner:
    """Serves external clients and hands their finished episodes to the learner as samples."""

    serves_external_clients = True
    """Has no env of its own: ``Algorithm.evaluate`` evaluates on a local EnvRunner instead."""

    def __init__(self, config, module_spec: MultiRLModuleSpec, worker_index: int = 0, num_workers: int = 0,
                 env_creator: Callable[[dict], Any] | None = None):
        self.config = config
        self.worker_index = worker_index
        self._settings = ServerSettings.from_env_config(dict(config.env_config))
        self.module = module_spec.build()
        self.module.eval()
        stateful = [mid for mid in self.module.keys() if self.module[mid].is_stateful()]
        if stateful:  # neither server-side inference nor the clients' ONNX sessions carry a state yet
            raise ValueError(f"Modules {stateful} have memory (model_config use_lstm=True), which external "
                             "simulators do not carry between steps yet: serve modules without use_lstm.")
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
        self.num_duplicate_episodes = 0
        """Episodes acknowledged but not queued: their id had arrived before (a resend after a reconnect)."""
        self.num_unplanned_episodes = 0
        """Episodes dropped because their ``start_episode`` plan is not here (made by an earlier server)."""
        self.num_over_capacity = 0
        """Connections refused because ``max_num_clients`` were open."""
        self._seen_ids: OrderedDict[str, None] = OrderedDict()  # under self._arrived
        self._plans: OrderedDict[str, dict[Any, str]] = OrderedDict()  # episode id -> agent -> module id
        self._plan_lock = threading.Lock()  # the mapping function may keep state (a league's draw)
        self._plan_prefix = os.urandom(6).hex()
        self._plan_counter = itertools.count()
        self._refusing = 0
        self._wanted_steps: int | None = None  # the env steps sample() last asked for: a full queue holds acks
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
                full = len(self._connections) >= self._settings.max_num_clients
                if not full:
                    self._connections[conn] = thread
            if full:
                self._refuse_over_capacity(conn, address)
            else:
                thread.start()

    def _refuse_over_capacity(self, conn: socket.socket, address: tuple) -> None:
        """Tell a connection beyond ``max_num_clients`` why it is refused, then close it.

        The answer comes after the client's hello (closing with the hello unread would reset
        the connection and lose the message), on a short-lived thread, so that a slow peer
        cannot stall the accept loop.
        """
        self.num_over_capacity += 1
        limit = self._settings.max_num_clients
        logger.warning("refused client %s:%d: %d clients are connected, the most env_config['max_num_clients'] "
                       "allows", address[0], address[1], limit)
        with self._connections_lock:
            busy = self._refusing >= _MAX_REFUSING
            if not busy:
                self._refusing += 1
        if busy:
            conn.close()
            return

        def refuse() -> None:
            try:
                conn.settimeout(min(self._settings.auth_timeout_s, 2.0))
                protocol.recv_message(conn, _HANDSHAKE_MAX_BYTES)
                protocol.send_message(conn, {"type": "error", "message":
                                             f"server full: it serves {limit} clients at once "
                                             f"(env_config['max_num_clients']={limit}); try again later"})
            except (OSError, protocol.ProtocolError):
                pass  # the peer is gone or not a client; either way it is refused
            finally:
                conn.close()
                with self._connections_lock:
                    self._refusing -= 1

        threading.Thread(target=refuse, daemon=True, name="marl-arena-tcp-refuse").start()

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
        if kind == "start_episode":
            return self._plan_episode(message["agents"])
        if kind == "get_action":
            return self._act(message)
        if kind == "get_weights":
            return self._weights_message(message)
        if kind == "get_config":
            return self._config_message(message.get("module_id", self._default_module_id()))
        if kind == "ping":
            return {"type": "pong", "weights_version": self._weights_version}
        raise protocol.ProtocolError(f"a client may not send {kind!r} messages after authenticating.")

    # ------------------------------------------------------------------ requests
    def _default_module_id(self) -> str:
        """The module a client that names none gets: the default one, else the first trained one."""
        ids = self.module.keys()
        if DEFAULT_MODULE_ID in ids:
            return DEFAULT_MODULE_ID
        return next((mid for mid in ids if self.config.is_policy_to_train(mid)), ids[0])

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

    def _plan_episode(self, agents: list) -> dict:
        """Map each agent of an episode about to start, so the client knows which module plays which seat."""
        if not agents or len(agents) > 1024:
            raise EpisodeError(f"start_episode needs 1 to 1024 agent ids, got {len(agents)}.")
        probe = MultiAgentEpisode()
        modules = {}
        with self._plan_lock:
            for agent_id in agents:
                if not isinstance(agent_id, (str, int)) or isinstance(agent_id, bool) or agent_id in modules:
                    raise EpisodeError(f"start_episode agent id {agent_id!r} must be a string or integer, once.")
                try:
                    modules[agent_id] = map_agent(self.config, agent_id, probe)
                except ValueError as error:
                    raise EpisodeError(str(error)) from None
                probe.add_agent(agent_id, modules[agent_id])
            episode_id = f"{self._plan_prefix}-{next(self._plan_counter)}"
            self._plans[episode_id] = modules
            while len(self._plans) > _MAX_OPEN_PLANS:
                self._plans.popitem(last=False)
        # Pairs, not a map: agent ids may be integers, and protocol maps have string keys only.
        return {"type": "episode_plan", "episode_id": episode_id, "modules": [[a, m] for a, m in modules.items()],
                "weights_version": self._weights_version}

    def _receive_episodes(self, episodes: list) -> dict:
        """Convert (all or none), then queue those whose id is new; a duplicate is acknowledged, not queued."""
        fresh: list[tuple[str | None, dict[Any, str] | None, Any]] = []
        unplanned = duplicates = 0
        for episode in episodes:
            episode_id = episode.get("episode_id") if isinstance(episode, dict) else None
            if episode_id is not None and (not isinstance(episode_id, str)
                                           or not 0 < len(episode_id) <= protocol.MAX_EPISODE_ID_CHARS):
                raise EpisodeError(f"episode_id {episode_id!r} must be a string of 1 to "
                                   f"{protocol.MAX_EPISODE_ID_CHARS} characters.")
            with self._arrived:
                seen = episode_id is not None and episode_id in self._seen_ids
            if seen:  # before the plan: the first copy used it up
                duplicates += 1
                continue
            plan = None
            if isinstance(episode, dict) and episode.get("planned") is True:
                with self._plan_lock:
                    plan = self._plans.get(episode_id)
                if plan is None:
                    unplanned += 1  # acknowledged and dropped: another server's plan, seats unknown here
                    continue
            fresh.append((episode_id, plan, episode))
        converted = [(episode_id, self._converter.convert(episode, plan)) for episode_id, plan, episode in fresh]
        with self._arrived:
            for episode_id, episode in converted:
                if episode_id is not None:
                    if episode_id in self._seen_ids:
                        duplicates += 1
                        continue
                    self._seen_ids[episode_id] = None
                    while len(self._seen_ids) > _EPISODE_ID_MEMORY:
                        self._seen_ids.popitem(last=False)
                if episode.weights_version is None:
                    episode.weights_version = self._weights_version
                self._queue.append(episode)
                self._queued_steps += episode.env_steps
            self.num_duplicate_episodes += duplicates
            self.num_unplanned_episodes += unplanned
            self._drop_stale()
            self._arrived.notify_all()
            self._hold_while_full()
        with self._plan_lock:
            for episode_id, plan, _ in fresh:
                if plan is not None:
                    self._plans.pop(episode_id, None)
        if duplicates or unplanned:
            logger.info("acknowledged %d duplicate episode(s) (sent again after a reconnect) and dropped %d with an "
                        "unknown plan", duplicates, unplanned)
        return {"type": "ack", "num_episodes": len(episodes), "num_duplicates": duplicates,
                "num_unplanned": unplanned, "weights_version": self._weights_version}

    def _hold_while_full(self) -> None:
        """Backpressure: while the queue already holds the whole next sample, keep this client's ack
        (at most ``_MAX_HOLD_S``), so it waits instead of playing episodes that the learner, busy
        now, cannot use before they go stale; CPU it would burn goes to the learner. Called with
        ``_arrived`` held; ``sample``, ``set_weights`` and ``stop`` wake it."""
        deadline = time.monotonic() + _MAX_HOLD_S
        while (self._wanted_steps is not None and self._queued_steps >= self._wanted_steps
               and not self._stopping):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.wait(left)

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
            self._wanted_steps = num_timesteps
            self._arrived.notify_all()  # held acks see the room
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
            self._arrived.notify_all()

    def get_weights(self, module_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        with self._module_lock:
            return self.module.get_state(module_ids)

    def set_policy_mapping_fn(self, policy_mapping_fn: Callable) -> None:
        """Episodes started (``start_episode``) or arriving unplanned from now on map with ``policy_mapping_fn``."""
        with self._plan_lock:
            self.config.policy_mapping_fn = policy_mapping_fn

    def add_module(self, module_id: str, spec: RLModuleSpec, weights: Any = None) -> None:
        """Add a module that acts here but never trains (a league's snapshot or bot): clients' seats
        mapped to it act with it through ``get_action``.

        ``weights``: a state dict, a ``WeightsRef`` or None (the spec's initial weights).
        """
        module = spec.build()
        weights = load_weights(weights)
        if weights is not None:
            module.load_state_dict(weights)
        module.eval()
        with self._module_lock:
            if module_id in self.module:
                self.module.remove_module_by_id(module_id)
            self.module.add_module_by_id(module_id, module)
            self.config.policies[module_id] = spec

    def ping(self) -> str:
        return "ok"

    def stop(self) -> None:
        """Stop listening and close every client connection."""
        self._stopping = True
        with self._arrived:
            self._arrived.notify_all()  # release held acks
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
