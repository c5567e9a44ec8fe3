"""Meta-solvers: a mixture over a pool of players from the pool's payoff matrix (PSRO).

Each solver is a pure function ``payoffs -> probabilities`` over the rows of a square
matrix whose entry ``[i, j]`` is what player i gets against player j: zero-sum
(``M == -M.T``) or constant-sum, such as ``PayoffTable.win_rate_matrix(pool)``. Select one
by name from ``META_SOLVERS`` or pass any callable of that shape (``get_meta_solver``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable

import numpy as np

MetaSolver = Callable[[np.ndarray], np.ndarray]


def uniform_mixture(payoffs: np.ndarray) -> np.ndarray:
    """Every player of the pool alike (PSRO's "uniform": fictitious play over the pool)."""
    matrix = _square(payoffs)
    return np.full(len(matrix), 1.0 / len(matrix))


def nash_mixture(
    payoffs: np.ndarray, *, method: str = "auto", tol: float = 1e-8, max_iter: int = 100_000
) -> np.ndarray:
    """A Nash equilibrium (maximin) mixture of the symmetric constant-sum meta-game.

    ``method="lp"`` solves the maximin linear program with ``scipy.optimize.linprog``
    (HiGHS; exact up to solver precision, a vertex when the equilibrium is not unique).
    ``method="regret_matching"`` runs predictive regret matching+ until the averaged
    strategies' duality gap (what a best response against either gains) is at most
    ``tol`` in payoff units, and raises ``RuntimeError`` after ``max_iter`` iterations;
    it needs nothing but numpy. ``"auto"`` uses the LP when scipy is installed.
    """
    matrix = _square(payoffs)
    sums = matrix + matrix.T
    if not np.allclose(sums, sums[0, 0], atol=1e-9):
        raise ValueError("nash_mixture needs a zero-sum or constant-sum payoff matrix (M + M.T constant).")
    if method == "auto":
        method = "lp" if importlib.util.find_spec("scipy") is not None else "regret_matching"
    if method == "lp":
        mixture = _maximin_lp(matrix)
    elif method == "regret_matching":
        mixture = _maximin_regret_matching(matrix, tol, max_iter)
    else:
        raise ValueError(f"Unknown nash_mixture method {method!r}; known: auto, lp, regret_matching.")
    return _normalised(mixture)


def alpharank_mixture(
    payoffs: np.ndarray, *, alpha: float = 100.0, population_size: int = 50, use_inf_alpha: bool = False
) -> np.ndarray:
    """Alpha-Rank's stationary distribution over the pool (OpenSpiel's ``egt.alpharank``).

    The pool is one population playing the symmetric meta-game; ``alpha`` is the
    selection intensity and ``population_size`` the ``m`` of the paper (OpenSpiel's
    defaults). Large ``alpha`` overflows ``exp`` inside OpenSpiel's Fermi fixation
    probability towards its correct limit (0), so those warnings are silenced.
    """
    matrix = _square(payoffs)
    alpharank = _import_alpharank()
    with np.errstate(over="ignore"):
        _, _, stationary, _, _ = alpharank.compute(
            [matrix], m=population_size, alpha=alpha, use_inf_alpha=use_inf_alpha
        )
    return _normalised(np.asarray(stationary, dtype=float))


META_SOLVERS: dict[str, MetaSolver] = {
    "uniform": uniform_mixture,
    "nash": nash_mixture,
    "alpharank": alpharank_mixture,
}
"""Meta-solvers by name."""


def get_meta_solver(solver: str | MetaSolver) -> MetaSolver:
    """The meta-solver named ``solver``, or ``solver`` itself if it is callable."""
    if callable(solver):
        return solver
    if isinstance(solver, str) and solver in META_SOLVERS:
        return META_SOLVERS[solver]
    raise ValueError(f"Unknown meta-solver {solver!r}; known: {', '.join(META_SOLVERS)}, or pass a callable.")


def _square(payoffs: np.ndarray) -> np.ndarray:
    matrix = np.asarray(payoffs, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"A meta-solver needs a non-empty square payoff matrix, got shape {matrix.shape}.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("A meta-solver needs a finite payoff matrix.")
    return matrix


def _normalised(mixture: np.ndarray) -> np.ndarray:
    """Clip solver round-off (tiny negatives) and renormalise to sum 1."""
    clipped = np.clip(mixture, 0.0, None)
    return clipped / clipped.sum()


def _maximin_lp(matrix: np.ndarray) -> np.ndarray:
    """max v s.t. (x^T M)_j >= v for every column j, sum x = 1, x >= 0."""
    from scipy.optimize import linprog

    n = len(matrix)
    objective = np.zeros(n + 1)
    objective[-1] = -1.0
    result = linprog(
        objective,
        A_ub=np.hstack([-matrix.T, np.ones((n, 1))]),
        b_ub=np.zeros(n),
        A_eq=np.hstack([np.ones((1, n)), np.zeros((1, 1))]),
        b_eq=np.ones(1),
        bounds=[(0.0, None)] * n + [(None, None)],
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"The Nash linear program failed: {result.message}")
    return result.x[:n]


def _maximin_regret_matching(matrix: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Predictive regret matching+ (Farina, Kroer & Sandholm, 2021) for both players.

    The row player maximises ``x^T M y``, the column player minimises it; the column player
    responds to the row player's newest strategy (alternation), the last instantaneous
    regret serves as the prediction, and averages are weighted by ``t**2``. On small
    meta-games the duality gap falls roughly as ``1/t**3``: 1e-8 within a few thousand
    iterations.
    """
    n = len(matrix)
    regrets_row, regrets_col = np.zeros(n), np.zeros(n)
    predicted_row, predicted_col = np.zeros(n), np.zeros(n)
    average_row, average_col = np.zeros(n), np.zeros(n)
    col = _regret_strategy(regrets_col)
    for t in range(1, max_iter + 1):
        row = _regret_strategy(regrets_row + predicted_row)
        row_values = matrix @ col
        predicted_row = row_values - row @ row_values
        regrets_row = np.maximum(regrets_row + predicted_row, 0.0)
        row = _regret_strategy(regrets_row + predicted_row)
        col_values = -(row @ matrix)
        predicted_col = col_values - col @ col_values
        regrets_col = np.maximum(regrets_col + predicted_col, 0.0)
        average_row += t * t * row
        average_col += t * t * col
        col = _regret_strategy(regrets_col + predicted_col)
        if t % 50 == 0:
            x, y = average_row / average_row.sum(), average_col / average_col.sum()
            if np.max(matrix @ y) - np.min(x @ matrix) <= tol:
                return x
    raise RuntimeError(f"Regret matching did not reach a duality gap of {tol} in {max_iter} iterations.")


def _regret_strategy(regrets: np.ndarray) -> np.ndarray:
    """Play in proportion to positive regret; uniformly when there is none."""
    positive = np.maximum(regrets, 0.0)
    total = positive.sum()
    return positive / total if total > 0 else np.full(len(regrets), 1.0 / len(regrets))


def _import_alpharank() -> types.ModuleType:
    """OpenSpiel's alpharank module, importable without matplotlib.

    ``open_spiel.python.egt.alpharank`` imports its plotting helper at module level, and
    that helper needs matplotlib, which nothing here uses. When matplotlib is missing, an
    empty stand-in for the plotting module is registered first; alpharank's computation
    never touches it (only its plotting functions would).
    """
    try:
        return importlib.import_module("open_spiel.python.egt.alpharank")
    except ModuleNotFoundError as error:
        if error.name == "open_spiel":
            message = "The alpharank meta-solver needs OpenSpiel: pip install 'marl-arena[openspiel]'."
            raise ImportError(message) from error
        if error.name != "matplotlib":
            raise
    visualizer = "open_spiel.python.egt.alpharank_visualizer"
    sys.modules.setdefault(visualizer, types.ModuleType(visualizer))
    return importlib.import_module("open_spiel.python.egt.alpharank")
