"""A tic-tac-toe match server: a two-seat game hosted outside the trainer, played over the protocol.

The process owns the game; the trainer's ``TcpServerEnvRunner`` owns the players. Before
each game the match server asks ``start_episode`` which module sits in each seat (a league
draws the opponent then: its main agent, a snapshot, a bot), asks ``get_action`` of that
module for every move, and sends the finished game as one multi-agent episode. It needs
numpy and the client library only, like any simulator outside Python's training stack.

    python -m marl_arena.external.tic_tac_toe --port PORT [--games N]   # token: $MARL_ARENA_TOKEN

``TicTacToe`` is the game's rules and what a seat sees; ``marl_arena.external.tic_tac_toe_env``
wraps the same rules as a ``MultiAgentEnv`` for the in-process side (a league's seats and
spaces, evaluation), so both sides see one game.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from marl_arena.external.client import Client, ServerError

logger = logging.getLogger(__name__)

SEATS = ("player_0", "player_1")
NUM_CELLS = 9
OBS_SIZE = 3 * NUM_CELLS
_LINES = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]])


class TicTacToe:
    """The board, whose turn it is, and the result. ``player_0`` moves first."""

    def __init__(self):
        self.board = np.zeros(NUM_CELLS, np.int8)  # 0 empty, 1 player_0's mark, 2 player_1's
        self.to_move = 0
        self.moves = 0
        self.winner: int | None = None
        self.done = False

    def reset(self) -> None:
        self.__init__()

    def observation(self, seat: int) -> np.ndarray:
        """What ``seat`` sees: its own marks, the opponent's, the empty cells (3 x 9 floats).

        Relative to the seat, so that one module plays either seat.
        """
        own, other = seat + 1, 2 - seat
        return np.concatenate([self.board == own, self.board == other, self.board == 0]).astype(np.float32)

    def legal_mask(self) -> np.ndarray:
        return (self.board == 0).astype(np.float32)

    def play(self, cell: int) -> None:
        """The player to move marks ``cell``; an occupied or unknown cell raises ValueError."""
        if self.done:
            raise ValueError("tic-tac-toe: the game is over.")
        if not (0 <= cell < NUM_CELLS) or self.board[cell] != 0:
            raise ValueError(f"tic-tac-toe: {SEATS[self.to_move]} cannot mark cell {cell!r}; free cells: "
                             f"{np.flatnonzero(self.board == 0).tolist()}.")
        mark = self.to_move + 1
        self.board[cell] = mark
        self.moves += 1
        if np.any(np.all(self.board[_LINES] == mark, axis=1)):
            self.winner, self.done = self.to_move, True
        elif self.moves == NUM_CELLS:
            self.done = True
        self.to_move = 1 - self.to_move

    def returns(self) -> tuple[float, float]:
        """+1 for the winner and -1 for the loser, 0 each for a draw (or a game still running)."""
        if self.winner is None:
            return 0.0, 0.0
        return (1.0, -1.0) if self.winner == 0 else (-1.0, 1.0)


def play_match(client: Client, game: TicTacToe) -> tuple[float, float]:
    """One game with the seats the server assigns; returns the seats' returns."""
    client.start_episode(list(SEATS))
    game.reset()
    while not game.done:
        seat = game.to_move
        game.play(client.act(game.observation(seat), game.legal_mask(), agent_id=SEATS[seat]))
    returns = game.returns()
    for seat, reward in zip(SEATS, returns):
        client.log_returns(reward, agent_id=seat)
    client.end_episode(terminated=True, env_steps=game.moves)
    return returns


def serve(client: Client, games: int | None = None) -> int:
    """Play ``games`` games (None: until the server goes away); returns how many were played."""
    game = TicTacToe()
    played = 0
    try:
        while games is None or played < games:
            play_match(client, game)
            played += 1
    except ConnectionError:
        logger.info("the server went away after %d games", played)
    return played


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", help="file holding the shared token (default: $MARL_ARENA_TOKEN)")
    parser.add_argument("--games", type=int, help="games to play (default: until the server goes away)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-reconnect-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        client = Client(args.host, args.port, token_file=args.token_file, inference="server", module_id=None,
                        seed=args.seed,
                        name=f"tic-tac-toe-{args.seed}", max_reconnect_s=args.max_reconnect_s)
    except ConnectionError as error:
        logger.error("%s", error)
        raise SystemExit(1) from None
    try:
        serve(client, args.games)
    except ServerError as error:
        logger.error("the server refused: %s", error)
        raise SystemExit(1) from None
    finally:
        try:
            client.close()
        except ConnectionError:
            pass  # the server is gone, and with it the game that could not be sent


if __name__ == "__main__":
    main()
