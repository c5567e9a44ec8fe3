"""The league store: one SQLite file (WAL mode) plus snapshot files named by content hash.

Everything a league knows lives here: players, snapshots, every finished match, rating
history and training metrics. Each write is one transaction, so a league killed at any
moment reopens with every finished match exactly once. Opening checks before it writes:
a store from a newer schema, or a snapshot file that is missing or does not match its
hash, is refused with an error that names it, and the store is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import sqlite3
import tempfile
import time
from typing import Any, Iterator

import torch

from marl_arena.league.players import PlayerInfo

SCHEMA_VERSION = 1
DB_NAME = "league.sqlite"
SNAPSHOT_DIR = "snapshots"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE players (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, parent TEXT, created REAL NOT NULL,
    step INTEGER NOT NULL, frozen INTEGER NOT NULL, snapshot TEXT, metadata TEXT NOT NULL
);
CREATE TABLE snapshots (
    hash TEXT PRIMARY KEY, player_id TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, created REAL NOT NULL
);
CREATE TABLE matches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL, players TEXT NOT NULL,
    returns TEXT NOT NULL, score REAL NOT NULL, length INTEGER NOT NULL, iteration INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX matches_by_time ON matches (created);
CREATE TABLE ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, player_id TEXT NOT NULL, system TEXT NOT NULL,
    rating REAL NOT NULL, match_id INTEGER, created REAL NOT NULL
);
CREATE INDEX ratings_by_player ON ratings (player_id, system, id);
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT, player_id TEXT NOT NULL, iteration INTEGER NOT NULL,
    created REAL NOT NULL, data TEXT NOT NULL
);
"""


class StoreError(ValueError):
    """The league directory cannot be used as it is; the message says why and which file."""


@dataclasses.dataclass(frozen=True)
class MatchRecord:
    """One finished two-seat game: who sat where, what each got, and seat 0's score."""

    env: str
    players: tuple[str, ...]
    returns: tuple[float, ...]
    length: int
    iteration: int = 0
    created: float = dataclasses.field(default_factory=time.time)

    @property
    def score(self) -> float:
        """Seat 0's result: 1 for a higher return than seat 1, 0.5 for equal, 0 for lower."""
        first, second = self.returns[0], self.returns[1]
        return 1.0 if first > second else 0.5 if first == second else 0.0


def weights_to_bytes(weights: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    return buffer.getvalue()


class LeagueStore:
    """Read and write one league directory. ``read_only=True`` never writes (the dashboard)."""

    def __init__(self, directory: str | os.PathLike, *, read_only: bool = False):
        self.directory = pathlib.Path(directory)
        self.read_only = read_only
        self.path = self.directory / DB_NAME
        exists = self.path.exists()
        if read_only and not exists:
            raise StoreError(f"No league store at {self.path}.")
        if not read_only:
            (self.directory / SNAPSHOT_DIR).mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode={'ro' if read_only else 'rwc'}"
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        if exists:
            self._check_schema()
        else:
            self._create()
        if not read_only:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _create(self) -> None:
        # One script, one transaction: a store killed while being created has no tables at all.
        self._db.executescript(
            f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
        )

    def _check_schema(self) -> None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a league store: {error}") from error
        version = int(row["value"]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer marl_arena (schema {version}; this one reads up to "
                f"{SCHEMA_VERSION}). Upgrade marl_arena; the store was not changed."
            )
        if version < 1:
            raise StoreError(f"{self.path} has no schema version; it is not a league store.")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside happen together or not at all."""
        if self.read_only:
            raise StoreError(f"The store at {self.directory} was opened read-only.")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ players and snapshots
    def add_player(self, player: PlayerInfo, snapshot: str | None = None, metadata: dict | None = None,
                   rating: float | None = None, system: str = "elo") -> None:
        """Add a player (with its starting rating, if it does not start at the default)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO players VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (player.id, player.kind, player.parent, player.created, player.step, int(player.frozen),
                 snapshot, json.dumps(metadata or {})),
            )
            if rating is not None:
                db.execute("INSERT INTO ratings (player_id, system, rating, match_id, created) VALUES (?, ?, ?, NULL, ?)",
                           (player.id, system, float(rating), player.created))

    def set_player_snapshot(self, player_id: str, snapshot: str, step: int) -> None:
        """Point a trainable player at its latest weights (written with ``save_snapshot``)."""
        with self.transaction() as db:
            db.execute("UPDATE players SET snapshot = ?, step = ? WHERE id = ?", (snapshot, step, player_id))

    def players(self) -> list[PlayerInfo]:
        rows = self._db.execute("SELECT * FROM players ORDER BY created, id").fetchall()
        return [PlayerInfo(r["id"], r["kind"], r["parent"], r["created"], r["step"], bool(r["frozen"])) for r in rows]

    def player_snapshot(self, player_id: str) -> str | None:
        row = self._db.execute("SELECT snapshot FROM players WHERE id = ?", (player_id,)).fetchone()
        if row is None:
            raise StoreError(f"No player {player_id!r} in {self.path}.")
        return row["snapshot"]

    def player_metadata(self, player_id: str) -> dict:
        row = self._db.execute("SELECT metadata FROM players WHERE id = ?", (player_id,)).fetchone()
        return json.loads(row["metadata"]) if row else {}

    def save_snapshot(self, player_id: str, weights: dict[str, Any]) -> str:
        """Write weights to ``snapshots/<sha256>.pt`` (atomically) and record it; returns the hash."""
        data = weights_to_bytes(weights)
        digest = hashlib.sha256(data).hexdigest()
        file = self.directory / SNAPSHOT_DIR / f"{digest}.pt"
        if not file.exists():
            fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".snapshot.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, file)
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?, ?, ?)",
                       (digest, player_id, file.name, len(data), time.time()))
        return digest

    def _snapshot_file(self, digest: str) -> pathlib.Path:
        row = self._db.execute("SELECT file FROM snapshots WHERE hash = ?", (digest,)).fetchone()
        if row is None:
            raise StoreError(f"Snapshot {digest} is not recorded in {self.path}.")
        return self.directory / SNAPSHOT_DIR / row["file"]

    def verify_snapshot(self, digest: str) -> bytes:
        """The snapshot's bytes, after checking the file exists and matches its hash."""
        file = self._snapshot_file(digest)
        if not file.exists():
            raise StoreError(f"Snapshot file {file} is missing (recorded in {self.path}).")
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"Snapshot file {file} is corrupt: its content does not match its hash.")
        return data

    def verify_all_snapshots(self) -> None:
        """Check every player's snapshot before a league starts, so a bad one fails the start."""
        for row in self._db.execute("SELECT snapshot FROM players WHERE snapshot IS NOT NULL").fetchall():
            self.verify_snapshot(row["snapshot"])

    def load_snapshot(self, digest: str) -> dict[str, Any]:
        return torch.load(io.BytesIO(self.verify_snapshot(digest)), map_location="cpu", weights_only=True)

    # ------------------------------------------------------------------ matches, ratings, metrics
    def record_match(self, match: MatchRecord, ratings: dict[str, float] | None = None,
                     system: str = "elo") -> int:
        """Store a finished match and the ratings it produced, in one transaction."""
        return self.record_matches([(match, ratings or {})], system)[0]

    def record_matches(self, matches: list[tuple[MatchRecord, dict[str, float]]], system: str = "elo") -> list[int]:
        """Store matches with the ratings each produced, all in one transaction; returns their ids."""
        ids = []
        with self.transaction() as db:
            for match, ratings in matches:
                cursor = db.execute(
                    "INSERT INTO matches (env, players, returns, score, length, iteration, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (match.env, json.dumps(list(match.players)), json.dumps([float(r) for r in match.returns]),
                     match.score, match.length, match.iteration, match.created),
                )
                ids.append(int(cursor.lastrowid))
                for player_id, rating in ratings.items():
                    db.execute("INSERT INTO ratings (player_id, system, rating, match_id, created) "
                               "VALUES (?, ?, ?, ?, ?)", (player_id, system, float(rating), ids[-1], match.created))
        return ids

    def matches(self, limit: int | None = None, player: str | None = None) -> list[MatchRecord]:
        """Matches oldest first (the last ``limit`` when given), optionally those of one player."""
        query = "SELECT * FROM matches"
        params: list[Any] = []
        if player is not None:
            query += " WHERE EXISTS (SELECT 1 FROM json_each(matches.players) WHERE value = ?)"
            params.append(player)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._db.execute(query, params).fetchall()[::-1]
        return [MatchRecord(r["env"], tuple(json.loads(r["players"])), tuple(json.loads(r["returns"])),
                            r["length"], r["iteration"], r["created"]) for r in rows]

    def count_matches(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM matches").fetchone()[0])

    def latest_ratings(self, system: str = "elo") -> dict[str, float]:
        rows = self._db.execute(
            "SELECT player_id, rating FROM ratings WHERE id IN "
            "(SELECT MAX(id) FROM ratings WHERE system = ? GROUP BY player_id)", (system,)
        ).fetchall()
        return {r["player_id"]: r["rating"] for r in rows}

    def rating_history(self, player_id: str, system: str = "elo") -> list[tuple[int | None, float]]:
        rows = self._db.execute("SELECT match_id, rating FROM ratings WHERE player_id = ? AND system = ? ORDER BY id",
                                (player_id, system)).fetchall()
        return [(r["match_id"], r["rating"]) for r in rows]

    def record_metrics(self, player_id: str, iteration: int, metrics: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO metrics (player_id, iteration, created, data) VALUES (?, ?, ?, ?)",
                       (player_id, iteration, time.time(), json.dumps(metrics, default=float)))

    def metrics(self, player_id: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute("SELECT iteration, data FROM metrics WHERE player_id = ? ORDER BY id",
                                (player_id,)).fetchall()
        return [(r["iteration"], json.loads(r["data"])) for r in rows]
