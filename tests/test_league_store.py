"""The league store: resumes after a kill, refuses what it cannot trust, changes nothing when it refuses."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import torch

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
