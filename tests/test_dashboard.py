"""The dashboard in Streamlit's AppTest: every page on a real league, numbers checked against the store.

The league (tests/dashboard_league.py) is built once for the module; tests that write to a
store (playing a game, resuming the league) work on a copy of it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyspiel
import pytest
from streamlit.testing.v1 import AppTest

from dashboard_league import PAGES, assert_clean, build_league, open_page, tic_tac_toe_league
from marl_arena.cli import main
from marl_arena.env.registry import make_env
from marl_arena.league.cycles import strategic_cycles
from marl_arena.league.leaderboard import FIT_KEY, leaderboard, payoff_from_matches
from marl_arena.league.module_specs import load_player_module
from marl_arena.league.players import PlayerInfo
from marl_arena.league.store import DB_NAME, LeagueStore, MatchRecord, StoreError
from marl_arena.runners.observation_pipeline import ObservationPipeline
from marl_arena_dashboard import READ_ONLY_ENV, boards, play


@pytest.fixture(scope="module")
def league_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("league")
    build_league(directory)
    return directory


@pytest.fixture
def store(league_dir):
    store = LeagueStore(league_dir, read_only=True)
    yield store
    store.close()


def chart_data(app: AppTest, index: int) -> list[pd.DataFrame]:
    """The datasets of the ``index``-th Vega-Lite chart on the page."""
    proto = app.get("vega_lite_chart")[index].proto
    return [pa.ipc.open_stream(dataset.data.data).read_all().to_pandas() for dataset in proto.datasets]


# ---------------------------------------------------------------------- every page, right numbers
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_exceptions(monkeypatch, league_dir, page):
    app = open_page(monkeypatch, league_dir, page)
    assert_clean(app, page)
    assert not app.info or page == "play"  # the play page asks the person to start a game


def test_leaderboard_shows_the_stores_numbers(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "leaderboard")
    shown = app.dataframe[0].value.set_index("player")
    players = {p.id: p for p in store.players()}
    recounted = leaderboard(players, store.versioned_results(recount=True), store.latest_ratings(),
                            store.meta(FIT_KEY))  # results counted from every match, not the summary table
    expected = {row["player"]: row for row in recounted}
    assert set(shown.index) == set(expected) == set(players)
    assert list(shown.index) == [r["player"] for r in recounted]  # by the calibrated rating
    for pid, row in expected.items():
        for column in ("kind", "games", "wins", "draws", "losses"):
            assert shown.loc[pid, column] == row[column], (pid, column)
        assert shown.loc[pid, "elo"] == pytest.approx(row["elo"])
        for column in ("bt", "bt_low", "bt_high"):
            assert (math.isnan(row[column]) and math.isnan(shown.loc[pid, column])) or \
                shown.loc[pid, column] == pytest.approx(row[column], abs=1e-6), (pid, column)
        assert shown.loc[pid, "status"] == ("training" if pid == "main_0" else "frozen")
    assert {m.label: m.value for m in app.metric}["Matches"] == str(store.count_matches())


def test_leaderboard_filters_by_kind(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "leaderboard")
    app.multiselect(key="leaderboard_kinds").set_value(["snapshot"]).run()
    shown = app.dataframe[0].value
    assert set(shown["player"]) == {p.id for p in store.players() if p.kind == "snapshot"} != set()


def test_payoff_page_shows_the_win_rates_of_the_stored_matches(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "payoff")
    assert_clean(app, "payoff")
    table = app.dataframe[0].value
    players = {p.id: p for p in store.players()}
    payoff = payoff_from_matches(players, store.matches())
    checked = 0
    for row in table.index:
        for column in table.columns:
            games = payoff.stats(row, column).games if row != column else 0
            if games:
                assert table.loc[row, column] == pytest.approx(payoff.win_rate(row, column))
                checked += 1
            else:
                assert math.isnan(table.loc[row, column])
    assert checked >= 6
    heatmap = chart_data(app, 0)[0]
    assert set(heatmap.columns) >= {"player", "opponent", "win_rate", "games"}
    assert heatmap["games"].sum() == sum(payoff.stats(a, b).games for a in players for b in players if a != b)


def test_ratings_page_draws_every_stored_rating_and_marks_snapshots(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "ratings")
    assert_clean(app, "ratings")
    lines, snapshots = chart_data(app, 0)
    latest = store.latest_ratings()
    for pid, points in lines.groupby("player"):
        assert points["elo"].iloc[-1] == pytest.approx(latest[pid])
        assert len(points) == len(store.rating_history(pid))
    frozen = {p.id: p.parent for p in store.players() if p.kind == "snapshot"}
    assert dict(zip(snapshots["snapshot"], snapshots["parent"])) == frozen
    for snapshot in frozen:  # a snapshot starts at its parent's Elo when it was frozen
        assert snapshots.set_index("snapshot").loc[snapshot, "elo"] == store.rating_history(snapshot)[0][1]
    returns = chart_data(app, 1)[0]
    assert len(returns) == len(store.metrics("main_0")) == 4
    assert len(app.get("vega_lite_chart")) == 4  # ratings, return, losses, env steps per second


def test_graph_page_draws_lineage_and_the_cycles_of_the_stored_results(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "graph")
    assert_clean(app, "graph")
    lineage, beats = (chart.proto.spec for chart in app.get("graphviz_chart"))
    for player in store.players():
        if player.parent:
            assert f'"{player.id}" -> "{player.parent}"' in lineage
    players = {p.id: p for p in store.players()}
    cycles = strategic_cycles(payoff_from_matches(players, store.matches()), min_games=10, max_length=3)
    if cycles:
        assert app.warning[0].value.startswith(f"{len(cycles)} strategic cycle")
    else:
        assert app.success[0].value.startswith("No strategic cycle")
    assert "->" in beats


def test_a_strategic_cycle_is_listed_and_drawn_in_red(monkeypatch, tmp_path):
    store = LeagueStore(tmp_path)
    for bot in ("rock", "paper", "scissors"):
        store.add_player(PlayerInfo(bot, "scripted", frozen=True), metadata={"module_class": "x:Y"})
    beats = [("paper", "rock"), ("scissors", "paper"), ("rock", "scissors")]
    store.record_matches([(MatchRecord("games:rock_paper_scissors", pair, (1.0, -1.0), 1), {})
                          for pair in beats for _ in range(12)])
    store.close()
    app = open_page(monkeypatch, tmp_path, "graph")
    assert_clean(app, "graph")
    assert app.warning[0].value.startswith("1 strategic cycle")
    assert "paper -> rock -> scissors -> paper" in app.markdown[-1].value  # starts at the first player
    spec = app.get("graphviz_chart")[1].proto.spec
    for winner, loser in beats:
        assert f'"{winner}" -> "{loser}" [color="#d62728"' in spec


def test_match_log_filters_and_replays_a_match_move_by_move(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "matches")
    assert_clean(app, "matches")
    log = app.dataframe[0].value
    newest = store.recent_matches(100)
    assert list(log["id"]) == [match_id for match_id, _ in newest]
    assert list(log["first"]) == [m.players[0] for _, m in newest]

    app.selectbox(key="log_player").set_value("greedy").run()
    app.selectbox(key="log_outcome").set_value("win").run()
    log = app.dataframe[0].value
    wins = [match_id for match_id, m in store.recent_matches(10_000) if "greedy" in m.players
            and m.score == (1.0 if m.players[0] == "greedy" else 0.0)]
    assert list(log["id"]) == wins[:100] and set(log["winner"]) == {"greedy"}

    match_id = int(log["id"].iloc[-1])
    app.selectbox(key="replay_match").set_value(match_id).run()
    moves = store.match(match_id).moves
    assert moves and len(moves) == store.match(match_id).length
    state = pyspiel.load_game("tic_tac_toe").new_initial_state()
    for step, (seat, action) in enumerate(moves, start=1):
        assert state.current_player() == seat
        state.apply_action(action)
        app.slider(key="replay_step").set_value(step).run()
        assert app.code[0].value == str(state).strip()
    assert state.is_terminal()
    assert state.returns()[0] > state.returns()[1]  # greedy's win, whichever seat it had: the log said so
    assert not app.exception


def test_matches_without_moves_say_so(monkeypatch, tmp_path):
    store = LeagueStore(tmp_path)
    store.add_player(PlayerInfo("a", "main_agent"))
    store.add_player(PlayerInfo("b", "scripted", frozen=True), metadata={"module_class": "x:Y"})
    store.record_match(MatchRecord("open_spiel:tic_tac_toe", ("a", "b"), (1.0, -1.0), 5))
    store.close()
    app = open_page(monkeypatch, tmp_path, "matches")
    assert_clean(app, "matches")
    assert "No moves recorded" in app.info[0].value


# ---------------------------------------------------------------------- playing against an agent
def test_a_person_plays_a_league_player_and_shows_on_the_leaderboard(monkeypatch, league_dir, tmp_path):
    directory = tmp_path / "league"
    shutil.copytree(league_dir, directory)
    before = LeagueStore(directory, read_only=True)
    count, opponent = before.count_matches(), next(p.id for p in before.players() if p.kind == "snapshot")
    before.close()

    app = open_page(monkeypatch, directory, "play")
    assert_clean(app, "play")
    assert opponent in app.selectbox(key="play_opponent").options
    app.selectbox(key="play_opponent").set_value(opponent).run()
    app.radio(key="play_seat").set_value(1).run()
    app.button(key="new_game").click().run()
    assert sum(b.label != "·" for b in app.button if b.key.startswith("cell_")) == 1  # the agent opened
    for _ in range(5):
        open_cells = [b for b in app.button if b.key.startswith("cell_") and not b.disabled]
        if not open_cells:
            break
        open_cells[0].click().run()
    assert not app.exception
    assert "Stored as match" in app.success[0].value

    after = LeagueStore(directory, read_only=True)
    (match_id, match), = after.recent_matches(1)
    assert after.count_matches() == count + 1
    assert match.players == (opponent, "human") and match.env == "open_spiel:tic_tac_toe"
    state = boards.board_game(match.env).states([action for _, action in match.moves])[-1]
    assert state.is_terminal() and list(state.returns()) == list(match.returns)
    assert [p.kind for p in after.players() if p.id == "human"] == ["human"]
    assert after.rating_history("human")[-1][0] == match_id
    after.close()

    board = open_page(monkeypatch, directory, "leaderboard").dataframe[0].value.set_index("player")
    assert board.loc["human", "games"] == 1 and board.loc["human", "status"] == "person"

    league = tic_tac_toe_league(directory).build()  # a league resumes with a person among its players
    try:
        assert "human" in league.players and "human" not in league.trainers["main_0"].config.policies
        league.run(1)
        assert all("human" not in m.players for m in league.store.matches()[count + 1:])  # never drawn
    finally:
        league.stop()


def test_the_league_stores_moves_and_what_rebuilds_its_players(store):
    game = store.game()
    assert game["env"] == "open_spiel:tic_tac_toe" and game["module_spec"]["action_space"]["n"] == 9
    board = boards.board_game(game["env"], game["env_config"])
    for _, match in store.recent_matches(200):
        assert len(match.moves) == match.length
        state = board.states([action for _, action in match.moves])[-1]
        assert state.is_terminal() and list(state.returns()) == list(match.returns)
    for player in store.players():
        if player.kind in ("snapshot", "main_agent"):  # a trainable player: its weights as of the last iteration
            module = load_player_module(store, player.id)
            weights = store.load_snapshot(store.player_snapshot(player.id))
            assert all(np.array_equal(module.state_dict()[k], v) for k, v in weights.items())
        elif player.kind == "scripted":
            assert type(load_player_module(store, player.id)).__name__ in ("RandomModule", "TicTacToeGreedy")


def test_a_player_without_stored_weights_is_refused_by_name(league_dir, tmp_path):
    shutil.copytree(league_dir, tmp_path / "league")
    store = LeagueStore(tmp_path / "league")
    store.add_player(PlayerInfo("newcomer", "main_exploiter"))  # added, never trained
    try:
        with pytest.raises(StoreError, match="'newcomer' .* has no weights"):
            load_player_module(store, "newcomer")
    finally:
        store.close()


@pytest.mark.parametrize("env", ["pettingzoo:connect_four_v3", "pettingzoo:tictactoe_v3"])
def test_board_observations_are_what_the_pettingzoo_env_gives(env):
    """A module trained on PettingZoo's game must see the same rows when a person plays it here."""
    board = boards.board_game(env)
    rng = np.random.default_rng(0)
    for _ in range(5):
        game = make_env(env)
        obs, _ = game.reset(seed=int(rng.integers(1000)))
        pipelines = {agent: ObservationPipeline(game.get_observation_space(agent), None)
                     for agent in game.possible_agents}
        actions, done = [], False
        while not done:
            (agent, observation), = obs.items()  # one agent to move
            rows, masks = pipelines[agent].process([observation])
            state = board.states(actions)[-1]
            seat = game.possible_agents.index(agent)
            assert state.current_player() == seat
            np.testing.assert_array_equal(board.observe(state, seat), rows[0])
            np.testing.assert_array_equal(board.mask(state), masks[0])
            action = int(rng.choice(np.flatnonzero(masks[0])))
            actions.append(action)
            obs, rewards, terminateds, truncateds, _ = game.step({agent: action})
            done = terminateds["__all__"] or truncateds["__all__"]
        final = board.states(actions)[-1]
        assert final.is_terminal()
        assert [rewards.get(agent, 0.0) for agent in game.possible_agents] == list(final.returns())


# ---------------------------------------------------------------------- no league, empty, one player
def _one_player_store(directory):
    store = LeagueStore(directory)
    store.add_player(PlayerInfo("main_0", "main_agent"))
    store.close()


@pytest.mark.parametrize("case, message", [
    ("missing", "There is no league directory at"),
    ("no_store", "holds no league store yet"),
    ("empty", "has no players yet"),
    ("one_player", None),
])
def test_missing_empty_and_one_player_leagues_get_a_message_not_a_traceback(monkeypatch, tmp_path, case, message):
    directory = tmp_path / "league"
    if case != "missing":
        directory.mkdir()
    if case == "empty":
        LeagueStore(directory).close()
    if case == "one_player":
        _one_player_store(directory)
    for page in PAGES:
        app = open_page(monkeypatch, directory, page)
        assert_clean(app, page)
        infos = " ".join(i.value for i in app.info)
        if message is not None:
            assert message in infos, page
        elif page in ("payoff", "graph"):
            assert "one player so far (`main_0`)" in infos
        elif page == "leaderboard":
            assert list(app.dataframe[0].value["player"]) == ["main_0"]
        elif page == "play":
            assert "needs a league on tic_tac_toe or connect_four" in infos


def test_a_damaged_store_is_named_not_a_traceback(monkeypatch, tmp_path):
    (tmp_path / "league.sqlite").write_bytes(b"this is not a database" * 100)
    app = open_page(monkeypatch, tmp_path, "leaderboard")
    assert_clean(app, "leaderboard")
    assert "cannot be read" in app.info[0].value


# ---------------------------------------------------------------------- live: reading while a league writes
WRITER = textwrap.dedent(
    """
    import sys, time
    from marl_arena.league.players import PlayerInfo
    from marl_arena.league.store import LeagueStore, MatchRecord
    store = LeagueStore(sys.argv[1])
    store.add_player(PlayerInfo("a", "main_agent"))
    store.add_player(PlayerInfo("b", "main_agent"))
    print("ready", flush=True)
    deadline = time.time() + 60
    i = 0
    while time.time() < deadline:  # a batch of matches every 20 ms, as a fast league's iterations would
        store.record_matches([(MatchRecord("game", ("a", "b"), (1.0, -1.0) if i % 3 else (0.0, 0.0), 5),
                               {"a": 1500.0 + i, "b": 1500.0 - i}) for _ in range(20)])
        i += 1
        time.sleep(0.02)
    """
)


def test_pages_read_while_a_league_writes(monkeypatch, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        seen = []
        for page in ("leaderboard", "payoff", "matches", "leaderboard", "ratings", "leaderboard"):
            app = open_page(monkeypatch, tmp_path, page)
            assert_clean(app, page)
            if page == "leaderboard":
                seen.append(int({m.label: m.value for m in app.metric}["Matches"]))
            time.sleep(0.1)
        assert seen == sorted(seen) and seen[-1] > seen[0] > 0
    finally:
        writer.kill()
        writer.wait()


# ---------------------------------------------------------------------- read-only
def _stored_bytes(directory) -> tuple[bytes, bytes]:
    """The store's database and its write-ahead log (which readers create empty: not a write)."""
    wal = directory / f"{DB_NAME}-wal"
    return (directory / DB_NAME).read_bytes(), wal.read_bytes() if wal.exists() else b""


def test_a_read_only_dashboard_has_no_play_page_and_writes_nothing(monkeypatch, league_dir):
    monkeypatch.setenv(READ_ONLY_ENV, "1")
    before = _stored_bytes(league_dir)
    for page in PAGES.keys() - {"play"}:
        app = open_page(monkeypatch, league_dir, page)
        assert_clean(app, page)
    with pytest.raises(ValueError, match="play.py"):  # not among the app's pages
        app.switch_page("views/play.py")
    assert _stored_bytes(league_dir) == before


# ---------------------------------------------------------------------- command line
def test_dashboard_command_names_a_missing_directory(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "none")]) == 2
    assert "No league directory at" in capsys.readouterr().err


def test_a_move_that_is_not_the_persons_is_refused(store, tmp_path):
    board = boards.board_game("open_spiel:tic_tac_toe")
    game = play.HumanGame(str(tmp_path), "open_spiel:tic_tac_toe", "random", seat=1)
    game.play(board, load_player_module(store, "random"))  # the bot opens
    assert len(game.moves) == 1 and game.state(board).current_player() == 1
    taken = game.moves[0][1]
    with pytest.raises(ValueError, match="not the person's to play"):
        game.play(board, load_player_module(store, "random"), taken)
    assert len(game.moves) == 1 and not (tmp_path / "league.sqlite").exists()  # nothing was written
