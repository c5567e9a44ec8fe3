"""The client side of external simulation: act in your own env, send finished episodes to a server.

Depends on numpy and msgpack only (onnxruntime too, imported when local inference starts),
so it runs inside a game engine's Python, a robot or a slim container without torch.

Two ways to act:

* ``inference="local"``: the policy runs here as an ONNX model; the client fetches a new
  model whenever the server's weights version moves (every reply names it).
* ``inference="server"``: every ``act`` is a ``get_action`` round trip; nothing to fetch.

Either way the client records obs, actions, rewards and the behaviour policy's
``action_logp``/``action_dist_inputs``, and sends the episode when it ends. A broken
connection is reopened with exponential backoff; an episode not yet acknowledged is kept
and sent again after the reconnect. Every episode carries an id unique to this client, so
a server that had received it before the break acknowledges it again without counting it
twice. Observations must be flat vectors, as the server's module reads them.

Multi-agent games whose seats the server assigns (a league drawing opponents) call
``start_episode(agents)`` first: it returns the module of each agent, and ``act`` then asks
the server for that module's action (``inference="server"``).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import socket
import time
from typing import Any

import numpy as np

from marl_arena.external import protocol

logger = logging.getLogger(__name__)

# The library's defaults (marl_arena.env / marl_arena.core), repeated: importing those would pull in torch.
DEFAULT_AGENT_ID = "default_agent"
DEFAULT_MODULE_ID = "default_policy"
_LOG_STD_MIN, _LOG_STD_MAX = -20.0, 2.0


class ServerError(RuntimeError):
    """The server answered with an error message (it closes the connection after one)."""


class _AgentRecord:
    """One agent's lists in the running episode."""

    def __init__(self):
        self.obs: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.logp: list[float] = []
        self.dist_inputs: list[np.ndarray] = []

    def to_message(self, agent_id: Any, final_obs: np.ndarray | None, final_mask: np.ndarray | None,
                   terminated: bool, truncated: bool) -> dict[str, Any]:
        obs = self.obs + ([] if final_obs is None else [final_obs])
        entry = {"agent_id": agent_id, "obs": np.stack(obs), "actions": np.stack(self.actions),
                 "rewards": np.asarray(self.rewards, dtype=np.float32), "terminated": bool(terminated),
                 "truncated": bool(truncated), "action_logp": np.asarray(self.logp, dtype=np.float32),
                 "action_dist_inputs": np.stack(self.dist_inputs)}
        if self.masks:
            masks = self.masks + ([] if final_mask is None or final_obs is None else [final_mask])
            entry["action_mask"] = np.stack(masks)
        return entry


class Client:
    """Connects to a ``TcpServerEnvRunner``, acts, and ships finished episodes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 token_file: str | None = None, inference: str = "local", module_id: str | None = DEFAULT_MODULE_ID,
                 explore: bool = True, action_masks: bool = False, seed: int | None = None, name: str = "client",
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES, timeout_s: float = 60.0,
                 max_backoff_s: float = 10.0, max_reconnect_s: float | None = 120.0):
        if inference not in ("local", "server"):
            raise ValueError(f"inference={inference!r} is not allowed; use 'local' (ONNX here) or 'server'.")
        self.host, self.port = host, port
        self._token = protocol.resolve_token(token, token_file)
        self.inference = inference
        self._requested_module_id = module_id
        self.module_id = module_id
        """The module acted with, unless ``start_episode`` says otherwise (None asks the server's first module)."""
        self.explore = explore
        self.action_masks = action_masks
        self.name = name
        self._limit = max_message_bytes
        self._timeout_s = timeout_s
        self._max_backoff_s = max_backoff_s
        self._max_reconnect_s = max_reconnect_s
        self._rng = np.random.default_rng(seed)
        self._sock: socket.socket | None = None
        self.server_weights_version = -1
        self.model_version = -1
        """The weights version of the local ONNX model (-1: none yet)."""
        self.action_space: dict[str, Any] = {}
        self._agents: dict[Any, _AgentRecord] = {}
        self._episode_version: int | None = None  # the oldest weights version acted with in this episode
        self._unsent: list[dict[str, Any]] = []
        self._session = None
        self._client_id = os.urandom(8).hex()  # episode ids: this id and a counter, unique across restarts
        self._episode_numbers = itertools.count()
        self._plan_id: str | None = None
        self._plan: dict[Any, str] = {}
        self.num_reconnects = 0
        self.num_duplicates = 0
        """Episodes the server had already received (sent again after a reconnect)."""
        self.connect()

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Connect and authenticate, retrying with exponential backoff up to ``max_reconnect_s``."""
        delay, start = 0.1, time.monotonic()
        while True:
            try:
                self._open()
                return
            except (OSError, protocol.ProtocolError) as error:
                self._close_socket()
                waited = time.monotonic() - start
                if self._max_reconnect_s is not None and waited >= self._max_reconnect_s:
                    raise ConnectionError(f"could not reach the server at {self.host}:{self.port} within "
                                          f"{self._max_reconnect_s} s: {error}") from error
                logger.info("server %s:%d unreachable (%s); retrying in %.1f s", self.host, self.port, error, delay)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(2 * delay, self._max_backoff_s)

    def _open(self) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=self._timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        challenge = self._exchange({"type": "hello", "client": self.name})
        if challenge["type"] != "challenge":
            raise protocol.ProtocolError(f"expected a challenge, got {challenge['type']!r}.")
        if self._exchange({"type": "auth", "hmac": protocol.auth_digest(self._token, challenge["nonce"])})["type"] != "auth_ok":
            raise protocol.ProtocolError("the server did not confirm authentication.")
        request = {"type": "get_config"}
        if self._requested_module_id is not None:
            request["module_id"] = self._requested_module_id
        config = self._exchange(request)
        self.module_id = config["module_id"]
        self.action_space = config["action_space"]
        self.server_weights_version = config["weights_version"]
        if self.inference == "local":  # always: a restarted server may reuse version numbers for new weights
            self._load_model()

    def _exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        """One request and its reply on the open socket; a server error raises ``ServerError``."""
        if self._sock is None:
            raise ConnectionError("not connected")
        protocol.send_message(self._sock, message, self._limit)
        reply = protocol.recv_message(self._sock, self._limit)
        if reply["type"] == "error":
            self._close_socket()
            raise ServerError(reply["message"])
        return reply

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        """``_exchange``, reconnecting once the connection breaks and asking again."""
        while True:
            try:
                return self._exchange(message)
            except (OSError, protocol.ProtocolError) as error:
                logger.warning("connection to %s:%d broke (%s: %s); reconnecting", self.host, self.port,
                               type(error).__name__, error)
                self._close_socket()
                self.num_reconnects += 1
                self.connect()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Send any finished episodes still unsent, then close the connection."""
        if self._unsent:
            self._flush()
        self._close_socket()

    # ------------------------------------------------------------------ weights
    def _load_model(self) -> None:
        import onnxruntime

        reply = self._exchange({"type": "get_weights", "module_id": self.module_id, "format": "onnx",
                                "with_mask": self.action_masks})
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(reply["onnx"], options, providers=["CPUExecutionProvider"])
        self.model_version = reply["weights_version"]
        logger.debug("loaded the ONNX model of weights version %d", self.model_version)

    def _note_version(self, version: int) -> None:
        self.server_weights_version = version
        if self.inference == "local" and version != self.model_version:
            try:
                self._load_model()
            except (OSError, protocol.ProtocolError):
                self._close_socket()  # the next request reconnects, and reconnecting loads the model
                self.connect()

    # ------------------------------------------------------------------ acting
    def start_episode(self, agents: list) -> dict[Any, str]:
        """Ask the server which module plays each of ``agents`` in the episode starting now.

        The server calls its policy mapping (a league draws the opponent here); ``act`` then
        acts with each agent's module, and the episode is attributed by this plan when it
        arrives. Needs ``inference="server"`` unless every agent maps to ``module_id``.
        """
        if self._agents:
            raise RuntimeError("start_episode() called while an episode runs; end_episode() it first.")
        reply = self._request({"type": "start_episode", "agents": list(agents)})
        self._plan_id = reply["episode_id"]
        self._plan = {agent: module for agent, module in reply["modules"]}
        return dict(self._plan)

    def act(self, obs: Any, mask: Any = None, agent_id: Any = DEFAULT_AGENT_ID) -> Any:
        """The action of ``agent_id`` on ``obs`` (a flat vector); recorded for the episode."""
        obs = np.asarray(obs, dtype=np.float32).reshape(-1)
        mask = None if mask is None else np.asarray(mask, dtype=np.float32).reshape(-1)
        module_id = self._plan.get(agent_id, self.module_id)
        if self.inference == "local" and module_id != self.module_id:
            raise ValueError(f"agent {agent_id!r} plays module {module_id!r}, but local inference holds only "
                             f"{self.module_id!r}; use inference='server' for episodes with several modules.")
        if self.inference == "server":
            message = {"type": "get_action", "module_id": module_id, "obs": obs[None], "explore": self.explore}
            if mask is not None:
                message["action_mask"] = mask[None]
            reply = self._request(message)
            raw, logp, dist_inputs = reply["actions"][0], float(reply["action_logp"][0]), reply["action_dist_inputs"][0]
            version = reply["weights_version"]
        else:
            raw, logp, dist_inputs = self._act_locally(obs, mask)
            version = self.model_version
        self._episode_version = version if self._episode_version is None else min(self._episode_version, version)
        record = self._agents.setdefault(agent_id, _AgentRecord())
        if len(record.rewards) < len(record.actions):
            record.rewards.append(0.0)  # no reward was logged for the previous action
        record.obs.append(obs)
        if mask is not None:
            record.masks.append(mask)
        record.actions.append(np.asarray(raw))
        record.logp.append(logp)
        record.dist_inputs.append(np.asarray(dist_inputs, dtype=np.float32))
        return self._env_action(raw)

    def _act_locally(self, obs: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, float, np.ndarray]:
        feeds = {"obs": obs[None]}
        if self.action_masks:
            feeds["action_mask"] = (np.ones(self.action_space["n"], np.float32) if mask is None else mask)[None]
        dist_inputs = self._session.run(None, feeds)[0][0]
        if self.action_space["kind"] == "discrete":
            logits = dist_inputs.astype(np.float64)
            log_probs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            if self.explore:
                action = int(self._rng.choice(len(log_probs), p=np.exp(log_probs) / np.exp(log_probs).sum()))
            else:
                action = int(np.argmax(log_probs))
            return np.int64(action), float(log_probs[action]), dist_inputs
        mean, log_std = np.split(dist_inputs.astype(np.float64), 2)
        log_std = np.clip(log_std, _LOG_STD_MIN, _LOG_STD_MAX)
        action = mean + np.exp(log_std) * self._rng.standard_normal(mean.shape) if self.explore else mean
        logp = float(np.sum(-0.5 * ((action - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)))
        return action.astype(np.float32), logp, dist_inputs

    def _env_action(self, raw: np.ndarray) -> Any:
        """What the env takes: an int for Discrete, the action clipped to a Box's bounds."""
        if self.action_space["kind"] == "discrete":
            return int(raw) + self.action_space.get("start", 0)
        space = self.action_space
        return np.clip(raw, space["low"].reshape(-1), space["high"].reshape(-1)).reshape(space["shape"])

    def log_returns(self, reward: float, agent_id: Any = DEFAULT_AGENT_ID) -> None:
        """Credit ``reward`` to ``agent_id``'s last action (rewards between two actions add up)."""
        record = self._agents.get(agent_id)
        if record is None or not record.actions:
            return  # before the agent's first action: no transition to credit
        if len(record.rewards) < len(record.actions):
            record.rewards.append(0.0)
        record.rewards[-1] += float(reward)

    def end_episode(self, final_obs: Any = None, terminated: Any = True, truncated: Any = False,
                    final_mask: Any = None, env_steps: int | None = None) -> None:
        """Finish the episode and send it. Multi-agent: pass dicts keyed by agent id for
        ``final_obs``/``terminated``/``truncated``/``final_mask``, and ``env_steps`` for turn-based games."""
        def per_agent(value: Any, agent_id: Any) -> Any:
            return value.get(agent_id) if isinstance(value, dict) else value

        entries = []
        for agent_id, record in self._agents.items():
            if not record.actions:
                continue
            while len(record.rewards) < len(record.actions):
                record.rewards.append(0.0)
            obs = per_agent(final_obs, agent_id)
            mask = per_agent(final_mask, agent_id)
            entries.append(record.to_message(
                agent_id, None if obs is None else np.asarray(obs, dtype=np.float32).reshape(-1),
                None if mask is None else np.asarray(mask, dtype=np.float32).reshape(-1),
                bool(per_agent(terminated, agent_id)), bool(per_agent(truncated, agent_id))))
        self._agents = {}
        episode: dict[str, Any] = {"agents": entries, "weights_version": self._episode_version,
                                   "episode_id": self._plan_id or f"{self._client_id}-{next(self._episode_numbers)}"}
        if self._plan_id is not None:
            episode["planned"] = True
        self._episode_version = None
        self._plan_id, self._plan = None, {}
        if not entries:
            return
        if env_steps is not None:
            episode["env_steps"] = int(env_steps)
        self._unsent.append(episode)
        self._flush()

    def _flush(self) -> None:
        """Send every unsent episode; after a broken connection they go again on the new one."""
        while self._unsent:
            try:
                reply = self._exchange({"type": "episodes", "episodes": self._unsent})
            except ServerError:
                self._unsent = []  # the server rejected them; sending them again cannot help
                raise
            except (OSError, protocol.ProtocolError) as error:
                logger.warning("connection broke while sending (%s); keeping %d unsent episode(s) across a "
                               "reconnect", error, len(self._unsent))
                self._close_socket()
                self.num_reconnects += 1
                self.connect()
                continue
            self._unsent = []
            self.num_duplicates += reply.get("num_duplicates", 0)
            self._note_version(reply["weights_version"])

    def run_episode(self, env: Any, seed: int | None = None) -> float:
        """Play one episode of a gymnasium env with this client and send it; returns its return."""
        obs, _ = env.reset(seed=seed)
        total, terminated, truncated = 0.0, False, False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, _ = env.step(self.act(obs))
            self.log_returns(reward)
            total += float(reward)
        self.end_episode(final_obs=obs, terminated=terminated, truncated=truncated)
        return total
