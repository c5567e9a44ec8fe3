"""Play against an agent: tic-tac-toe or connect four against a league player; the result is stored."""

import streamlit as st

from marl_arena.league.store import StoreError
from marl_arena_dashboard import boards, play, queries, ui
from marl_arena_dashboard.data import player_module

# Session state: the game being played (a play.HumanGame). No bare strings in a page: Streamlit draws them.
GAME_KEY = "play_game"


def new_game(league, overview, board):
    game = play.HumanGame(league.directory, overview["env"], st.session_state["play_opponent"],
                          st.session_state["play_seat"], elo_k=overview["elo_k"] or play.DEFAULT_ELO_K)
    st.session_state[GAME_KEY] = game
    game.play(board, player_module(game.directory, game.opponent))


def move(board, action):
    game = st.session_state[GAME_KEY]
    game.play(board, player_module(game.directory, game.opponent), action)


def draw_board(board, state, game):
    legal = set(state.legal_actions()) if not state.is_terminal() and state.current_player() == game.seat else set()
    if board.name == "tic_tac_toe":
        cells = str(state).split()
        for row in range(3):
            for column, slot in enumerate(st.columns(3, gap="small")):
                action = 3 * row + column
                slot.button(cells[row][column].replace(".", "·"), key=f"cell_{action}", width="stretch",
                            disabled=action not in legal, on_click=move, args=(board, action))
    else:
        for column, slot in enumerate(st.columns(board.game.num_distinct_actions(), gap="small")):
            slot.button(f"↓{column + 1}", key=f"cell_{column}", width="stretch", disabled=column not in legal,
                        on_click=move, args=(board, column))
        st.code(boards.render(state), language=None)


def outcome(state, seat):
    mine, theirs = state.returns()[seat], state.returns()[1 - seat]
    return "You won!" if mine > theirs else "You lost." if mine < theirs else "A draw."


def body(league, overview):
    board = boards.board_game(overview["env"] or "", overview["env_config"])
    if board is None:
        st.info(f"Playing against an agent needs a league on {' or '.join(boards.GAMES)} (OpenSpiel's or "
                f"PettingZoo's); this league plays `{overview['env'] or 'a game it did not record'}`.")
        return
    opponents = league.load(queries.playable_players)
    if not opponents:
        st.info("No player to play against yet: snapshots appear once the league freezes one.")
        return
    left, middle, right = st.columns([2, 2, 1])
    opponent = left.selectbox("Opponent", opponents, key="play_opponent")
    try:
        player_module(league.directory, opponent)  # built once; a player that cannot be rebuilt is said here
    except StoreError as error:
        st.warning(f"Cannot play against `{opponent}`: {error}")
        return
    middle.radio("You play", [0, 1], format_func=lambda s: "first (x)" if s == 0 else "second (o)",
                 horizontal=True, key="play_seat")
    right.button("New game", key="new_game", on_click=new_game, args=(league, overview, board))
    game = st.session_state.get(GAME_KEY)
    if game is None or game.directory != league.directory:
        st.info("Choose an opponent and your seat, then start a new game.")
        return
    state = game.state(board)
    if state.is_terminal():
        st.success(f"{outcome(state, game.seat)} Stored as match #{game.match_id} of player `{play.HUMAN}`; "
                   "it counts on the leaderboard.")
    else:
        st.markdown(f"You are **{'x' if game.seat == 0 else 'o'}** against `{game.opponent}`. Your move.")
    draw_board(board, state, game)


ui.page("Play against an agent", body, live=False)
