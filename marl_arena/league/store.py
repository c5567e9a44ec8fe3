"""The league store: one SQLite file (WAL mode) plus snapshot files named by content hash.

Everything a league knows lives here: players, snapshots, every finished match (with its
moves, for replays), rating history, training metrics, and the game record (env and module
spec) that lets a reader rebuild any player's module. Each write is one transaction, so a
league killed at any moment reopens with every finished match exactly once. Opening checks
before it writes: a store from a newer schema, or a snapshot file that is missing or does
not match its hash, is refused with an error that names it, and the store is left as it was.

Schema 2 added ``matches.moves``; schema 3 the summary table ``pair_results`` (wins, draws
and losses per seating and per version of each player, kept in the same transaction as the
matches), so that a reader of a store with a million matches never scans them. A writer
migrates an older store when it opens it (building the summary from the matches); a
read-only open leaves it as it is, reads its matches without moves and counts results from
the matches table.

A player's *version* is the number of snapshots frozen from it before the game: a learner
changes as it trains, and ratings fitted per version compare policies that stayed fixed
(``marl_arena.league.leaderboard``). Players that never have snapshots stay at version 0.
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
from typing import Any, Collection, Iterator

from marl_arena.league.players import PlayerInfo

SCHEMA_VERSION = 3
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
    created REAL NOT NULL, moves TEXT
);
CREATE INDEX matches_by_time ON matches (created);
CREATE TABLE ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, player_id TEXT NOT NULL, system TEXT NOT NULL,
    rating REAL NOT NULL, match_id INTEGER, created REAL NOT NULL
);
CREATE INDEX ratings_by_player ON ratings (player_id, system, id);
CREATE TABLE pair_results (
    a TEXT NOT NULL, b TEXT NOT NULL, a_version INTEGER NOT NULL, b_version INTEGER NOT NULL,
    wins INTEGER NOT NULL, draws INTEGER NOT NULL, losses INTEGER NOT NULL,
    PRIMARY KEY (a, b, a_version, b_version)
) WITHOUT ROWID;
CREATE INDEX players_by_parent ON players (parent);
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT, player_id TEXT NOT NULL, iteration INTEGER NOT NULL,
    created REAL NOT NULL, data TEXT NOT NULL
);
"""

_VERSIONED_RESULTS = """
SELECT a, b, a_version, b_version, SUM(score = 1.0), SUM(score = 0.5), SUM(score = 0.0) FROM (
    SELECT json_extract(m.players, '$[0]') AS a, json_extract(m.players, '$[1]') AS b, m.score AS score,
        (SELECT COUNT(*) FROM players p WHERE p.kind = 'snapshot' AND p.parent = json_extract(m.players, '$[0]')
         AND p.created <= m.created) AS a_version,
        (SELECT COUNT(*) FROM players p WHERE p.kind = 'snapshot' AND p.parent = json_extract(m.players, '$[1]')
         AND p.created <= m.created) AS b_version
    FROM matches m)
GROUP BY a, b, a_version, b_version ORDER BY a, b, a_version, b_version
"""
"""Results per seating and versions, counted from the matches: a version is the number of the
player's snapshots created before the match (how ``record_matches`` counts it at write time)."""

_MIGRATIONS = {
    1: ("ALTER TABLE matches ADD COLUMN moves TEXT",),
    2: (_SCHEMA[_SCHEMA.index("CREATE TABLE pair_results"):_SCHEMA.index("CREATE INDEX players_by_parent")]
        .replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"),
        "CREATE INDEX IF NOT EXISTS players_by_parent ON players (parent)",
        "DELETE FROM pair_results",
        "INSERT INTO pair_results " + _VERSIONED_RESULTS),
}
"""The statements that take a store from schema ``version`` to ``version + 1``."""

GAME_KEY = "game"
"""The meta row holding the league's game record (``set_game`` / ``game``)."""

_IDS_PER_QUERY = 500
"""Ids bound in one ``IN (...)`` (SQLite caps a statement's parameters)."""


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
    moves: tuple[tuple[int, int], ...] | None = None
    """``(seat, action)`` in the order played, for replays; None where they were not recorded."""
    outcome: float | None = None
    """Seat 0's score where the game decides it otherwise than by comparing returns (a team league's
    ``outcome`` rule, ``marl_arena.league.teams``); None: compare the returns. Read back from the store."""

    @property
    def score(self) -> float:
        """Seat 0's result: 1 for a higher return than seat 1, 0.5 for equal, 0 for lower (or ``outcome``)."""
        if self.outcome is not None:
            return self.outcome
        first, second = self.returns[0], self.returns[1]
        return 1.0 if first > second else 0.5 if first == second else 0.0


def weights_to_bytes(weights: dict[str, Any]) -> bytes:
    import torch  # only writing and loading weights need torch; reading the record does not

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
            self.schema_version = self._check_schema()
            if not read_only and self.schema_version < SCHEMA_VERSION:
                self._migrate()
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
        self.schema_version = SCHEMA_VERSION

    def _migrate(self) -> None:
        """Bring an older store up to ``SCHEMA_VERSION``, all steps in one transaction.

        The version is read again under the write lock: another writer may have migrated
        the store since this one looked.
        """
        with self.transaction() as db:
            version = int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()["value"])
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        self.schema_version = SCHEMA_VERSION

    def _check_schema(self) -> int:
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
        return version

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

    def save_latest_weights(self, player_id: str, weights: dict[str, Any]) -> str:
        """Store a trainable player's current weights and point the player at them; returns the hash.

        So that readers (the dashboard's Play page) can play the current agent, not only its
        last snapshot. The weights it pointed at before are deleted unless another player (a
        snapshot frozen from them) still points at them, so a long league keeps one file per
        trainable player rather than one per iteration. The player's ``step`` stays what it
        was (the env steps at its last snapshot, which a resumed league's snapshot rule reads).
        """
        previous = self.player_snapshot(player_id)
        digest = self.save_snapshot(player_id, weights)
        with self.transaction() as db:
            db.execute("UPDATE players SET snapshot = ? WHERE id = ?", (digest, player_id))
        if previous is not None and previous != digest:
            self._delete_if_unused(previous)
        return digest

    def _delete_if_unused(self, digest: str) -> None:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM players WHERE snapshot = ?", (digest,)).fetchone():
                return
            row = db.execute("SELECT file FROM snapshots WHERE hash = ?", (digest,)).fetchone()
            db.execute("DELETE FROM snapshots WHERE hash = ?", (digest,))
        if row is not None:
            (self.directory / SNAPSHOT_DIR / row["file"]).unlink(missing_ok=True)

    def players(self) -> list[PlayerInfo]:
        rows = self._db.execute("SELECT * FROM players ORDER BY created, id").fetchall()
        return [PlayerInfo(r["id"], r["kind"], r["parent"], r["created"], r["step"], bool(r["frozen"])) for r in rows]

    def player_snapshot(self, player_id: str) -> str | None:
        row = self._db.execute("SELECT snapshot FROM players WHERE id = ?", (player_id,)).fetchone()
        if row is None:
            raise StoreError(f"No player {player_id!r} in {self.path}.")
        return row["snapshot"]

    def set_game(self, record: dict[str, Any]) -> None:
        """Record what a reader needs to rebuild players without the league's code: env, module spec."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (GAME_KEY, json.dumps(record)))

    def game(self) -> dict[str, Any] | None:
        """The game record written by ``set_game``; None for a league that never wrote one."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (GAME_KEY,)).fetchone()
        return json.loads(row["value"]) if row else None

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
        import torch

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
            versions = self._versions(db, {pid for match, _ in matches for pid in match.players})
            summary: dict[tuple[str, str, int, int], list[int]] = {}
            for match, ratings in matches:
                moves = None if match.moves is None else json.dumps([[int(s), int(a)] for s, a in match.moves])
                cursor = db.execute(
                    "INSERT INTO matches (env, players, returns, score, length, iteration, created, moves) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (match.env, json.dumps(list(match.players)), json.dumps([float(r) for r in match.returns]),
                     match.score, match.length, match.iteration, match.created, moves),
                )
                ids.append(int(cursor.lastrowid))
                a, b = match.players[0], match.players[1]
                summary.setdefault((a, b, versions[a], versions[b]), [0, 0, 0])[_SCORE_COLUMN[match.score]] += 1
                for player_id, rating in ratings.items():
                    db.execute("INSERT INTO ratings (player_id, system, rating, match_id, created) "
                               "VALUES (?, ?, ?, ?, ?)", (player_id, system, float(rating), ids[-1], match.created))
            db.executemany(
                "INSERT INTO pair_results VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (a, b, a_version, b_version) "
                "DO UPDATE SET wins = wins + excluded.wins, draws = draws + excluded.draws, "
                "losses = losses + excluded.losses",
                [(*key, *counts) for key, counts in summary.items()])
        return ids

    @staticmethod
    def _versions(db: sqlite3.Connection, player_ids: set[str]) -> dict[str, int]:
        """Each player's version now: the number of snapshots frozen from it so far."""
        if not player_ids:
            return {}
        rows = db.execute(f"SELECT parent, COUNT(*) FROM players WHERE kind = 'snapshot' AND parent IN "
                          f"({', '.join('?' * len(player_ids))}) GROUP BY parent", sorted(player_ids)).fetchall()
        return {pid: 0 for pid in player_ids} | {parent: int(count) for parent, count in rows}

    def record_ratings(self, ratings: dict[str, float], match_id: int | None = None, system: str = "elo") -> None:
        """Ratings set outside a match's own update (a recalibration), at match ``match_id``."""
        with self.transaction() as db:
            db.executemany("INSERT INTO ratings (player_id, system, rating, match_id, created) VALUES (?, ?, ?, ?, ?)",
                           [(pid, system, float(r), match_id, time.time()) for pid, r in ratings.items()])

    def matches_after(self, match_id: int, skip: Collection[int] = ()) -> list[tuple[int, MatchRecord]]:
        """``(id, match)`` of every match stored after match ``match_id``, oldest first, but those in ``skip``.

        A league asks every iteration for the matches it did not write itself, and its own
        (thousands, each with its moves) would cost more to decode than everything else it does.
        """
        if not skip:
            rows = self._db.execute("SELECT * FROM matches WHERE id > ? ORDER BY id", (int(match_id),)).fetchall()
        else:
            wanted = [i for (i,) in self._db.execute("SELECT id FROM matches WHERE id > ? ORDER BY id",
                                                      (int(match_id),)) if i not in skip]
            rows = []
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start:start + _IDS_PER_QUERY]
                rows += self._db.execute(f"SELECT * FROM matches WHERE id IN ({', '.join('?' * len(chunk))}) "
                                         "ORDER BY id", chunk).fetchall()
        return [(int(r["id"]), _match_from_row(r)) for r in rows]

    def last_match_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM matches").fetchone()[0])

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
        return [_match_from_row(r) for r in rows]

    def match(self, match_id: int) -> MatchRecord:
        """One match by id (its moves included, where they were recorded)."""
        row = self._db.execute("SELECT * FROM matches WHERE id = ?", (int(match_id),)).fetchone()
        if row is None:
            raise StoreError(f"No match {match_id} in {self.path}.")
        return _match_from_row(row)

    def recent_matches(self, limit: int, player: str | None = None, opponent: str | None = None,
                       outcome: str | None = None) -> list[tuple[int, MatchRecord]]:
        """``(id, match)`` newest first: at most ``limit``, filtered by who played and how it ended.

        ``player`` and ``opponent`` sit on opposite seats; ``outcome`` ("win", "draw" or
        "loss") is ``player``'s, so it needs ``player``.
        """
        if outcome is not None and outcome not in _OUTCOME_SCORES:
            raise ValueError(f"outcome must be one of {sorted(_OUTCOME_SCORES)}, got {outcome!r}.")
        if outcome is not None and player is None:
            raise ValueError("An outcome filter is a player's outcome: give the player too.")
        conditions = []
        if player is not None and opponent is not None:
            conditions.append("((a = :player AND b = :opponent) OR (a = :opponent AND b = :player))")
        elif player is not None or opponent is not None:
            conditions.append(f"{':player' if player is not None else ':opponent'} IN (a, b)")
        if outcome is not None:
            conditions.append("((a = :player AND score = :score) OR (b = :player AND score = 1.0 - :score))")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.execute(
            "SELECT * FROM (SELECT *, json_extract(players, '$[0]') AS a, json_extract(players, '$[1]') AS b "
            f"FROM matches) {where} ORDER BY id DESC LIMIT :limit",
            {"player": player, "opponent": opponent, "score": _OUTCOME_SCORES.get(outcome), "limit": int(limit)},
        ).fetchall()
        return [(int(r["id"]), _match_from_row(r)) for r in rows]

    def pair_results(self) -> list[tuple[str, str, int, int, int]]:
        """``(seat 0, seat 1, seat 0's wins, draws, losses)`` per seating, self-play left out.

        One aggregate query: how a reader gets the payoff table of a long league without
        loading every match.
        """
        if self.schema_version >= 3:
            rows = self._db.execute("SELECT a, b, SUM(wins), SUM(draws), SUM(losses) FROM pair_results WHERE a != b "
                                    "GROUP BY a, b ORDER BY a, b").fetchall()
            return [(a, b, int(w), int(d), int(l)) for a, b, w, d, l in rows]
        # A store from before the summary table, opened read-only: count from the matches.
        # Grouping on the stored JSON text is twice as fast as on json_extract()ed seats.
        rows = self._db.execute(
            "SELECT players, SUM(score = 1.0), SUM(score = 0.5), SUM(score = 0.0) FROM matches GROUP BY players"
        ).fetchall()
        results = []
        for seating, wins, draws, losses in rows:
            first, second = json.loads(seating)
            if first != second:
                results.append((first, second, int(wins), int(draws), int(losses)))
        return results

    def versioned_results(self, *, recount: bool = False) -> list[tuple[str, str, int, int, int, int, int]]:
        """``(seat 0, seat 1, their versions, seat 0's wins, draws, losses)``, self-play included.

        From the summary table, or counted from the matches (``recount=True``, and always for
        a store from before the summary table opened read-only).
        """
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples, in key order: a large league has many rows
        if recount or self.schema_version < 3:
            return cursor.execute(_VERSIONED_RESULTS).fetchall()
        return cursor.execute("SELECT * FROM pair_results ORDER BY a, b, a_version, b_version").fetchall()

    def count_matches(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM matches").fetchone()[0])

    def last_change(self) -> tuple[int, ...]:
        """A marker that changes whenever a row is added: the newest rowid of every growing table.

        Readers key their caches on it (each part is one lookup of the largest rowid).
        """
        tables = ("matches", "ratings", "metrics", "players", "snapshots", "meta")
        row = self._db.execute("SELECT " + ", ".join(f"(SELECT MAX(rowid) FROM {t})" for t in tables)).fetchone()
        return tuple(int(value or 0) for value in row)

    @contextlib.contextmanager
    def reading(self) -> Iterator["LeagueStore"]:
        """Reads inside see one consistent state of the store, whatever a writer commits meanwhile."""
        self._db.execute("BEGIN")
        try:
            yield self
        finally:
            self._db.execute("COMMIT")

    def latest_ratings(self, system: str = "elo") -> dict[str, float]:
        """Each player's newest rating: one index lookup per player, however many ratings are stored."""
        # The distinct rated players by a skip-scan of the index, then each one's newest row.
        rows = self._db.execute(
            "WITH RECURSIVE rated(id) AS (SELECT MIN(player_id) FROM ratings UNION ALL "
            "SELECT (SELECT MIN(player_id) FROM ratings WHERE player_id > rated.id) FROM rated "
            "WHERE rated.id IS NOT NULL) "
            "SELECT id, (SELECT rating FROM ratings WHERE player_id = rated.id AND system = ? ORDER BY id DESC "
            "LIMIT 1) AS rating FROM rated WHERE id IS NOT NULL", (system,)
        ).fetchall()
        return {r["id"]: r["rating"] for r in rows if r["rating"] is not None}

    def set_meta(self, key: str, value: Any) -> None:
        """A JSON value under ``key`` in the meta table (e.g. the last rating fit, to warm-start the next)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def rating_history(self, player_id: str, system: str = "elo") -> list[tuple[int | None, float]]:
        rows = self._db.execute("SELECT match_id, rating FROM ratings WHERE player_id = ? AND system = ? ORDER BY id",
                                (player_id, system)).fetchall()
        return [(r["match_id"], r["rating"]) for r in rows]

    def rating_series(self, player_ids: list[str], system: str = "elo") -> dict[str, list[tuple[int, float]]]:
        """Each player's ratings against the match number at which they were set.

        A rating set outside a match (a snapshot's starting rating, copied from its parent)
        sits at the newest match stored before it, so lines start where the player joined.
        """
        series: dict[str, list[tuple[int, float]]] = {pid: [] for pid in player_ids}
        rows = self._db.execute(
            "SELECT player_id, rating, COALESCE(match_id, (SELECT r2.match_id FROM ratings r2 WHERE r2.id < ratings.id "
            "AND r2.match_id IS NOT NULL ORDER BY r2.id DESC LIMIT 1), 0) AS at "
            f"FROM ratings WHERE system = ? AND player_id IN ({', '.join('?' * len(player_ids))}) ORDER BY id",
            (system, *player_ids),
        ).fetchall()
        for row in rows:
            series[row["player_id"]].append((int(row["at"]), float(row["rating"])))
        return series

    def record_metrics(self, player_id: str, iteration: int, metrics: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO metrics (player_id, iteration, created, data) VALUES (?, ?, ?, ?)",
                       (player_id, iteration, time.time(), json.dumps(metrics, default=float)))

    def metrics(self, player_id: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute("SELECT iteration, data FROM metrics WHERE player_id = ? ORDER BY id",
                                (player_id,)).fetchall()
        return [(r["iteration"], json.loads(r["data"])) for r in rows]


_OUTCOME_SCORES = {"win": 1.0, "draw": 0.5, "loss": 0.0}
_SCORE_COLUMN = {1.0: 0, 0.5: 1, 0.0: 2}
"""Seat 0's score to its column of ``pair_results``: wins, draws, losses."""


def _match_from_row(row: sqlite3.Row) -> MatchRecord:
    moves = row["moves"] if "moves" in row.keys() else None  # a schema-1 store opened read-only has none
    match = MatchRecord(row["env"], tuple(json.loads(row["players"])), tuple(json.loads(row["returns"])),
                       row["length"], row["iteration"], row["created"],
                       None if moves is None else tuple((seat, action) for seat, action in json.loads(moves)))
    # A score the returns do not imply was decided by an outcome rule (a team league's): keep it.
    return match if match.score == row["score"] else dataclasses.replace(match, outcome=float(row["score"]))
