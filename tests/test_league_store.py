"""The league store: resumes after a kill, refuses what it cannot trust, changes nothing when it refuses."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.rl_module import RLModuleSpec
from marl_arena.league.module_specs import load_player_module, space_from_json, space_to_json, spec_from_json, spec_to_json
from marl_arena.league.players import PlayerInfo
from marl_arena.league.store import SNAPSHOT_DIR, LeagueStore, MatchRecord, StoreError

WRITER = textwrap.dedent(
    """
    import sys
    from marl_arena.league.store import LeagueStore, MatchRecord
    store = LeagueStore(sys.argv[1])
    for i in range(100000):
        store.record_match(MatchRecord("game", ("a", "b"), (1.0, -1.0), 5, iteration=i), {"a": 1500.0 + i})
        print(i, flush=True)
    """
)


def _store_with_snapshot(directory):
    store = LeagueStore(directory)
    store.add_player(PlayerInfo("main_0", "main_agent"))
    digest = store.save_snapshot("main_0", {"w": torch.arange(4.0)})
    store.set_player_snapshot("main_0", digest, step=100)
    return store, digest


def test_reopened_store_has_everything(tmp_path):
    store, digest = _store_with_snapshot(tmp_path)
    store.add_player(PlayerInfo("main_0_v1", "snapshot", parent="main_0", created=1.0, frozen=True), snapshot=digest)
    store.record_match(MatchRecord("g", ("main_0", "main_0_v1"), (0.0, 0.0), 9), {"main_0": 1500.0, "main_0_v1": 1500.0})
    store.record_metrics("main_0", 1, {"loss": 0.5})
    store.close()

    again = LeagueStore(tmp_path)
    assert [p.id for p in again.players()] == ["main_0", "main_0_v1"]
    assert again.players()[0].step == 100
    assert again.count_matches() == 1 and again.matches()[0].score == 0.5
    assert again.latest_ratings() == {"main_0": 1500.0, "main_0_v1": 1500.0}
    assert again.metrics("main_0") == [(1, {"loss": 0.5})]
    assert torch.equal(again.load_snapshot(again.player_snapshot("main_0_v1"))["w"], torch.arange(4.0))


def test_snapshot_files_are_named_by_content_hash(tmp_path):
    store, digest = _store_with_snapshot(tmp_path)
    data = (tmp_path / SNAPSHOT_DIR / f"{digest}.pt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest
    assert store.save_snapshot("main_0", {"w": torch.arange(4.0)}) == digest  # same weights, same file


def test_latest_weights_replace_the_previous_file_unless_a_snapshot_keeps_it(tmp_path):
    store = LeagueStore(tmp_path)
    store.add_player(PlayerInfo("main_0", "main_agent"))
    first = store.save_latest_weights("main_0", {"w": torch.zeros(2)})
    frozen = store.save_latest_weights("main_0", {"w": torch.ones(2)})
    assert not (tmp_path / SNAPSHOT_DIR / f"{first}.pt").exists()  # iteration 1's weights are gone
    store.add_player(PlayerInfo("main_0_v1", "snapshot", parent="main_0", frozen=True), snapshot=frozen)
    latest = store.save_latest_weights("main_0", {"w": torch.full((2,), 2.0)})
    assert torch.equal(store.load_snapshot(store.player_snapshot("main_0_v1"))["w"], torch.ones(2))  # kept
    assert torch.equal(store.load_snapshot(store.player_snapshot("main_0"))["w"], torch.full((2,), 2.0))
    assert store.players()[0].step == 0  # the env steps at its last snapshot, which resuming reads
    assert sorted(f.stem for f in (tmp_path / SNAPSHOT_DIR).glob("*.pt")) == sorted([frozen, latest])
    store.verify_all_snapshots()


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    LeagueStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "league.sqlite") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = (tmp_path / "league.sqlite").read_bytes()
    with pytest.raises(StoreError, match="newer marl_arena .schema 99"):
        LeagueStore(tmp_path)
    assert (tmp_path / "league.sqlite").read_bytes() == before


@pytest.mark.parametrize(
    "damage, message",
    [(lambda f: f.unlink(), "is missing"), (lambda f: f.write_bytes(b"tampered"), "is corrupt")],
    ids=["missing", "corrupt"],
)
def test_bad_snapshot_files_are_named(tmp_path, damage, message):
    store, digest = _store_with_snapshot(tmp_path)
    file = tmp_path / SNAPSHOT_DIR / f"{digest}.pt"
    damage(file)
    with pytest.raises(StoreError, match=f"{digest}.pt {message}"):
        store.verify_all_snapshots()


def test_a_failed_transaction_writes_nothing(tmp_path):
    store = LeagueStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            db.execute("INSERT INTO metrics (player_id, iteration, created, data) VALUES ('p', 1, 0, '{}')")
            raise RuntimeError("crash between two writes")
    assert store.metrics("p") == []


def test_read_only_store_never_writes(tmp_path):
    with pytest.raises(StoreError, match="No league store"):
        LeagueStore(tmp_path / "absent", read_only=True)
    LeagueStore(tmp_path).close()
    reader = LeagueStore(tmp_path, read_only=True)
    with pytest.raises(StoreError, match="read-only"):
        reader.record_metrics("p", 1, {})


def test_sigkill_loses_no_acknowledged_match_and_reader_sees_no_lock_errors(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    LeagueStore(tmp_path).close()
    writer = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    reader = LeagueStore(tmp_path, read_only=True)
    acknowledged = -1
    seen = []
    deadline = time.time() + 60
    while acknowledged < 300 and time.time() < deadline:
        acknowledged = int(writer.stdout.readline())
        seen.append(reader.count_matches())  # concurrent reads while the writer commits
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    for line in writer.stdout:  # acknowledgements still in the pipe
        acknowledged = int(line)
    after = LeagueStore(tmp_path)
    count = after.count_matches()
    assert acknowledged + 1 <= count <= acknowledged + 2  # every acknowledged match, at most one more
    assert [m.iteration for m in after.matches()] == list(range(count))  # none twice, none skipped
    assert after.latest_ratings()["a"] == 1500.0 + count - 1
    assert seen == sorted(seen)


def _schema_1_store(directory) -> None:
    """A store as marl_arena wrote it before matches kept their moves (schema 1)."""
    store = LeagueStore(directory)
    store.add_player(PlayerInfo("a", "main_agent"))
    store.record_match(MatchRecord("g", ("a", "b"), (1.0, -1.0), 3), {"a": 1510.0, "b": 1490.0})
    store.close()
    with sqlite3.connect(directory / "league.sqlite") as db:
        db.execute("ALTER TABLE matches DROP COLUMN moves")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()


def test_a_schema_1_store_is_read_as_it_is_and_migrated_by_a_writer(tmp_path):
    _schema_1_store(tmp_path)
    before = (tmp_path / "league.sqlite").read_bytes()
    reader = LeagueStore(tmp_path, read_only=True)
    assert reader.schema_version == 1
    assert reader.matches()[0].moves is None and reader.match(1).players == ("a", "b")
    assert reader.recent_matches(5, player="a", outcome="win")[0][0] == 1
    assert reader.pair_results() == [("a", "b", 1, 0, 0)]
    reader.close()
    assert (tmp_path / "league.sqlite").read_bytes() == before  # reading changed nothing

    writer = LeagueStore(tmp_path)
    assert writer.schema_version == 3
    match_id = writer.record_match(MatchRecord("g", ("b", "a"), (0.0, 0.0), 2, moves=((0, 4), (1, 0))))
    writer.close()
    again = LeagueStore(tmp_path, read_only=True)
    assert again.match(1).moves is None and again.match(match_id).moves == ((0, 4), (1, 0))
    assert again.schema_version == 3


def test_recent_matches_filters_by_player_opponent_and_outcome(tmp_path):
    store = LeagueStore(tmp_path)
    results = [(("a", "b"), (1.0, -1.0)), (("b", "a"), (1.0, -1.0)), (("a", "c"), (0.0, 0.0)), (("c", "b"), (-1.0, 1.0))]
    store.record_matches([(MatchRecord("g", players, returns, 1), {}) for players, returns in results])
    ids = lambda **filters: [i for i, _ in store.recent_matches(10, **filters)]  # noqa: E731
    assert ids() == [4, 3, 2, 1]
    assert ids(player="a") == [3, 2, 1]
    assert ids(player="a", opponent="b") == [2, 1]
    assert ids(player="a", outcome="win") == [1]
    assert ids(player="b", outcome="win") == [4, 2]
    assert ids(player="c", outcome="draw") == [3]
    assert ids(opponent="c") == [4, 3]
    assert len(store.recent_matches(2)) == 2
    with pytest.raises(ValueError, match="give the player"):
        store.recent_matches(10, outcome="win")


def test_rating_series_places_a_snapshots_first_rating_at_the_match_it_joined(tmp_path):
    store = LeagueStore(tmp_path)
    store.record_match(MatchRecord("g", ("a", "b"), (1.0, -1.0), 1), {"a": 1516.0, "b": 1484.0})
    store.add_player(PlayerInfo("a_v1", "snapshot", parent="a", frozen=True), rating=1516.0)
    store.record_match(MatchRecord("g", ("a", "a_v1"), (0.0, 0.0), 1), {"a": 1516.0, "a_v1": 1516.0})
    assert store.rating_series(["a", "a_v1"]) == {"a": [(1, 1516.0), (2, 1516.0)], "a_v1": [(1, 1516.0), (2, 1516.0)]}
    marker = store.last_change()
    store.record_metrics("a", 1, {})
    assert store.last_change() != marker


def test_module_specs_round_trip_through_json(tmp_path):
    spaces = [gym.spaces.Box(-1.0, 1.0, (3, 2), np.float32), gym.spaces.Box(np.array([0.0, -2.0], np.float32), np.array([1.0, 5.0], np.float32)),
              gym.spaces.Discrete(7, start=1), gym.spaces.MultiDiscrete([3, 4]), gym.spaces.MultiBinary(5),
              gym.spaces.Dict({"x": gym.spaces.Discrete(2), "y": gym.spaces.Tuple([gym.spaces.Discrete(3)])})]
    for space in spaces:
        assert space_from_json(json.loads(json.dumps(space_to_json(space)))) == space
    spec = RLModuleSpec(ActorCriticModule, gym.spaces.Box(-np.inf, np.inf, (27,), np.float32), gym.spaces.Discrete(9),
                        model_config={"fcnet_hiddens": [16]})
    rebuilt = spec_from_json(json.loads(json.dumps(spec_to_json(spec)))).build()
    rebuilt.load_state_dict(spec.build().state_dict())  # same architecture, same parameter names

    store = LeagueStore(tmp_path)
    store.add_player(PlayerInfo("a_v1", "snapshot", frozen=True), snapshot=store.save_snapshot("a", spec.build().state_dict()))
    with pytest.raises(StoreError, match="recorded no module spec"):
        load_player_module(store, "a_v1")
    store.set_game({"env": "x", "env_config": {}, "module_spec": spec_to_json(spec)})
    assert isinstance(load_player_module(store, "a_v1"), ActorCriticModule)
    with pytest.raises(StoreError, match="No player"):
        load_player_module(store, "nobody")


def _random_league_writes(store, rng, rounds=6):
    """Matches among a learner, its snapshots (frozen between rounds), a bot and a person, in random batches."""
    store.add_player(PlayerInfo("main_0", "main_agent", created=time.time()))
    store.add_player(PlayerInfo("bot", "scripted", created=time.time(), frozen=True))
    store.add_player(PlayerInfo("human", "human", created=time.time()))
    players = ["main_0", "bot", "human"]
    for round_ in range(rounds):
        for _ in range(int(rng.integers(1, 5))):
            batch = []
            for _ in range(int(rng.integers(1, 40))):
                a, b = rng.choice(players, size=2)  # self-play included
                first, second = rng.choice([-1.0, 0.0, 1.0], size=2)
                batch.append((MatchRecord("g", (str(a), str(b)), (first, second), 3, iteration=round_), {}))
            store.record_matches(batch)
        snapshot = f"main_0_v{round_ + 1}"
        store.add_player(PlayerInfo(snapshot, "snapshot", parent="main_0", created=time.time(), frozen=True))
        players.append(snapshot)


def test_summary_table_equals_a_recount_from_the_matches_after_random_writes(tmp_path):
    store = LeagueStore(tmp_path)
    _random_league_writes(store, np.random.default_rng(0))
    summary = store.versioned_results()
    assert summary == store.versioned_results(recount=True)
    assert {va for a, _, va, _, *_ in summary if a == "main_0"} == set(range(6))  # a version per snapshot
    assert sum(w + d + l for *_, w, d, l in summary) == store.count_matches()
    seatings = {}
    for match in store.matches():
        if match.players[0] != match.players[1]:
            counts = seatings.setdefault(match.players, [0, 0, 0])
            counts[{1.0: 0, 0.5: 1, 0.0: 2}[match.score]] += 1
    assert store.pair_results() == sorted((a, b, *counts) for (a, b), counts in seatings.items())


def test_a_schema_2_store_without_summary_tables_is_read_and_migrated(tmp_path):
    store = LeagueStore(tmp_path)
    _random_league_writes(store, np.random.default_rng(1), rounds=3)
    expected = store.versioned_results()
    pairs = store.pair_results()
    store.close()
    with sqlite3.connect(tmp_path / "league.sqlite") as db:  # as schema 2 wrote it
        db.execute("DROP TABLE pair_results")
        db.execute("DROP INDEX players_by_parent")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()
    before = (tmp_path / "league.sqlite").read_bytes()
    reader = LeagueStore(tmp_path, read_only=True)
    assert reader.schema_version == 2
    assert reader.versioned_results() == expected and reader.pair_results() == pairs  # counted from the matches
    reader.close()
    assert (tmp_path / "league.sqlite").read_bytes() == before
    writer = LeagueStore(tmp_path)
    assert writer.schema_version == 3
    assert writer.versioned_results() == expected == writer.versioned_results(recount=True)
    writer.record_match(MatchRecord("g", ("main_0", "bot"), (1.0, -1.0), 3))
    assert writer.versioned_results() == writer.versioned_results(recount=True)
    writer.close()


def test_latest_ratings_and_meta(tmp_path):
    store = LeagueStore(tmp_path)
    store.add_player(PlayerInfo("a", "main_agent"))
    store.record_match(MatchRecord("g", ("a", "b"), (1.0, -1.0), 3), {"a": 1510.0, "b": 1490.0})
    store.record_ratings({"a": 1600.0}, match_id=1)
    assert store.latest_ratings() == {"a": 1600.0, "b": 1490.0}  # b is rated though not in the players table
    assert store.meta("fit") is None
    store.set_meta("fit", {"a": 1.5})
    assert store.meta("fit") == {"a": 1.5}
    assert [i for i, _ in store.matches_after(0)] == [1] and store.matches_after(1) == []
    store.close()


def test_matches_after_leaves_out_the_skipped_ids_across_more_than_one_query(tmp_path):
    store = LeagueStore(tmp_path)
    ids = store.record_matches([(MatchRecord("g", ("a", "b"), (float(i % 3 - 1), 0.0), i + 1), {})
                                for i in range(1200)])
    skip = set(ids[:1100]) - {ids[5], ids[700]}
    kept = store.matches_after(ids[2], skip=skip)
    assert [i for i, _ in kept] == [ids[5], ids[700], *ids[1100:]]
    assert [m.length for _, m in kept] == [6, 701, *range(1101, 1201)]
    store.close()
