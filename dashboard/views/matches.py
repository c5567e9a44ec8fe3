"""Match log: the newest matches with filters, and a board game's replay move by move."""

import streamlit as st

from marl_arena_dashboard import boards, queries, ui

ANY = "(any)"


def log(league, overview):
    players = [ANY, *overview["players"]]
    first, second, third, fourth = st.columns(4)
    player = first.selectbox("Player", players, key="log_player")
    opponent = second.selectbox("Opponent", players, key="log_opponent")
    outcome = third.selectbox("Player's outcome", [ANY, "win", "draw", "loss"], key="log_outcome",
                              disabled=player == ANY)
    limit = fourth.number_input("Latest", 1, 5_000, 100, key="log_limit")
    chosen = [None if value == ANY else value for value in (player, opponent, outcome)]
    if chosen[0] is None:
        chosen[2] = None
    matches = league.load(queries.match_log, int(limit), *chosen)
    st.dataframe(matches, hide_index=True, key="match_log")
    return matches


def replay(league, overview, matches):
    st.subheader("Replay")
    if matches.empty:
        st.info("No match to replay: no match passes these filters.")
        return
    labels = {row.id: f"#{row.id}: {row.first} vs {row.second} ({row.winner})" for row in matches.itertuples()}
    match_id = st.selectbox("Match", list(labels), format_func=labels.get, key="replay_match")
    match = league.load(queries.match, int(match_id))
    same_env = match.env == overview["env"]
    board = boards.board_game(match.env, overview["env_config"] if same_env else None)
    if board is None:
        st.info(f"Replays are drawn for {' and '.join(boards.GAMES)}; this match is `{match.env}`.")
        return
    if match.moves is None:
        st.info("No moves recorded for this match (it was stored before matches kept their moves).")
        return
    states = board.states([action for _, action in match.moves])
    step = st.slider("Move", 0, len(match.moves), len(match.moves), key="replay_step") if match.moves else 0
    left, right = st.columns([1, 2])
    left.code(boards.render(states[step]), language=None)
    seat_names = {0: f"{match.players[0]} (first)", 1: f"{match.players[1]} (second)"}
    right.markdown("\n".join(f"{n}. {seat_names[seat]}: `{states[n - 1].action_to_string(action)}`"
                             for n, (seat, action) in enumerate(match.moves[:step], start=1)) or "Start position.")


def body(league, overview):
    matches = log(league, overview)
    replay(league, overview, matches)


ui.page("Matches", body)
