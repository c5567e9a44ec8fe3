"""``marl-arena league export``: a league store's games, replayed through the env, as offline episodes."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest

from marl_arena.cli import main as cli_main
from marl_arena.league.players import PlayerInfo
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena.offline.league_export import export_league
from tests.test_league import take_away_league


@pytest.fixture(scope="module")
def league_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("take_away")
    league = take_away_league(directory).build()
    league.run(1)
    league.stop()
    return directory


def _rows(out) -> list[dict]:
    return [row for path in sorted(out.glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def test_every_move_becomes_a_row_with_the_rewards_its_player_got(league_dir, tmp_path):
    store = LeagueStore(league_dir, read_only=True)
    matches = store.matches()
    store.close()
    summary = export_league(league_dir, tmp_path)
    rows = _rows(tmp_path)
    assert summary.games == len(matches) > 0 and summary.skipped_without_moves == 0
    assert summary.rows == len(rows) == sum(len(m.moves) for m in matches)

    by_game = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_game[row["eps_id"]][row["agent_id"]].append(row)
    assert len(by_game) == len(matches)
    # Rows follow the stored games in order, so each game's rewards can be checked against its returns.
    for match, game in zip(matches, sorted(by_game.values(), key=lambda g: int(next(iter(g.values()))[0]
                                                                            ["eps_id"].rsplit("-", 1)[1]))):
        seats = sorted(game)
        for seat, agent in enumerate(seats):
            moves = sorted(game[agent], key=lambda r: r["t"])
            assert [r["actions"] for r in moves] == [a for s, a in match.moves if s == seat]
            assert sum(r["rewards"] for r in moves) == pytest.approx(match.returns[seat])  # the loser's too
            assert [r["terminateds"] for r in moves] == [False] * (len(moves) - 1) + [True]
            assert {r["module_id"] for r in moves} == {match.players[seat]}
            for earlier, later in zip(moves, moves[1:]):
                assert np.array_equal(earlier["new_obs"], later["obs"])
            assert all(r["action_mask"][r["actions"]] == 1.0 for r in moves)  # the move was legal where it was made


def test_players_filter_and_one_module_id_for_all_rows(league_dir, tmp_path):
    summary = export_league(league_dir, tmp_path, players=["random"], module_id="main_0")
    rows = _rows(tmp_path)
    assert rows and summary.rows == len(rows)
    assert {row["module_id"] for row in rows} == {"main_0"}
    store = LeagueStore(league_dir, read_only=True)
    random_moves = sum(sum(1 for s, _ in m.moves if m.players[s] == "random") for m in store.matches())
    store.close()
    assert len(rows) == random_moves


def test_the_cli_exports_and_says_what_it_wrote(league_dir, tmp_path, capsys):
    assert cli_main(["league", "export", str(league_dir), "--out", str(tmp_path / "out")]) == 0
    assert "games" in capsys.readouterr().out
    assert list((tmp_path / "out").glob("*.parquet"))


def test_games_with_chance_events_are_refused_before_writing(tmp_path):
    store = LeagueStore(tmp_path / "kuhn")
    store.set_game({"env": "open_spiel:kuhn_poker", "env_config": {}})
    for pid in ("a", "b"):
        store.add_player(PlayerInfo(pid, "scripted", frozen=True))
    for _ in range(20):  # pass, pass: the cards dealt decide who wins, and the moves do not say which were dealt
        store.record_match(MatchRecord("open_spiel:kuhn_poker", ("a", "b"), (1.0, -1.0), 2, moves=((0, 0), (1, 0))))
    store.close()
    with pytest.raises(ValueError, match="chance events"):
        export_league(tmp_path / "kuhn", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_store_without_a_game_record_is_refused_by_name(tmp_path):
    LeagueStore(tmp_path).close()
    with pytest.raises(ValueError, match="no game record"):
        export_league(tmp_path, tmp_path / "out")
