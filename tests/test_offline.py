"""Offline data: runners write finished episodes as Parquet, the reader streams them back as
learner batches, and bad data fails with an error that names the file and the column."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import tiny_ppo
from marl_arena.core import RLModuleSpec
from marl_arena.core.columns import Columns
from marl_arena.offline import EpisodeWriter, ModuleLayout, OfflineDataError, OfflineReader, resolve_paths
from marl_arena.offline import writer as writer_module
from marl_arena_envs.games import OptimalTaker, TakeAway

CARTPOLE = {"default_policy": ModuleLayout(obs_dim=4, num_actions=2, action_dim=None)}
RLLIB_COLUMNS = {"eps_id", "agent_id", "module_id", "obs", "actions", "rewards", "new_obs", "terminateds",
                 "truncateds", "t", "action_logp"}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _read_all(directory) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in resolve_paths(str(directory)))


def _episodes(table: pa.Table) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Rows by (eps_id, agent_id), in file order."""
    data = table.to_pydict()
    groups: dict[tuple[str, str], dict[str, list]] = {}
    for k in range(table.num_rows):
        group = groups.setdefault((data["eps_id"][k], data["agent_id"][k]), {name: [] for name in data})
        for name in data:
            group[name].append(data[name][k])
    return {key: {name: np.asarray(values) for name, values in group.items()} for key, group in groups.items()}


# ---------------------------------------------------------------------- writing
def test_runner_writes_every_finished_episode_once_across_sample_calls(tmp_path):
    """Fragments of 16 steps cut episodes; each finished one is written whole, flags only at its end."""
    algo = tiny_ppo().env_runners(rollout_fragment_length=16).offline_data(output=str(tmp_path)).build_algo()
    runner = algo.env_runner_group.local_runner
    finished = [e for _ in range(12) for e in runner.sample(num_timesteps=16).episodes]
    algo.stop()
    table = _read_all(tmp_path)
    assert RLLIB_COLUMNS <= set(table.column_names)
    episodes = _episodes(table)
    assert sorted(len(e["t"]) for e in episodes.values()) == sorted(e.length for e in finished)
    for rows in episodes.values():
        n = len(rows["t"])
        assert list(rows["t"]) == list(range(n))
        assert not rows["truncateds"][:-1].any() and not rows["terminateds"][:-1].any()
        assert rows["terminateds"][-1] or rows["truncateds"][-1]
        np.testing.assert_array_equal(rows["new_obs"][:-1], rows["obs"][1:])
        assert set(rows["module_id"]) == {"default_policy"}
        assert (rows["action_logp"] <= 0).all()


def test_multi_agent_episodes_keep_one_row_per_agent_step_with_masks(tmp_path):
    """Take-away: both players' moves, the frozen opponent's too, with the mask split from the obs."""
    config = (tiny_ppo(TakeAway)
              .environment(env_config={"pile": 7, "max_take": 3})
              .multi_agent(policies={"learner": None, "bot": RLModuleSpec(module_class=OptimalTaker)},
                           policy_mapping_fn=lambda aid, *a, **k: "learner" if aid == "player_0" else "bot",
                           policies_to_train=["learner"])
              .offline_data(output=str(tmp_path)))
    algo = config.build_algo()
    result = algo.env_runner_group.local_runner.sample(num_episodes=5)
    algo.stop()
    table = _read_all(tmp_path)
    assert "action_mask" in table.column_names
    episodes = _episodes(table)
    assert {agent for _, agent in episodes} == {"player_0", "player_1"}
    for (eps_id, agent), rows in episodes.items():
        assert set(rows["module_id"]) == {"learner" if agent == "player_0" else "bot"}
        assert rows["obs"].shape[1] == 8 and rows["action_mask"].shape[1] == 3
        legal = rows["action_mask"][np.arange(len(rows["actions"])), rows["actions"]]
        assert (legal == 1).all()
        assert rows["terminateds"][-1] and abs(rows["rewards"][-1]) == 1.0
    steps = sum(len(rows["t"]) for rows in episodes.values())
    assert steps == sum(e.length for e in result.episodes)  # one row per move; each game ends on a move


def test_runner_actors_write_their_own_files(tmp_path):
    algo = tiny_ppo().env_runners(num_env_runners=1).offline_data(output=str(tmp_path)).build_algo()
    result = algo.train()
    algo.stop()
    names = [p.name for p in tmp_path.glob("*.parquet")]
    assert names and all(name.startswith("episodes-w1-") for name in names)
    assert len(_episodes(_read_all(tmp_path))) == result["env_runners"]["num_episodes"]


def test_evaluation_episodes_are_not_recorded(tmp_path):
    algo = tiny_ppo().offline_data(output=str(tmp_path)).evaluation(evaluation_duration=2).build_algo()
    algo.evaluate()
    algo.stop()
    assert list(tmp_path.glob("*.parquet")) == []


def test_a_write_killed_midway_leaves_no_file_a_reader_sees(tmp_path, monkeypatch):
    writer = EpisodeWriter(tmp_path)
    segment = _segment(5)
    writer.add_segment("e", 0, "default_policy", segment)
    writer.finish_episode("e")

    def die_midway(table, where):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module.pq, "write_table", die_midway)
    with pytest.raises(KeyboardInterrupt):
        writer.flush()
    assert list(tmp_path.glob("*.parquet")) == []
    with pytest.raises(OfflineDataError, match="matches no Parquet files"):
        resolve_paths(str(tmp_path))


# ---------------------------------------------------------------------- reading
def _segment(n: int, offset: float = 0.0) -> dict[str, np.ndarray]:
    obs = np.arange(n * 4, dtype=np.float32).reshape(n, 4) + offset
    return {Columns.OBS: obs, Columns.NEXT_OBS: obs + 100, Columns.ACTIONS: np.arange(n) % 2,
            Columns.REWARDS: np.ones(n, np.float32), Columns.TERMINATEDS: np.arange(n) == n - 1,
            Columns.TRUNCATEDS: np.zeros(n, bool), Columns.ACTION_LOGP: np.full(n, -0.7, np.float32)}


def _write_episodes(directory, lengths) -> EpisodeWriter:
    writer = EpisodeWriter(directory)
    for k, n in enumerate(lengths):
        writer.add_segment(k, 0, "default_policy", _segment(n, offset=1000 * k))
        writer.finish_episode(k)
        writer.flush()
    return writer


def test_round_trip_with_a_fragment_cut_in_the_middle(tmp_path):
    writer = EpisodeWriter(tmp_path)
    first, second = _segment(3), _segment(4, offset=12)
    first[Columns.TRUNCATEDS][-1] = True  # a rollout fragment's end
    first[Columns.TERMINATEDS][-1] = False
    writer.add_segment(7, "agent", "default_policy", first)
    writer.add_segment(7, "agent", "default_policy", second)
    writer.finish_episode(7)
    writer.flush()
    reader = OfflineReader(str(tmp_path), CARTPOLE, batch_size=7)
    (batch,) = [b["default_policy"] for b in reader.iterate(None)]
    np.testing.assert_array_equal(batch[Columns.OBS], np.concatenate([first[Columns.OBS], second[Columns.OBS]]))
    np.testing.assert_array_equal(batch[Columns.ACTIONS], [0, 1, 0, 0, 1, 0, 1])
    assert batch[Columns.TERMINATEDS].tolist() == [False] * 6 + [True]
    assert not batch[Columns.TRUNCATEDS].any()  # the fragment cut is gone
    assert set(batch) == {Columns.OBS, Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS,
                          Columns.TRUNCATEDS, Columns.ACTION_LOGP}


@pytest.mark.parametrize("materialize", [False, True], ids=["streamed", "materialized"])
def test_reads_stream_in_batches_and_mark_cut_trajectories(tmp_path, materialize):
    """Streamed or materialized (kept blocks sliced locally), a pass yields the same batches."""
    _write_episodes(tmp_path, [30, 45, 25])
    reader = OfflineReader(str(tmp_path), CARTPOLE, batch_size=16, materialize=materialize)
    assert reader.num_rows == 100
    batches = [b["default_policy"] for b in reader.iterate(None)]  # one pass
    assert [len(b[Columns.REWARDS]) for b in batches] == [16] * 6 + [4]
    assert reader.epochs == 1 and reader.rows_read == 100
    for batch in batches:
        # Every batch ends a trajectory segment: terminal or cut (bootstrapped).
        assert batch[Columns.TERMINATEDS][-1] or batch[Columns.TRUNCATEDS][-1]
    assert sum(b[Columns.TERMINATEDS].sum() for b in batches) == 3
    expected = np.concatenate([_segment(n, offset=1000 * k)[Columns.OBS] for k, n in enumerate([30, 45, 25])])
    read = np.concatenate([b[Columns.OBS] for b in batches])
    np.testing.assert_array_equal(np.sort(read[:, 0]), np.sort(expected[:, 0]))  # every row once
    more = list(reader.iterate(9))  # wraps into a second and third pass
    assert len(more) == 9 and reader.epochs == 2


# ---------------------------------------------------------------------- bad data
def _rewrite(path, change):
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _set_column(name, array):
    return lambda table: table.set_column(table.schema.get_field_index(name), name, array)


@pytest.mark.parametrize("change, column", [
    (lambda t: t.drop_columns(["rewards"]), "rewards"),
    (lambda t: _set_column("rewards", pa.array(["1"] * t.num_rows))(t), "rewards"),
    (lambda t: _set_column("terminateds", pa.array(np.zeros(t.num_rows, np.int8)))(t), "terminateds"),
    (lambda t: _set_column("obs", pa.array(np.zeros(t.num_rows, np.float32)))(t), "obs"),
], ids=["missing", "string-rewards", "int-flags", "scalar-obs"])
def test_schema_errors_name_the_file_and_the_column(tmp_path, change, column):
    _write_episodes(tmp_path, [5, 6])
    bad = resolve_paths(str(tmp_path))[1]
    _rewrite(bad, change)
    with pytest.raises(ValueError, match=rf"{bad}.*'{column}'"):
        OfflineReader(str(tmp_path), CARTPOLE, batch_size=8)


@pytest.mark.parametrize("change, column", [
    (lambda t: _set_column("obs", pa.array([[0.0] * 3] * t.num_rows, pa.list_(pa.float32())))(t), "obs"),
    (lambda t: _set_column("actions", pa.array(np.full(t.num_rows, 5)))(t), "actions"),
    (lambda t: _set_column("module_id", pa.array(["stranger"] * t.num_rows))(t), "module_id"),
    (lambda t: _set_column("actions", pa.array(np.zeros(t.num_rows, np.float32)))(t), "actions"),
], ids=["obs-width", "action-range", "unknown-module", "float-discrete-actions"])
def test_row_errors_name_the_file_and_the_column(tmp_path, change, column):
    _write_episodes(tmp_path, [5])
    (bad,) = resolve_paths(str(tmp_path))
    _rewrite(bad, change)
    reader = OfflineReader(str(tmp_path), CARTPOLE, batch_size=8)
    with pytest.raises(ValueError, match=rf"{bad}.*'{column}'"):
        next(reader.iterate(1))


def test_files_that_are_not_parquet_or_disagree_are_named(tmp_path):
    _write_episodes(tmp_path, [5, 6])
    first, second = resolve_paths(str(tmp_path))
    _rewrite(second, lambda t: t.drop_columns(["action_logp"]))
    with pytest.raises(ValueError, match=rf"{first}: has column 'action_logp', which {second} lacks"):
        OfflineReader(str(tmp_path), CARTPOLE, batch_size=8)
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(ValueError, match=rf"{junk}: not a readable Parquet file"):
        OfflineReader(str(junk), CARTPOLE, batch_size=8)


def test_empty_globs_and_missing_paths_are_named(tmp_path):
    with pytest.raises(ValueError, match=rf"{tmp_path}/\*\.parquet: matches no Parquet files"):
        resolve_paths(str(tmp_path / "*.parquet"))
    with pytest.raises(ValueError, match="nowhere: no such file"):
        resolve_paths([str(tmp_path / "nowhere")])


def test_box_actions_round_trip(tmp_path):
    """Continuous actions are vectors in the file and (rows, k) arrays in the batch."""
    writer = EpisodeWriter(tmp_path)
    segment = _segment(4)
    segment[Columns.ACTIONS] = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    writer.add_segment(0, 0, "default_policy", segment)
    writer.finish_episode(0)
    writer.flush()
    layout = ModuleLayout.from_spaces(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-1, 1, (2,)))
    batch = next(OfflineReader(str(tmp_path), {"default_policy": layout}, batch_size=8).iterate(1))["default_policy"]
    np.testing.assert_array_equal(batch[Columns.ACTIONS], segment[Columns.ACTIONS])


# ---------------------------------------------------------------------- RLlib's tabular format
def _rllib_pack(array: np.ndarray) -> str:
    """How RLlib's recorder packs a compressed column's value: base64 of LZ4 of a pickle."""
    import base64
    import pickle

    import lz4.frame

    return base64.b64encode(lz4.frame.compress(pickle.dumps(array))).decode("ascii")


def _rllib_table(segment: dict[str, np.ndarray], packed: bool) -> pa.Table:
    """One episode in the schema RLlib 2.60 writes with offline_data(output_write_episodes=False):
    null ids for a single agent, no ``t``, int32 actions, float64 rewards, and obs either packed
    (its default output_compress_columns) or Ray Data tensor columns (output_compress_columns=[])."""
    from ray.data.extensions import ArrowTensorArray

    n = len(segment[Columns.REWARDS])

    def vectors(rows):
        return pa.array([_rllib_pack(row) for row in rows]) if packed else ArrowTensorArray.from_numpy(rows)

    return pa.table({
        "eps_id": pa.array(["a3f"] * n), "agent_id": pa.nulls(n), "module_id": pa.nulls(n),
        "obs": vectors(segment[Columns.OBS]), "actions": pa.array(segment[Columns.ACTIONS], pa.int32()),
        "rewards": pa.array(segment[Columns.REWARDS], pa.float64()), "new_obs": vectors(segment[Columns.NEXT_OBS]),
        "terminateds": segment[Columns.TERMINATEDS], "truncateds": segment[Columns.TRUNCATEDS],
        "action_dist_inputs": ArrowTensorArray.from_numpy(np.zeros((n, 2), np.float32)),
        "action_logp": pa.array(segment[Columns.ACTION_LOGP]), "weights_seq_no": pa.array(np.zeros(n, np.int64)),
    })


@pytest.mark.parametrize("packed", [True, False], ids=["packed-obs", "tensor-obs"])
def test_reads_what_rllib_records(tmp_path, packed):
    segment = _segment(6, offset=0.5)
    pq.write_table(_rllib_table(segment, packed), tmp_path / "rllib.parquet")
    batch = next(OfflineReader(str(tmp_path), CARTPOLE, batch_size=16).iterate(1))["default_policy"]
    for name in (Columns.OBS, Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS):
        np.testing.assert_array_equal(batch[name], segment[name])
    assert batch[Columns.OBS].dtype == np.float32 and batch[Columns.ACTIONS].dtype == np.int64


def test_rllib_values_that_do_not_unpack_are_refused_naming_file_and_column(tmp_path):
    """A packed value is a pickle; one that names anything but NumPy's array parts is never loaded."""
    import base64
    import os
    import pickle

    import lz4.frame

    table = _rllib_table(_segment(3), packed=True)
    evil = base64.b64encode(lz4.frame.compress(pickle.dumps(os.system))).decode("ascii")
    path = tmp_path / "rllib.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("new_obs"), "new_obs",
                                    pa.array([evil] + table["new_obs"].to_pylist()[1:])), path)
    with pytest.raises(ValueError, match=rf"{path}: column 'new_obs' row 0 .*(posix|os)\.system is not part of"):
        next(OfflineReader(str(path), CARTPOLE, batch_size=8).iterate(1))
    pq.write_table(table.set_column(table.schema.get_field_index("obs"), "obs", pa.array(["no base64!"] * 3)), path)
    with pytest.raises(ValueError, match=rf"{path}: column 'obs' row 0 is a string that is not"):
        next(OfflineReader(str(path), CARTPOLE, batch_size=8).iterate(1))


def test_rllib_episode_recordings_get_a_hint_to_record_tabular(tmp_path):
    path = tmp_path / "episodes.parquet"
    pq.write_table(pa.table({"item": pa.array([b"\x85\xa2id"], pa.binary())}), path)
    with pytest.raises(ValueError, match=rf"{path}: required column 'eps_id' is missing.*output_write_episodes=False"):
        OfflineReader(str(path), CARTPOLE, batch_size=8)


def test_what_ray_data_workers_import_leaves_torch_out():
    """Every worker that reads and casts imports block_cast: torch would add hundreds of MB to each."""
    import subprocess
    import sys

    code = "import sys, marl_arena.offline.block_cast; print(sorted({'torch', 'gymnasium'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
