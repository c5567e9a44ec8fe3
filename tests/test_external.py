"""External simulators: the wire protocol, the TCP server runner, the client, ONNX export."""

from __future__ import annotations

import logging
import os
import random
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms import PPOConfig
from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.columns import Columns
from marl_arena.external import Client, ServerError, TcpServerEnvRunner, protocol

TOKEN = "test-token"
CARTPOLE = gym.make("CartPole-v1")


def _server_config(batch: int = 200, env_config: dict | None = None, **multi_agent) -> PPOConfig:
    config = (
        PPOConfig()
        .environment(observation_space=CARTPOLE.observation_space, action_space=CARTPOLE.action_space,
                     env_config={"token": TOKEN, **(env_config or {})})
        .env_runners(env_runner_cls=TcpServerEnvRunner, sample_timeout_s=30)
        .training(train_batch_size_per_learner=batch, minibatch_size=min(128, batch), num_epochs=4)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
        .debugging(seed=0)
    )
    return config.multi_agent(**multi_agent) if multi_agent else config


@pytest.fixture
def server():
    algo = _server_config().build_algo()
    yield algo, algo.env_runner_group.local_runner
    algo.stop()


def _play(port: int, episodes: int, inference: str = "server", seed: int = 0) -> Client:
    client = Client(port=port, token=TOKEN, inference=inference, seed=seed)
    env = gym.make("CartPole-v1")
    for k in range(episodes):
        client.run_episode(env, seed=seed * 1000 + k)
    return client


# ---------------------------------------------------------------------- protocol
def test_messages_round_trip_with_arrays_of_every_allowed_dtype():
    arrays = {name: (np.arange(6) % 2).astype(name).reshape(2, 3) for name in protocol.ALLOWED_DTYPES}
    frame = protocol.encode_message({"type": "weights", "module_id": "m", "weights_version": 3, "format": "numpy",
                                     "arrays": arrays, "nested": [{"x": np.float32(1.5)}]})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    message = protocol.decode_body(frame[4:])
    assert message["version"] == protocol.PROTOCOL_VERSION and message["weights_version"] == 3
    for name, array in arrays.items():
        assert message["arrays"][name].dtype == array.dtype and np.array_equal(message["arrays"][name], array)
    assert message["nested"] == [{"x": 1.5}]


@pytest.mark.parametrize("body, complaint", [
    (b"\xc1", "not valid msgpack"),
    (protocol.encode_message({"type": "ping"})[4:] + b"x", "not valid msgpack"),
    (protocol.msgpack.packb([1, 2]), "must be a msgpack map"),
    (protocol.msgpack.packb({"type": "launch", "version": 1}), "unknown message type 'launch'"),
    (protocol.msgpack.packb({"type": "ping", "version": 99}), "protocol version 99"),
    (protocol.msgpack.packb({"type": "auth", "version": 1, "hmac": "text"}), "field 'hmac' must be bytes"),
    (protocol.msgpack.packb({"type": "ping", "version": 1, "a": {"__ndarray__": True, "dtype": "object",
                                                                   "shape": [1], "data": b"x"}}), "dtype 'object'"),
    (protocol.msgpack.packb({"type": "ping", "version": 1, "a": {"__ndarray__": True, "dtype": "float32",
                                                                   "shape": [3], "data": b"x"}}), "needs 12 bytes"),
    (protocol.msgpack.packb({"type": "ping", "version": 1, "a": protocol.msgpack.ExtType(5, b"")}), "extension"),
])
def test_malformed_bodies_raise_protocol_errors_that_say_what_is_wrong(body, complaint):
    with pytest.raises(protocol.ProtocolError, match=complaint):
        protocol.decode_body(body)


def test_arrays_of_other_dtypes_are_never_sent():
    with pytest.raises(protocol.ProtocolError, match="complex128"):
        protocol.encode_message({"type": "ping", "a": np.zeros(2, dtype=complex)})


def test_oversized_header_is_refused_before_the_body_is_read():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(struct.pack(">I", 2**31))  # no body follows: reading one would block
        with pytest.raises(protocol.ProtocolError, match="over the 1024-byte limit"):
            protocol.recv_message(right, max_message_bytes=1024)


def test_a_frame_cut_short_is_a_protocol_error():
    left, right = socket.socketpair()
    with right:
        left.sendall(protocol.encode_message({"type": "ping"})[:-1])
        left.close()
        with pytest.raises(protocol.ProtocolError, match="closed inside a frame"):
            protocol.recv_message(right)


# ---------------------------------------------------------------------- server and client
def test_config_needs_spaces_or_env_and_a_runner_class():
    with pytest.raises(ValueError, match="observation_space"):
        PPOConfig().environment(action_space=CARTPOLE.action_space).validate()
    with pytest.raises(ValueError, match="env_runner_cls"):
        _server_config().env_runners(env_runner_cls="tcp").validate()
    with pytest.raises(ValueError, match="port"):
        _server_config(env_config={"port": 70000}).build_algo()
    with pytest.raises(ValueError, match="mean nothing"):
        _server_config(env_config={"prot": 1}).build_algo()


def test_a_module_with_memory_is_refused_by_name_before_the_server_listens():
    config = _server_config().rl_module(model_config={"fcnet_hiddens": [32, 32], "use_lstm": True})
    with pytest.raises(ValueError, match=r"\['default_policy'\] have memory .*use_lstm"):
        config.build_algo()


def test_server_without_a_token_refuses_to_start(monkeypatch):
    monkeypatch.delenv(protocol.TOKEN_ENV_VAR, raising=False)
    config = _server_config()
    config.env_config = {}
    with pytest.raises(ValueError, match="No auth token"):
        config.build_algo()


def test_server_binds_loopback_on_an_ephemeral_port(server):
    _, runner = server
    assert runner.port > 0
    assert runner._listener.getsockname()[0] == "127.0.0.1"


def test_wrong_token_is_refused_and_logged(server, caplog):
    _, runner = server
    with caplog.at_level(logging.WARNING, logger="marl_arena.external.server"):
        with pytest.raises(ServerError, match="wrong token"):
            Client(port=runner.port, token="not-the-token", inference="server")
    assert runner.num_refused == 1
    assert "wrong token" in caplog.text


def test_samples_have_the_columns_and_dtypes_of_a_local_runner(server):
    algo, runner = server
    _play(runner.port, episodes=3).close()
    external = runner.sample(num_episodes=3)
    local_algo = PPOConfig().environment("CartPole-v1").rl_module(model_config={"fcnet_hiddens": [32, 32]}).build_algo()
    local = local_algo.env_runner_group.local_runner.sample(num_timesteps=50)
    local_algo.stop()
    ext_batch, local_batch = external.batches["default_policy"], local.batches["default_policy"]
    assert {k: (v.dtype, v.shape[1:]) for k, v in ext_batch.items()} == \
           {k: (v.dtype, v.shape[1:]) for k, v in local_batch.items()}
    assert len(external.episodes) == 3 and external.env_steps == len(ext_batch[Columns.OBS])
    assert ext_batch[Columns.TERMINATEDS].sum() + ext_batch[Columns.TRUNCATEDS].sum() == 3
    assert sum(e.episode_return for e in external.episodes) == pytest.approx(ext_batch[Columns.REWARDS].sum())
    # The next observation of every non-final row is the next row's observation.
    ends = ext_batch[Columns.TERMINATEDS] | ext_batch[Columns.TRUNCATEDS]
    assert np.array_equal(ext_batch[Columns.NEXT_OBS][:-1][~ends[:-1]], ext_batch[Columns.OBS][1:][~ends[:-1]])


def test_multi_agent_episodes_go_to_each_agents_module():
    algo = _server_config(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}").build_algo()
    runner = algo.env_runner_group.local_runner
    try:
        client = Client(port=runner.port, token=TOKEN, inference="server", module_id="p0")
        for t in range(4):  # a turn-based game: agents 0 and 1 alternate
            client.act(np.full(4, t, np.float32), agent_id=t % 2)
            client.log_returns(1.0, agent_id=t % 2)
        client.end_episode(final_obs={0: np.zeros(4), 1: np.ones(4)}, terminated=True, env_steps=4)
        client.close()
        result = runner.sample(num_episodes=1)
    finally:
        algo.stop()
    assert set(result.batches) == {"p0", "p1"}
    assert result.batches["p0"][Columns.OBS][:, 0].tolist() == [0.0, 2.0]
    assert result.episodes[0].agent_modules == {0: "p0", 1: "p1"} and result.env_steps == 4


_HEADER = struct.Struct(">I")


def _hostile_frame(rng: random.Random, k: int) -> bytes:
    """Random bytes, an oversized header, a cut-short frame or a garbage body, in turn."""
    kind = k % 4
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    if kind == 1:
        return _HEADER.pack(protocol.DEFAULT_MAX_MESSAGE_BYTES + rng.randint(1, 2**20))
    if kind == 2:
        frame = protocol.encode_message({"type": "hello", "client": "x" * rng.randint(0, 50)})
        return frame[:rng.randint(1, len(frame) - 1)]
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    return _HEADER.pack(len(body)) + body


def _send_hostile(port: int, rng: random.Random, k: int) -> None:
    """One hostile frame on a new connection; every 40th after authenticating, as a compromised client."""
    with socket.create_connection(("127.0.0.1", port)) as raw:
        if k % 40 == 0:
            protocol.send_message(raw, {"type": "hello", "client": "fuzz"})
            challenge = protocol.recv_message(raw)
            protocol.send_message(raw, {"type": "auth", "hmac": protocol.auth_digest(TOKEN, challenge["nonce"])})
            assert protocol.recv_message(raw)["type"] == "auth_ok"
        raw.sendall(_hostile_frame(rng, k))
        if k % 200 == 0:  # the server answers with an error (or just closes) and hangs up
            raw.settimeout(10)
            try:
                raw.shutdown(socket.SHUT_WR)  # a cut-short frame: the server waits for the rest till now
                while raw.recv(4096):
                    pass
            except OSError:
                pass  # the server had already reset the connection


def _wait_for_no_clients(runner, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while runner.num_clients and time.monotonic() < deadline:
        time.sleep(0.05)


def test_malformed_frames_close_their_connection_while_a_good_client_is_served(server):
    """2,000 hostile frames: each closes its own connection; a good client keeps being served."""
    _, runner = server
    rng = random.Random(0)
    good = _play(runner.port, episodes=1)
    for k in range(2000):
        _send_hostile(runner.port, rng, k)
        if k % 250 == 0:
            good.run_episode(gym.make("CartPole-v1"))
    good.close()
    result = runner.sample(num_episodes=9)
    assert len(result.episodes) == 9  # one before the fuzz, one every 250 frames
    _wait_for_no_clients(runner)
    assert runner.num_clients == 0  # every hostile connection was closed
    assert runner.num_refused >= 1500  # cut-short frames to an unauthenticated server may just close


def test_server_memory_stays_flat_under_hostile_frames(server):
    import tracemalloc

    _, runner = server
    rng = random.Random(1)
    logging.getLogger("marl_arena.external.server").setLevel(logging.ERROR)  # log capture would grow
    try:
        for k in range(200):  # warm up: thread stacks, caches, interned strings
            _send_hostile(runner.port, rng, k)
        _wait_for_no_clients(runner)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for k in range(10_000):  # the count: random, truncated and oversized frames
            _send_hostile(runner.port, rng, k)
        _wait_for_no_clients(runner)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        logging.getLogger("marl_arena.external.server").setLevel(logging.NOTSET)
    assert grown < 256 * 1024, f"{grown} bytes more after 10,000 hostile frames"


_KILLED_CLIENT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from marl_arena.external import Client
    client = Client(port=int(sys.argv[1]), token=sys.argv[2], inference="server")
    for t in range(5):
        client.act(np.zeros(4))
        client.log_returns(1.0)
    print("mid-episode", flush=True)
    time.sleep(60)
""")


def test_client_killed_mid_episode_loses_only_that_episode_and_training_goes_on(server):
    algo, runner = server
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, str(runner.port), TOKEN],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "mid-episode"
        assert runner.num_clients == 1
    finally:
        child.kill()
        child.wait()
    stop = threading.Event()
    worker = threading.Thread(target=_play_until, args=(runner.port, stop), daemon=True)
    worker.start()
    try:
        result = algo.train()
    finally:
        stop.set()
        worker.join(timeout=30)
    assert result["env_runners"]["num_env_steps_sampled"] >= 200
    assert min(e.length for e in algo.last_episodes) > 5  # none is the killed client's 5-step fragment


def _play_until(port: int, stop: threading.Event, inference: str = "server", seed: int = 0) -> None:
    client = Client(port=port, token=TOKEN, inference=inference, seed=seed, max_reconnect_s=2)
    env = gym.make("CartPole-v1")
    try:
        while not stop.is_set():
            client.run_episode(env)
        client.close()
    except (ConnectionError, ServerError):
        pass  # the server stopped under us at the end of the test


def test_unsent_episode_is_kept_across_a_reconnect(server, caplog):
    _, runner = server
    client = Client(port=runner.port, token=TOKEN, inference="server")
    for _ in range(3):
        client.act(np.zeros(4))
        client.log_returns(1.0)
    with runner._connections_lock:  # the network drops the connection mid-episode
        for conn in runner._connections:
            conn.shutdown(socket.SHUT_RDWR)
    with caplog.at_level(logging.WARNING, logger="marl_arena.external.client"):
        client.end_episode(final_obs=np.zeros(4), terminated=True)
    assert "keeping 1 unsent episode(s) across a reconnect" in caplog.text
    assert client.num_reconnects == 1
    result = runner.sample(num_episodes=1)
    assert result.episodes[0].episode_return == 3.0
    client.close()


def test_client_reconnects_to_a_restarted_server_and_delivers_its_episode(caplog):
    first = _server_config().build_algo()
    port = first.env_runner_group.local_runner.port
    client = Client(port=port, token=TOKEN, inference="local", max_backoff_s=0.2)
    client.act(np.zeros(4))
    client.log_returns(1.0)
    first.stop()  # the server goes down mid-episode and comes back on the same port
    second = _server_config(env_config={"port": port}).debugging(seed=1).build_algo()  # other weights, same version
    try:
        with caplog.at_level(logging.WARNING, logger="marl_arena.external.client"):
            client.end_episode(final_obs=np.zeros(4), terminated=True)
        assert "across a reconnect" in caplog.text
        result = second.env_runner_group.local_runner.sample(num_episodes=1)
        assert result.episodes[0].episode_return == 1.0
        obs = np.ones((1, 4), np.float32)
        with torch.no_grad():
            expected = second.get_module().forward_inference({Columns.OBS: torch.from_numpy(obs)})
        np.testing.assert_allclose(client._session.run(None, {"obs": obs})[0],  # the new server's model
                                   expected[Columns.ACTION_DIST_INPUTS].numpy(), atol=1e-5)
        client.close()
    finally:
        second.stop()


def test_episodes_played_with_weights_too_old_are_dropped(server):
    _, runner = server
    runner.set_weights(runner.get_weights(), version=5)
    client = Client(port=runner.port, token=TOKEN, inference="server")
    client.act(np.zeros(4))
    client.log_returns(1.0)
    runner.set_weights(runner.get_weights(), version=7)  # two updates while the episode ran; the lag allows one
    client.end_episode(final_obs=np.zeros(4), terminated=True)
    client.run_episode(gym.make("CartPole-v1"))  # played with version 7: kept
    client.close()
    assert runner.num_stale_episodes == 1
    assert all(e.weights_version == 7 for e in runner._queue) and len(runner._queue) == 1


def test_local_client_pulls_the_new_model_when_weights_change(server):
    algo, runner = server
    client = _play(runner.port, episodes=1, inference="local")
    first = client.model_version
    stop = threading.Event()
    worker = threading.Thread(target=_play_until, args=(runner.port, stop), daemon=True)
    worker.start()
    try:
        algo.train()
    finally:
        stop.set()
        worker.join(timeout=30)
    client.run_episode(gym.make("CartPole-v1"))
    assert client.model_version == runner._weights_version > first
    client.close()


def test_client_imports_neither_torch_nor_ray_nor_gymnasium():
    code = textwrap.dedent("""
        import sys
        for name in ("torch", "ray", "gymnasium", "onnxruntime"):
            sys.modules[name] = None  # any import of them now fails
        from marl_arena.external import Client
        inside = sorted(m for m in sys.modules if m.startswith("marl_arena"))
        assert inside == ["marl_arena", "marl_arena.external", "marl_arena.external.client",
                          "marl_arena.external.protocol"], inside
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_ppo_learns_cartpole_from_two_external_clients():
    """One client acts with the ONNX model, one asks the server: the return must go up."""
    algo = _server_config(batch=500).reporting(metrics_num_episodes_for_smoothing=20).build_algo()
    port = algo.env_runner_group.local_runner.port
    stop = threading.Event()
    workers = [threading.Thread(target=_play_until, args=(port, stop, mode, seed), daemon=True)
               for seed, mode in enumerate(("local", "server"))]
    for worker in workers:
        worker.start()
    try:
        returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(20)]
    finally:
        stop.set()
        algo.stop()
        for worker in workers:
            worker.join(timeout=30)
    assert returns[-1] > 2 * returns[0] and returns[-1] > 50, returns



@pytest.mark.parametrize("algo_name", ["dqn", "sac", "appo"])
def test_off_policy_and_asynchronous_algorithms_train_from_an_external_client(algo_name):
    """The server runner is not PPO's alone: replay-based and asynchronous learners train from its episodes."""
    from marl_arena.algorithms.registry import config_for

    config = (config_for(algo_name)
              .environment(observation_space=CARTPOLE.observation_space, action_space=CARTPOLE.action_space,
                           env_config={"token": TOKEN})
              .env_runners(env_runner_cls=TcpServerEnvRunner, sample_timeout_s=30)
              .rl_module(model_config={"fcnet_hiddens": [32, 32]})
              .debugging(seed=0))
    algo = config.build_algo()
    stop = threading.Event()
    worker = threading.Thread(target=_play_until, args=(algo.env_runner_group.local_runner.port, stop), daemon=True)
    worker.start()
    try:
        results = [algo.train() for _ in range(3)]
    finally:
        stop.set()
        algo.stop()
        worker.join(timeout=30)
    assert results[-1]["num_env_steps_sampled_lifetime"] > results[0]["num_env_steps_sampled_lifetime"] > 0
    losses = {k: v for k, v in results[-1]["learners"]["default_policy"].items() if k.endswith("loss")}
    assert losses and all(np.isfinite(v) for v in losses.values()), losses


# ---------------------------------------------------------------------- ONNX export
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_onnx_and_torch_give_the_same_action_probabilities(masked, tmp_path):
    import onnxruntime

    from marl_arena.core.onnx_export import export_module_onnx

    torch.manual_seed(0)
    module = ActorCriticModule(gym.spaces.Box(-1, 1, (6,)), gym.spaces.Discrete(5), {"fcnet_hiddens": [16, 16]})
    path = tmp_path / "policy.onnx"
    export_module_onnx(module, path, with_mask=masked)
    obs = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    feeds = {"obs": obs}
    batch = {Columns.OBS: torch.from_numpy(obs)}
    if masked:
        mask = (np.random.default_rng(1).random((64, 5)) > 0.4).astype(np.float32)
        mask[:, 0] = 1.0
        feeds[Columns.ACTION_MASK] = mask
        batch[Columns.ACTION_MASK] = torch.from_numpy(mask)
    onnx_logits = onnxruntime.InferenceSession(str(path)).run(None, feeds)[0]
    with torch.no_grad():
        torch_logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(onnx_logits), -1).numpy(),
                               torch.softmax(torch_logits, -1).numpy(), atol=1e-5)
    if masked:
        assert (torch.softmax(torch.from_numpy(onnx_logits), -1).numpy()[mask == 0] == 0).all()


def test_algorithm_exports_its_module(tmp_path):
    import onnxruntime

    algo = PPOConfig().environment("CartPole-v1").rl_module(model_config={"fcnet_hiddens": [8]}).build_algo()
    try:
        path = algo.export_onnx("default_policy", str(tmp_path / "cartpole.onnx"))
        obs = np.ones((2, 4), np.float32)
        with torch.no_grad():
            expected = algo.get_module().forward_inference({Columns.OBS: torch.from_numpy(obs)})
    finally:
        algo.stop()
    got = onnxruntime.InferenceSession(path).run(None, {"obs": obs})[0]
    np.testing.assert_allclose(got, expected[Columns.ACTION_DIST_INPUTS].numpy(), atol=1e-5)
    assert os.path.getsize(path) > 0


def test_client_defaults_are_the_librarys():
    from marl_arena.core.rl_module import DEFAULT_MODULE_ID
    from marl_arena.env import DEFAULT_AGENT_ID
    from marl_arena.external import client

    assert (client.DEFAULT_AGENT_ID, client.DEFAULT_MODULE_ID) == (DEFAULT_AGENT_ID, DEFAULT_MODULE_ID)


# ---------------------------------------------------------------------- capacity, duplicates, plans
def test_a_client_over_max_num_clients_is_refused_with_the_reason_and_logged(caplog):
    algo = _server_config(env_config={"max_num_clients": 1}).build_algo()
    runner = algo.env_runner_group.local_runner
    try:
        first = Client(port=runner.port, token=TOKEN, inference="server")
        with caplog.at_level(logging.WARNING, logger="marl_arena.external.server"):
            with pytest.raises(ServerError, match=r"server full.*max_num_clients'\]=1"):
                Client(port=runner.port, token=TOKEN, inference="server")
        assert "max_num_clients" in caplog.text and runner.num_over_capacity == 1
        first.run_episode(gym.make("CartPole-v1"))  # the client inside is still served
        first.close()
        _wait_for_no_clients(runner)
        _play(runner.port, episodes=1).close()  # its seat is free again
        assert len(runner.sample(num_episodes=2).episodes) == 2
    finally:
        algo.stop()
    with pytest.raises(ValueError, match="max_num_clients"):
        _server_config(env_config={"max_num_clients": 0}).build_algo()


def test_an_episode_sent_again_after_a_lost_ack_is_acknowledged_once_and_queued_once(server, caplog):
    _, runner = server
    client = Client(port=runner.port, token=TOKEN, inference="server")
    exchange = client._exchange
    lost = []

    def lose_first_ack(message):
        if message["type"] == "episodes" and not lost:  # the server gets the episode, the ack never arrives
            protocol.send_message(client._sock, message)
            lost.append(message["episodes"][0]["episode_id"])
            time.sleep(0.5)  # let the server queue it before the connection breaks
            raise ConnectionResetError("the ack was lost")
        return exchange(message)

    client._exchange = lose_first_ack
    with caplog.at_level(logging.WARNING, logger="marl_arena.external.client"):
        client.run_episode(gym.make("CartPole-v1"), seed=0)
    assert "keeping 1 unsent episode(s) across a reconnect" in caplog.text and client.num_reconnects == 1
    client.run_episode(gym.make("CartPole-v1"), seed=1)  # a new episode gets a new id
    client.close()
    assert runner.num_duplicate_episodes == 1 and client.num_duplicates == 1
    assert len(runner._queue) == 2 and len(runner.sample(num_episodes=2).episodes) == 2


def test_episode_ids_must_be_short_strings(server):
    _, runner = server
    episode = {"agents": [{"agent_id": "a", "obs": np.zeros((1, 4), np.float32), "actions": np.zeros(1, np.int64),
                           "rewards": np.zeros(1, np.float32), "terminated": True, "truncated": False}],
               "episode_id": "x" * 129}
    with pytest.raises(Exception, match="episode_id"):
        runner._receive_episodes([episode])


def test_started_episodes_are_attributed_by_their_plan_and_unknown_plans_are_dropped():
    algo = _server_config(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}").build_algo()
    runner = algo.env_runner_group.local_runner
    try:
        client = Client(port=runner.port, token=TOKEN, inference="server", module_id="p0")
        assert client.start_episode([0, 1]) == {0: "p0", 1: "p1"}
        runner.set_policy_mapping_fn(lambda aid, *a, **k: "p0")  # a new draw: this episode keeps its plan
        for t in range(4):
            client.act(np.full(4, t, np.float32), agent_id=t % 2)
            client.log_returns(1.0, agent_id=t % 2)
        client.end_episode(final_obs={0: np.zeros(4), 1: np.ones(4)}, terminated=True, env_steps=4)
        result = runner.sample(num_episodes=1)
        assert result.episodes[0].agent_modules == {0: "p0", 1: "p1"} and set(result.batches) == {"p0", "p1"}
        plan = runner._plan_episode([0, 1])  # a planned episode whose ack is lost comes twice: one counts
        episode = {"agents": [{"agent_id": 0, "obs": np.zeros((1, 4), np.float32), "actions": np.zeros(1, np.int64),
                               "rewards": np.ones(1, np.float32), "terminated": True, "truncated": False}],
                   "episode_id": plan["episode_id"], "planned": True}
        assert runner._receive_episodes([episode])["num_duplicates"] == 0
        assert runner._receive_episodes([episode])["num_duplicates"] == 1 and runner.num_unplanned_episodes == 0
        assert len(runner.sample(num_episodes=1).episodes) == 1 and not runner._queue
        client.start_episode([0, 1])
        runner._plans.clear()  # as if the server restarted between the start and the end of the episode
        client.act(np.zeros(4), agent_id=0)
        client.end_episode(final_obs={0: np.zeros(4)}, terminated=True, env_steps=1)
        client.close()
        assert runner.num_unplanned_episodes == 1 and not runner._queue
    finally:
        algo.stop()


# ---------------------------------------------------------------------- evaluation
def test_evaluate_plays_a_local_env_when_training_episodes_come_from_clients():
    algo = _server_config().evaluation(evaluation_duration=3, evaluation_config={"env": "CartPole-v1"}).build_algo()
    try:
        evaluation = algo.evaluate()["env_runners"]
        assert evaluation["num_episodes"] == 3 and evaluation["episode_return_mean"] > 0
        assert algo.eval_env_runner_group.local_runner.__class__.__name__ == "EnvRunner"
    finally:
        algo.stop()
    algo = _server_config().build_algo()
    try:
        with pytest.raises(ValueError, match=r"evaluate\(\) has no env.*evaluation_config=\{'env'"):
            algo.evaluate()
    finally:
        algo.stop()


def test_a_full_queue_holds_the_ack_until_the_learner_takes_a_sample(server):
    """Backpressure: a client waits while the next sample is already queued, instead of playing on."""
    _, runner = server
    _play(runner.port, episodes=1).close()
    runner.sample(num_timesteps=1)  # the learner now wants 1 env step per sample
    client = Client(port=runner.port, token=TOKEN, inference="server")
    worker = threading.Thread(target=client.run_episode, args=(gym.make("CartPole-v1"),), daemon=True)
    worker.start()
    time.sleep(1.0)
    assert worker.is_alive() and len(runner._queue) == 1  # queued: the next sample is there, the ack waits
    started = time.monotonic()
    assert len(runner.sample(num_timesteps=1).episodes) == 1
    worker.join(timeout=5)
    assert not worker.is_alive() and time.monotonic() - started < 2  # the sample let the ack go
    client.close()
