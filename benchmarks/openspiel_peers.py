"""OpenSpiel's own learners as peers for the poker league benchmarks, and the exact scoring all share.

``league_exploitability.py`` (kuhn and leduc, self-play league) and ``league_psro.py``
(kuhn, PSRO league) run the same peers in the same run as our league, for the same
training seconds:

* :func:`run_nfsp`: OpenSpiel's NFSP (``open_spiel.python.pytorch.nfsp``, the
  hyperparameters of its ``nfsp_<game>_pytorch.py`` examples), scored by its average policy;
* :func:`run_psro_v2`: OpenSpiel's ``psro_v2.PSROSolver`` with its RL oracle
  (``rl_oracle.RLOracle``) and policy-gradient policies as in ``psro_v2_example.py``
  (``PGPolicy``, "qpg" loss), scored by its meta-strategy mixture and its newest policies.
  The optional packages psro_v2 imports and this machine lacks (JAX, cvxpy, matplotlib)
  get stand-ins, listed per run as ``substitutes`` in the JSON (:func:`load_psro_v2`).

Exploitability is OpenSpiel's (mean best-response value, chips) of a tabular policy;
:class:`Tracker` keeps one series' final value and where it first held its target.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
import types
from typing import Any

import numpy as np
import pyspiel
import torch
from open_spiel.python import policy as os_policy
from open_spiel.python import rl_environment
from open_spiel.python.algorithms import exploitability

try:  # python -m benchmarks.<script>, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/<script>.py: benchmarks/ is sys.path[0]
    import common

logger = logging.getLogger("benchmarks.openspiel_peers")

NFSP: dict[str, dict[str, Any]] = {
    # open_spiel/python/examples/nfsp_<game>_pytorch.py's hyperparameters.
    "kuhn_poker": {"hidden_layers_sizes": [128], "reservoir_buffer_capacity": int(2e6), "anticipatory_param": 0.1,
                   "replay_buffer_capacity": int(2e5), "epsilon_start": 0.06, "epsilon_end": 0.001,
                   "epsilon_decay_duration": int(3e6)},
    "leduc_poker": {"hidden_layers_sizes": [128], "reservoir_buffer_capacity": int(2e6), "anticipatory_param": 0.1,
                    "replay_buffer_capacity": int(2e5), "min_buffer_size_to_learn": 1000, "batch_size": 128,
                    "learn_every": 64, "rl_learning_rate": 0.01, "sl_learning_rate": 0.01, "optimizer_str": "sgd",
                    "loss_str": "mse", "update_target_network_every": 19200, "discount_factor": 1.0,
                    "epsilon_decay_duration": int(20e6), "epsilon_start": 0.06, "epsilon_end": 0.001},
}
NFSP_EVAL_EVERY_EPISODES = 5_000

PSRO_V2 = {
    # psro_v2_example.py's PG oracle and solver settings (its defaults), except two cut so that
    # a budget of minutes holds several PSRO iterations: a [64, 64] network (the example: 4 x 256)
    # and 200 simulations per meta-game entry (the example: 1000).
    "oracle": {"loss_str": "qpg", "hidden_layers_sizes": [64, 64], "entropy_cost": 0.001,
               "critic_learning_rate": 1e-2, "pi_learning_rate": 1e-3, "num_critic_before_pi": 8,
               "optimizer_str": "adam", "batch_size": 32},
    "number_training_episodes": 10_000,
    "sims_per_entry": 200,
    "meta_strategy_method": "nash",
    "training_strategy_selector": "probabilistic",
    "self_play_proportion": 0.0,
    "sigma": 0.0,
}


# ---------------------------------------------------------------------- exact evaluation
def exploitability_of(game: pyspiel.Game, policy: os_policy.Policy) -> float:
    return float(exploitability.exploitability(game, policy))


class Tracker:
    """The final value of one exploitability series, and where it first held the target.

    "Held" means below the target in ``common.CONSECUTIVE`` checks in a row, recorded at the
    last of them: a single check of an oscillating self-play policy that dips below the
    target says little about the policy a user would get.
    """

    def __init__(self, target: float):
        self.target = target
        self.streak = common.Streak()
        self.held: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None

    def add(self, value: float, at: dict[str, Any]) -> None:
        entry = {"exploitability": round(value, 5), **at}
        self.last = entry
        if self.streak.add(value < self.target) and self.held is None:
            self.held = entry

    def report(self) -> dict[str, Any]:
        return {"final": self.last["exploitability"] if self.last else None, "final_at": self.last,
                "target": self.target, "held_target": self.held is not None, "first_held_target": self.held,
                "consecutive_checks": self.streak.needed}


# ---------------------------------------------------------------------- OpenSpiel's NFSP
def nfsp_average_policy(game: pyspiel.Game, agents: list[Any]) -> os_policy.TabularPolicy:
    """NFSP's average-policy networks at every information state, one batch per player.

    The same masked softmax as ``NFSP._act`` in AVERAGE_POLICY mode (what OpenSpiel's
    example scores through ``step(..., is_evaluation=True)``), without the per-state calls.
    """
    tabular = os_policy.TabularPolicy(game)
    for player in range(game.num_players()):
        keys = tabular.states_per_player[player]
        index = [tabular.state_lookup[k] for k in keys]
        states = [tabular.states[i] for i in index]
        obs = torch.as_tensor(np.array([s.information_state_tensor(player) for s in states]), dtype=torch.float32)
        mask = torch.as_tensor(tabular.legal_actions_mask[index] > 0)
        with torch.no_grad():
            logits = agents[player]._avg_network(obs)
            probs = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
        tabular.action_probability_array[index] = probs.numpy().astype(np.float64)
    return tabular


def run_nfsp(game_name: str, budget: float, seed: int, target: float) -> dict[str, Any]:
    """NFSP for ``budget`` training seconds (its checks excluded), its average policy scored
    every ``NFSP_EVAL_EVERY_EPISODES`` episodes and at the end."""
    from open_spiel.python.pytorch import nfsp

    params = dict(NFSP[game_name])
    np.random.seed(seed)
    torch.manual_seed(seed)
    game = pyspiel.load_game(game_name)
    tracker = Tracker(target)
    history: list[dict[str, Any]] = []
    eval_s = 0.0
    start = time.perf_counter()
    env = rl_environment.Environment(game_name)
    env.seed(seed)
    info_state_size = env.observation_spec()["info_state"][0]
    num_actions = env.action_spec()["num_actions"]
    hidden = params.pop("hidden_layers_sizes")
    reservoir = params.pop("reservoir_buffer_capacity")
    anticipatory = params.pop("anticipatory_param")
    agents = [nfsp.NFSP(player, info_state_size, num_actions, hidden, reservoir, anticipatory, seed=seed + 10 * player,
                        **params) for player in range(2)]
    episodes = steps = 0

    def evaluate() -> None:
        value = exploitability_of(game, nfsp_average_policy(game, agents))
        at = {"episodes": episodes, "env_steps": steps, "train_s": round(time.perf_counter() - start - eval_s, 2),
              "wall_s": round(time.perf_counter() - start, 2)}
        tracker.add(value, at)
        history.append({**at, "exploitability": round(value, 5)})
        logger.info("%s NFSP: %d episodes, train %.1fs: average policy %.4f", game_name, episodes, at["train_s"], value)

    while time.perf_counter() - start - eval_s < budget:
        time_step = env.reset()
        while not time_step.last():
            player = time_step.observations["current_player"]
            time_step = env.step([agents[player].step(time_step).action])
            steps += 1
        for agent in agents:
            agent.step(time_step)
        episodes += 1
        if episodes % NFSP_EVAL_EVERY_EPISODES == 0:
            t0 = time.perf_counter()
            evaluate()
            eval_s += time.perf_counter() - t0
    if not history or history[-1]["episodes"] != episodes:
        t0 = time.perf_counter()
        evaluate()
        eval_s += time.perf_counter() - t0
    wall_s = time.perf_counter() - start
    return {"average_policy": tracker.report(), "episodes": episodes, "env_steps": steps,
            "train_s": round(wall_s - eval_s, 1), "wall_s": round(wall_s, 1), "eval_s": round(eval_s, 1),
            "budget_train_s": round(budget, 1),
            "settings": {**NFSP[game_name], "eval_every_episodes": NFSP_EVAL_EVERY_EPISODES,
                         "source": f"open_spiel/python/examples/nfsp_{game_name.split('_')[0]}_pytorch.py"},
            "history": history}


# ---------------------------------------------------------------------- OpenSpiel's psro_v2
def load_psro_v2() -> tuple[types.SimpleNamespace, list[str]]:
    """OpenSpiel's psro_v2 modules, with stand-ins for the optional packages they import but this run lacks.

    psro_v2 imports, at module level, JAX (``rl_policy``: its PGPolicy and DQNPolicy wrap
    OpenSpiel's JAX agents), cvxpy (``meta_strategies`` -> ``lp_solver``, for the Nash
    meta-solver) and matplotlib (``utils`` -> ``alpharank`` -> its visualizer). Where one
    is missing: ``rl_policy_factory`` wraps OpenSpiel's PyTorch ``PolicyGradient`` (same
    constructor, same ``copy_with_noise``) instead of the JAX one; ``lp_solver`` becomes
    scipy's HiGHS on the same maximin programs; the visualizer, which nothing here draws,
    an empty module. Returns the modules and one line per stand-in, for the JSON.
    """
    notes, stand_ins = [], {}

    def stand_in(name: str, **attributes: Any) -> None:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        stand_ins[name] = sys.modules[name] = module

    if importlib.util.find_spec("jax") is None:
        stand_in("open_spiel.python.jax")
        stand_in("open_spiel.python.jax.dqn", DQN=None)
        stand_in("open_spiel.python.jax.policy_gradient", PolicyGradient=None)
        notes.append("JAX not installed: PGPolicy = rl_policy.rl_policy_factory(open_spiel.python.pytorch."
                     "policy_gradient.PolicyGradient), the PyTorch twin of psro_v2_example.py's JAX PG agent")
    if importlib.util.find_spec("cvxpy") is None:
        stand_in("open_spiel.python.algorithms.lp_solver", solve_zero_sum_matrix_game=_solve_zero_sum_matrix_game)
        notes.append("cvxpy not installed: lp_solver.solve_zero_sum_matrix_game (psro_v2's Nash meta-solver) "
                     "solved with scipy.optimize.linprog (HiGHS), the same maximin linear programs")
    if importlib.util.find_spec("matplotlib") is None:
        stand_in("open_spiel.python.egt.alpharank_visualizer")
        notes.append("matplotlib not installed: alpharank's plotting module is an empty stand-in (never called)")
    try:
        from open_spiel.python.algorithms.psro_v2 import psro_v2, rl_oracle, rl_policy
    finally:
        for name in stand_ins:
            del sys.modules[name]
    if importlib.util.find_spec("jax") is None:
        pg_policy = rl_policy.rl_policy_factory(_fresh_copy_policy_gradient())
    else:
        pg_policy = rl_policy.PGPolicy
    return types.SimpleNamespace(psro_v2=psro_v2, rl_oracle=rl_oracle, PGPolicy=pg_policy), notes


def _fresh_copy_policy_gradient() -> type:
    """OpenSpiel's PyTorch ``PolicyGradient`` whose ``copy_with_noise`` builds a fresh agent.

    The JAX ``PolicyGradient`` of psro_v2_example.py has no ``copy_with_noise``, so
    ``RLPolicy.copy_with_noise`` builds each new policy from scratch with the same
    arguments; the PyTorch one has a ``copy_with_noise`` that fails in OpenSpiel 2.0.2 (it
    reads ``.weight`` of its torso's ``Sequential``). This one does what the JAX path does.
    """
    from open_spiel.python.pytorch import policy_gradient

    class PolicyGradient(policy_gradient.PolicyGradient):
        def copy_with_noise(self, sigma: float = 0.0, copy_weights: bool = True) -> "PolicyGradient":
            return type(self)(**{k: v for k, v in self._kwargs.items() if k not in ("self", "__class__")})

    return PolicyGradient


def _solve_zero_sum_matrix_game(game: Any) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``lp_solver.solve_zero_sum_matrix_game``'s result (both players' maximin strategies and values) by scipy."""
    row = np.array([[game.player_utility(0, r, c) for c in range(game.num_cols())] for r in range(game.num_rows())])
    p0, v0 = _maximin(row)
    p1, v1 = _maximin(-row.T)
    return p0, p1, v0, v1


def _maximin(payoffs: np.ndarray) -> tuple[np.ndarray, float]:
    """max v s.t. (x^T A)_j >= v for every column j, x a distribution over the rows."""
    from scipy.optimize import linprog

    rows, cols = payoffs.shape
    result = linprog(np.r_[np.zeros(rows), -1.0], A_ub=np.hstack([-payoffs.T, np.ones((cols, 1))]), b_ub=np.zeros(cols),
                     A_eq=np.r_[np.ones(rows), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * rows + [(None, None)],
                     method="highs")
    if result.status != 0:
        raise RuntimeError(f"The maximin linear program failed: {result.message}")
    return result.x[:rows], float(result.x[-1])


def run_psro_v2(game_name: str, budget: float, seed: int, targets: dict[str, float]) -> dict[str, Any]:
    """psro_v2 for ``budget`` training seconds: it starts no iteration once they are spent, so
    its last one may run over (its ``train_s`` says by how much). Scored after every
    iteration: the meta-strategy mixture (``policy_aggregator``, as the example) against
    ``targets["pool_mixture"]``, the newest policies against ``targets["main_agent"]``."""
    from open_spiel.python.algorithms import policy_aggregator

    psro, substitutes = load_psro_v2()
    np.random.seed(seed)
    torch.manual_seed(seed)
    game = pyspiel.load_game(game_name)
    env = rl_environment.Environment(game)
    env.seed(seed)
    agent_class = psro.PGPolicy
    kwargs = {"info_state_size": env.observation_spec()["info_state"][0],
              "num_actions": env.action_spec()["num_actions"], "loss_class": False, **PSRO_V2["oracle"]}
    trackers = {name: Tracker(targets[name]) for name in ("main_agent", "pool_mixture")}
    history: list[dict[str, Any]] = []
    eval_s = 0.0
    start = time.perf_counter()
    oracle = psro.rl_oracle.RLOracle(env, agent_class, kwargs,
                                     number_training_episodes=PSRO_V2["number_training_episodes"],
                                     self_play_proportion=PSRO_V2["self_play_proportion"], sigma=PSRO_V2["sigma"])
    agents = [agent_class(env, player, **kwargs) for player in range(2)]
    for agent in agents:
        agent.freeze()
    solver = psro.psro_v2.PSROSolver(game, oracle, initial_policies=agents,
                                     training_strategy_selector=PSRO_V2["training_strategy_selector"], rectifier="",
                                     sims_per_entry=PSRO_V2["sims_per_entry"], number_policies_selected=1,
                                     meta_strategy_method=PSRO_V2["meta_strategy_method"], prd_iterations=50000,
                                     prd_gamma=1e-10, sample_from_marginals=True, symmetric_game=False)
    iterations = 0
    while time.perf_counter() - start - eval_s < budget:
        solver.iteration()
        iterations += 1
        t0 = time.perf_counter()
        policies = solver.get_policies()
        mixture = policy_aggregator.PolicyAggregator(game).aggregate(range(2), policies, solver.get_meta_strategies())
        pool_value = exploitability_of(game, mixture)
        newest = os_policy.merge_tabular_policies(
            [os_policy.tabular_policy_from_callable(game, policies[p][-1], [p]) for p in range(2)], game)
        main_value = exploitability_of(game, newest)
        eval_s += time.perf_counter() - t0
        at = {"iteration": iterations, "train_s": round(time.perf_counter() - start - eval_s, 2),
              "wall_s": round(time.perf_counter() - start, 2), "pool_size": len(policies[0])}
        trackers["main_agent"].add(main_value, at)
        trackers["pool_mixture"].add(pool_value, at)
        history.append({**at, "main_agent": round(main_value, 5), "pool_mixture": round(pool_value, 5)})
        logger.info("%s psro_v2 it %d: train %.1fs: meta-strategy mixture %.4f (pool %d), newest policies %.4f",
                    game_name, iterations, at["train_s"], pool_value, len(policies[0]), main_value)
    wall_s = time.perf_counter() - start
    return {**{name: tracker.report() for name, tracker in trackers.items()}, "iterations": iterations,
            "train_s": round(wall_s - eval_s, 1), "wall_s": round(wall_s, 1), "eval_s": round(eval_s, 1),
            "budget_train_s": round(budget, 1), "substitutes": substitutes,
            "settings": {**PSRO_V2, "source": "open_spiel/python/examples/psro_v2_example.py (oracle_type PG)"},
            "history": history}
