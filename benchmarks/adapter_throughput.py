"""Env steps per second through marl_arena's env adapters vs the raw libraries, same run.

An adapter sits on every env step of every sampler, so it must cost little next to the
game itself. Each game is played with uniformly random legal actions, once through the
library's own loop and once through our adapter, with the same seeds and the same action
choices, alternating the two several times. Reported: each side's median rate over the
repeats with its spread (min-max), and adapter/raw as the ratio of the medians, alongside
the ratio of every repeat's side-by-side pair. The target is adapter/raw >= 0.8.

* PettingZoo (connect_four_v3, tictactoe_v3): the canonical AEC loop
  (``for agent in env.agent_iter(): env.last(); env.step(...)``, done agents stepped with
  ``None``) vs ``PettingZooEnv``. Both play identical games, which the output checks
  (``same_games``).
* OpenSpiel (kuhn_poker, leduc_poker, tic_tac_toe): a plain pyspiel loop (chance sampling,
  observation tensor and legal actions for the player to move, ``apply_action``) vs
  ``marl_arena_envs.openspiel.OpenSpielEnv``. Chance outcomes come from different RNG
  streams on the two sides, so games are alike in distribution, not identical.

Only decision steps count as env steps (not chance moves, not PettingZoo's ``None``
steps for done agents). Usage::

    python benchmarks/adapter_throughput.py [--quick] [--episodes N] [--repeats R] [--seed S] [--out [PATH]]

Prints one JSON document to stdout (``--out``: also writes results/adapter_throughput.json).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np

try:  # python -m benchmarks.adapter_throughput, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/adapter_throughput.py: benchmarks/ is sys.path[0]
    import common

logger = logging.getLogger("adapter_throughput")

PETTINGZOO_GAMES = ("connect_four_v3", "tictactoe_v3")
OPENSPIEL_GAMES = ("kuhn_poker", "leduc_poker", "tic_tac_toe")
TARGET_RATIO = 0.8


def _pick(mask: np.ndarray, rng: np.random.Generator) -> int:
    """A uniformly random legal action; the same code on both sides of every comparison."""
    legal = np.flatnonzero(mask)
    return int(legal[rng.integers(legal.size)])


# ---------------------------------------------------------------------------- PettingZoo
def _pettingzoo_module(game: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(f"pettingzoo.classic.{game}")


def pettingzoo_raw(game: str, episodes: int, seed: int) -> tuple[int, float, list[int]]:
    """The canonical PettingZoo AEC loop. Returns (env steps, seconds, steps per episode)."""
    env = _pettingzoo_module(game).env()
    rng = np.random.default_rng(seed)
    lengths = []
    start = time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        steps = 0
        for _agent in env.agent_iter():
            obs, _reward, terminated, truncated, _info = env.last()
            if terminated or truncated:
                env.step(None)
            else:
                env.step(_pick(obs["action_mask"], rng))
                steps += 1
        lengths.append(steps)
    elapsed = time.perf_counter() - start
    env.close()
    return sum(lengths), elapsed, lengths


def pettingzoo_adapter(game: str, episodes: int, seed: int) -> tuple[int, float, list[int]]:
    """The same games through ``PettingZooEnv`` (built by the ``pettingzoo:`` entry point)."""
    from marl_arena_envs.pettingzoo import make

    env = make(game, {})
    rng = np.random.default_rng(seed)
    lengths = []
    start = time.perf_counter()
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        steps = 0
        while True:
            (agent, agent_obs), = obs.items()
            obs, _rewards, terminateds, truncateds, _ = env.step({agent: _pick(agent_obs["action_mask"], rng)})
            steps += 1
            if terminateds["__all__"] or truncateds["__all__"]:
                break
        lengths.append(steps)
    elapsed = time.perf_counter() - start
    env.close()
    return sum(lengths), elapsed, lengths


# ---------------------------------------------------------------------------- OpenSpiel
def openspiel_adapter_available() -> tuple[bool, str]:
    """Whether ``marl_arena_envs.openspiel.OpenSpielEnv`` can be imported (it is a separate plugin)."""
    try:
        module = importlib.import_module("marl_arena_envs.openspiel")
        getattr(module, "OpenSpielEnv")
        importlib.import_module("pyspiel")
    except Exception as error:  # not written yet, pyspiel missing, or broken mid-edit
        return False, f"{type(error).__name__}: {error}"
    return True, ""


def openspiel_raw(game: str, episodes: int, seed: int) -> tuple[int, float, list[int]]:
    """A plain pyspiel loop doing what an RL sampler needs per decision."""
    import pyspiel

    loaded = pyspiel.load_game(game)
    game_type = loaded.get_type()
    use_info_state = game_type.provides_information_state_tensor
    rng = np.random.default_rng(seed)
    lengths = []
    start = time.perf_counter()
    for _ in range(episodes):
        state = loaded.new_initial_state()
        steps = 0
        while not state.is_terminal():
            if state.is_chance_node():
                outcomes, probs = zip(*state.chance_outcomes())
                p = np.asarray(probs, dtype=np.float64)
                state.apply_action(int(outcomes[rng.choice(len(outcomes), p=p / p.sum())]))
                continue
            player = state.current_player()
            tensor = state.information_state_tensor(player) if use_info_state else state.observation_tensor(player)
            np.asarray(tensor, dtype=np.float32)
            mask = np.asarray(state.legal_actions_mask(player), dtype=np.float32)
            state.apply_action(_pick(mask, rng))
            steps += 1
        state.returns()
        lengths.append(steps)
    elapsed = time.perf_counter() - start
    return sum(lengths), elapsed, lengths


def openspiel_adapter(game: str, episodes: int, seed: int) -> tuple[int, float, list[int]]:
    """The same kind of games through ``OpenSpielEnv``."""
    from marl_arena_envs.openspiel import OpenSpielEnv

    env = OpenSpielEnv(game)
    rng = np.random.default_rng(seed)
    lengths = []
    start = time.perf_counter()
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        steps = 0
        while True:
            actions = {agent: _pick(agent_obs["action_mask"], rng) for agent, agent_obs in obs.items()}
            obs, _rewards, terminateds, truncateds, _ = env.step(actions)
            steps += 1
            if terminateds["__all__"] or truncateds["__all__"]:
                break
        lengths.append(steps)
    elapsed = time.perf_counter() - start
    env.close()
    return sum(lengths), elapsed, lengths


# ---------------------------------------------------------------------------- driver
Runner = Callable[[str, int, int], tuple[int, float, list[int]]]


def compare(game: str, raw: Runner, adapter: Runner, episodes: int, repeats: int, seed: int,
            identical_games: bool) -> dict[str, Any]:
    """Alternate raw and adapter runs ``repeats`` times; report each side's median and spread.

    Medians, not the best repeat: the best of several runs flatters whichever side had the
    luckiest moment on a shared machine, and cannot be reproduced as printed.
    """
    raw(game, max(1, episodes // 10), seed)  # warm-up: imports, caches
    adapter(game, max(1, episodes // 10), seed)
    rates: dict[str, list[float]] = {"raw": [], "adapter": []}
    lengths: dict[str, list[int]] = {}
    steps_done: dict[str, int] = {}
    for _ in range(repeats):
        for side, runner in (("raw", raw), ("adapter", adapter)):
            steps, seconds, played = runner(game, episodes, seed)
            rates[side].append(steps / seconds)
            lengths[side] = played
            steps_done[side] = steps
    pair_ratios = [a / r for a, r in zip(rates["adapter"], rates["raw"])]
    result = {
        "episodes_per_run": episodes,
        "env_steps_per_run": steps_done,
        "raw_steps_per_s": _rounded(common.spread(rates["raw"]), 1),
        "adapter_steps_per_s": _rounded(common.spread(rates["adapter"]), 1),
        "ratio": round(common.median(rates["adapter"]) / common.median(rates["raw"]), 3),
        "ratio_per_repeat": _rounded(common.spread(pair_ratios), 3),
        "all_rates": {side: [round(r, 1) for r in values] for side, values in rates.items()},
    }
    if identical_games:
        result["same_games"] = lengths["raw"] == lengths["adapter"]
    result["meets_target"] = result["ratio"] >= TARGET_RATIO
    return result


def _rounded(figures: dict[str, float], digits: int) -> dict[str, float]:
    return {k: round(v, digits) for k, v in figures.items()}


def run(episodes: int, repeats: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "adapter_throughput",
        "what": "env steps per second with uniformly random legal actions: adapter vs raw library, same run",
        "target_ratio": TARGET_RATIO,
        "seed": seed,
        "repeats": repeats,
        "protocol": "each side's median steps/s over the repeats (min-max alongside); ratio = adapter median / "
                    "raw median; ratio_per_repeat: the spread of the side-by-side pairs",
        "machine": common.machine_info(),
        "versions": _versions(),
        "notes": {
            "pettingzoo": "raw = the canonical agent_iter()/last() loop through the env's wrappers; the adapter "
                          "reads rewards/terminations/agent_selection from the unwrapped env when every wrapper is "
                          "one of PettingZoo's own pass-through wrappers, so it can beat the raw loop (ratio > 1).",
            "openspiel": "raw = pyspiel loop with chance sampling, observation tensor and legal-action mask per "
                         "decision; chance outcomes use different RNG streams, so env_steps_per_run differ slightly.",
        },
        "pettingzoo": {},
        "openspiel": {},
    }
    for game in PETTINGZOO_GAMES:
        logger.info("PettingZoo %s", game)
        report["pettingzoo"][game] = compare(game, pettingzoo_raw, pettingzoo_adapter, episodes, repeats, seed, True)
    available, reason = openspiel_adapter_available()
    if not available:
        report["openspiel"] = {"available": False, "reason": reason}
    else:
        for game in OPENSPIEL_GAMES:
            logger.info("OpenSpiel %s", game)
            try:
                report["openspiel"][game] = compare(game, openspiel_raw, openspiel_adapter, 4 * episodes, repeats,
                                                    seed, False)
            except Exception as error:  # the OpenSpiel plugin is developed separately; report, do not hide
                logger.exception("OpenSpiel %s failed", game)
                report["openspiel"][game] = {"error": f"{type(error).__name__}: {error}"}
    return report


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("pettingzoo", "numpy", "pyspiel"):
        try:
            module = importlib.import_module(name)
            versions[name] = str(getattr(module, "__version__", "unknown"))
        except Exception:
            versions[name] = "not installed"
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds in all (smoke run)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per timed run (default 1500, quick 150)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 5, quick 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random actions (and the games)")
    parser.add_argument("--out", nargs="?", const="", default=None, metavar="PATH",
                        help="also write the JSON to PATH (default benchmarks/results/adapter_throughput.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    episodes = args.episodes or (150 if args.quick else 1500)
    repeats = args.repeats or (2 if args.quick else 5)
    started = time.perf_counter()
    report = run(episodes, repeats, args.seed)
    report["quick"] = bool(args.quick)
    report["command"] = common.command_line(argv)
    common.finish(report, "adapter_throughput", args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
